"""Set element changes sent to nf_tables over netlink, as one all-or-nothing transaction.

This is the fast path for the commonest policy change, a label change that only moves
addresses between sets: `nft -f` would first read back every element of every interval set
in the table. The message layout is nft's (a batch begin, one NEWSETELEM or DELSETELEM per
set, a batch end); pyroute2 encodes the messages. The kernel handles a netlink batch inside
`send`, so every acknowledgement is already queued when it returns.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyroute2.netlink import NETLINK_NETFILTER, NLM_F_ACK, NLM_F_CREATE, NLM_F_REQUEST
from pyroute2.netlink.nfnetlink import NFNL_SUBSYS_NFTABLES, nfgen_msg
from pyroute2.netlink.nfnetlink.nftsocket import (
    NFT_MSG_DELSETELEM,
    NFT_MSG_NEWSETELEM,
    nft_set_elem_list_msg,
)

from pycalico.felix.dataplane import netlink_frames
from pycalico.felix.rules.element_keys import Key

NFPROTO = {"inet": 1, "ip": 2, "ip6": 10}
NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END = 0x10, 0x11
# pyroute2 encodes set element flags from the keys of its flag table ({1: INTERVAL_END}).
_INTERVAL_END = frozenset({1})


class NetlinkApplyError(RuntimeError):
    pass


@dataclass(frozen=True)
class ElementChange:
    add: bool  # False: delete
    set_name: str
    keys: tuple[Key, ...]


def _element(key: Key) -> dict[str, Any]:
    attrs: list[list[Any]] = [["NFTA_SET_ELEM_KEY", {"attrs": [["NFTA_DATA_VALUE", key.value]]}]]
    if key.interval_end:
        attrs.append(["NFTA_SET_ELEM_FLAGS", _INTERVAL_END])
    return {"attrs": attrs}


def _batch_marker(kind: int, seq: int) -> bytes:
    msg = nfgen_msg()
    msg["res_id"] = NFNL_SUBSYS_NFTABLES
    msg["header"]["type"] = kind
    msg["header"]["flags"] = NLM_F_REQUEST
    msg["header"]["sequence_number"] = seq
    msg.encode()
    return bytes(msg.data)


def _change(family: int, table: str, change: ElementChange, seq: int) -> bytes:
    msg = nft_set_elem_list_msg()
    msg["nfgen_family"] = family
    msg["attrs"] = [
        ["NFTA_SET_ELEM_LIST_TABLE", table],
        ["NFTA_SET_ELEM_LIST_SET", change.set_name],
        ["NFTA_SET_ELEM_LIST_ELEMENTS", [_element(k) for k in change.keys]],
    ]
    kind = NFT_MSG_NEWSETELEM if change.add else NFT_MSG_DELSETELEM
    msg["header"]["type"] = (NFNL_SUBSYS_NFTABLES << 8) | kind
    msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK | (NLM_F_CREATE if change.add else 0)
    msg["header"]["sequence_number"] = seq
    msg.encode()
    return bytes(msg.data)


def batch(family: str, table: str, changes: Sequence[ElementChange], first_seq: int = 1) -> bytes:
    """The whole transaction, sequence numbers `first_seq` (begin) to + len(changes) + 1."""
    parts = [_batch_marker(NFNL_MSG_BATCH_BEGIN, first_seq)]
    parts += [_change(NFPROTO[family], table, c, first_seq + 1 + i) for i, c in enumerate(changes)]
    parts.append(_batch_marker(NFNL_MSG_BATCH_END, first_seq + len(changes) + 1))
    return b"".join(parts)


class Channel:
    """A netlink socket to nf_tables in the network namespace it was opened in, kept open.

    Kept, because closing a socket after it deleted set elements waits for the kernel to
    release them (an RCU grace period, ~10 ms): with one socket per change, every change
    that removes an address would pay that.
    """

    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self._seq = 0

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _socket(self) -> socket.socket:
        if self._sock is None:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
            sock.bind((0, 0))
            self._sock = sock
        return self._sock

    def apply(self, family: str, table: str, changes: Sequence[ElementChange]) -> None:
        """Apply `changes` to `family table`, all or none."""
        if not changes:
            return
        first = self._seq + 1
        self._seq = (self._seq + len(changes) + 2) % 0x7FFF0000
        # The batch markers' sequence numbers too: a failed commit is reported on them.
        wanted = range(first, first + len(changes) + 2)
        acks: list[tuple[int, int]] = []

        def acknowledged() -> int:  # of the changes themselves, not the batch markers
            return sum(first < seq <= first + len(changes) for seq, _ in acks)

        try:
            sock = self._socket()
            sock.send(batch(family, table, changes, first))
            while acknowledged() < len(changes):
                data = sock.recv(65536, socket.MSG_DONTWAIT)
                acks += [a for a in netlink_frames.acks(data) if a[0] in wanted]
        except BlockingIOError:
            pass
        except OSError as exc:
            self.close()
            raise NetlinkApplyError(f"netlink: {exc.strerror or exc}") from None
        failed = [(seq, code) for seq, code in acks if code]
        if failed:
            seq, code = failed[0]
            where = "the transaction"
            if first < seq <= first + len(changes):
                change = changes[seq - first - 1]
                where = f"{'add to' if change.add else 'delete from'} {change.set_name}"
            raise NetlinkApplyError(
                f"nf_tables refused the element changes ({where}): "
                f"{os.strerror(code) or errno.errorcode.get(code, code)}"
            )
        if acknowledged() < len(changes):
            self.close()  # a socket with replies still to come is not reused
            raise NetlinkApplyError(
                f"nf_tables acknowledged {acknowledged()} of {len(changes)} element changes"
            )
