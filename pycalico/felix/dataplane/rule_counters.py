"""The packets and bytes of every policy and profile rule, read from nf_tables in one netlink
dump of the table's rules (felix/metrics.py asks once per scrape).

Every rule of a policy or profile chain carries a counter and its rule's index as its
comment (felix/rules/policy.py `counted`). The dump is parsed from raw bytes, and only as
far as needed: the chain name of every rule, the counter and comment of rules in policy and
profile chains. A rule of the same policy rule in several lines (IPv4 and IPv6, port
alternatives) or layers (a host endpoint's filter, mangle and raw chains) adds up into one.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pycalico.felix.dataplane import netlink_frames
from pycalico.felix.rules.policy import RULE_COMMENT

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_GETRULE = 7
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NFPROTO_INET = 1
NFTA_RULE_TABLE, NFTA_RULE_CHAIN, NFTA_RULE_EXPRESSIONS, NFTA_RULE_USERDATA = 1, 2, 4, 7
NFTA_LIST_ELEM = 1
NFTA_EXPR_NAME, NFTA_EXPR_DATA = 1, 2
NFTA_COUNTER_BYTES, NFTA_COUNTER_PACKETS = 1, 2
NFTNL_UDATA_RULE_COMMENT = 0
_ATTR = struct.Struct("=HH")
_U64 = struct.Struct(">Q")
_NFGEN = struct.Struct("=BBH")
_RECV = 1 << 20
# Policy (`-pi-`, `-po-`) and profile (`-pri-`, `-pro-`) chains, in any layer.
_OWNED = ("-cali-pi-", "-cali-po-", "-cali-pri-", "-cali-pro-")


@dataclass(frozen=True)
class RuleKey:
    chain_kind: str  # "pi", "po", "pri", "pro"
    owner: str  # the policy id (`<tier>/[<ns>/]<name>`) or the profile's name
    index: int  # the rule's index in its policy or profile, for that direction


def _attrs(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(type without flags, payload start, payload end) of each netlink attribute."""
    while start + 4 <= end:
        length, kind = _ATTR.unpack_from(data, start)
        if length < 4:
            return
        yield kind & 0x3FFF, start + 4, start + length
        start += (length + 3) & ~3


def _string(data: bytes, start: int, end: int) -> str:
    return data[start:end].split(b"\0", 1)[0].decode()


def _key(chain: str) -> tuple[str, str] | None:
    for marker in _OWNED:
        at = chain.find(marker)
        if at >= 0:
            return marker[6:-1], chain[at + len(marker) :]
    return None


def counted_chain(chain: str) -> bool:
    """Whether `chain` is a policy's or a profile's (whose rules carry counters)."""
    return _key(chain) is not None


def _counter(data: bytes, start: int, end: int) -> tuple[int, int] | None:
    """(packets, bytes) of the counter expression among a rule's expressions."""
    for _, elem, elem_end in _attrs(data, start, end):
        name = ""
        payload: tuple[int, int] | None = None
        for kind, a, b in _attrs(data, elem, elem_end):
            if kind == NFTA_EXPR_NAME:
                name = _string(data, a, b)
            elif kind == NFTA_EXPR_DATA:
                payload = (a, b)
        if name == "counter" and payload is not None:
            packets = octets = 0
            for kind, a, _ in _attrs(data, *payload):
                if kind == NFTA_COUNTER_PACKETS:
                    packets = _U64.unpack_from(data, a)[0]
                elif kind == NFTA_COUNTER_BYTES:
                    octets = _U64.unpack_from(data, a)[0]
            return packets, octets
    return None


def _comment(data: bytes, start: int, end: int) -> str:
    while start + 2 <= end:
        kind, length = data[start], data[start + 1]
        if kind == NFTNL_UDATA_RULE_COMMENT:
            return _string(data, start + 2, start + 2 + length)
        start += 2 + length
    return ""


Counts = dict[RuleKey, tuple[int, int]]


def parse(data: bytes, into: Counts) -> bool:
    """Add the counted rules of a dump's messages to `into` (pure); whether the dump ended."""
    for start, length, kind, _ in netlink_frames.frames(data):
        if netlink_frames.ends_dump(kind):
            code = netlink_frames.error_code(data, start)
            if code == errno.ENOENT:
                raise FileNotFoundError(code, "no such table")
            if code:
                raise OSError(code, f"reading nftables rules: {os.strerror(code)}")
            return True
        end = start + length
        owner: tuple[str, str] | None = None
        counter = None
        comment = ""
        body = start + netlink_frames.HEADER.size + _NFGEN.size
        for attr, a, b in _attrs(data, body, end):
            if attr == NFTA_RULE_CHAIN:
                owner = _key(_string(data, a, b))
                if owner is None:
                    break  # not a policy or profile chain: nothing more to read
            elif attr == NFTA_RULE_EXPRESSIONS:
                counter = _counter(data, a, b)
            elif attr == NFTA_RULE_USERDATA:
                comment = _comment(data, a, b)
        if owner is None or counter is None or not comment.startswith(RULE_COMMENT):
            continue
        key = RuleKey(owner[0], owner[1], int(comment[len(RULE_COMMENT) :]))
        packets, octets = into.get(key, (0, 0))
        into[key] = (packets + counter[0], octets + counter[1])
    return False


def _string_attr(kind: int, text: str) -> bytes:
    data = text.encode() + b"\0"
    return _ATTR.pack(4 + len(data), kind) + data + b"\0" * (-len(data) % 4)


def request(table: str, chain: str = "", seq: int = 1) -> bytes:
    """A dump of the rules of `inet <table>`, or of one chain of it."""
    attrs = _string_attr(NFTA_RULE_TABLE, table)
    if chain:
        attrs += _string_attr(NFTA_RULE_CHAIN, chain)
    body = _NFGEN.pack(NFPROTO_INET, 0, 0) + attrs
    kind = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETRULE
    header = netlink_frames.HEADER.pack(
        netlink_frames.HEADER.size + len(body), kind, NLM_F_REQUEST | NLM_F_DUMP, seq, 0
    )
    return header + body


def read(chains: Iterable[str] | None = None, table: str = "calico") -> Counts:
    """(packets, bytes) per policy and profile rule of `inet <table>`, in the namespace of
    the calling thread; {} when there is no such table. `chains`: dump only these (one
    small dump each, which the kernel answers without walking the rest of the table);
    None: one dump of the whole table."""
    found: Counts = {}
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER) as sock:
        for seq, chain in enumerate([""] if chains is None else chains, start=1):
            sock.sendall(request(table, chain, seq))
            try:
                while not parse(sock.recv(_RECV), found):
                    pass
            except FileNotFoundError:
                if chains is None:
                    return {}  # no table; with chains, a chain gone since: the others
    return found
