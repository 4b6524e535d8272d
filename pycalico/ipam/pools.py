"""Which pools an allocation may use, and in what order candidate blocks are tried."""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pycalico.ipam.block import Network

Pool = dict[str, Any]


class NoPools(ValueError):
    pass


def fnv32(text: str) -> int:
    """FNV-1 32-bit: Calico seeds each host's block search with it."""
    h = 0x811C9DC5
    for byte in text.encode():
        h = (h * 0x01000193) & 0xFFFFFFFF
        h ^= byte
    return h


def pool_network(pool: Pool) -> Network:
    return ipaddress.ip_network(pool["spec"]["cidr"])


def select_pools(
    pools: Sequence[Pool],
    version: int,
    node: str,
    node_labels: Mapping[str, str],
    requested: Sequence[str] = (),
    use: str = "Workload",
) -> list[Pool]:
    """Calico's pool choice: requested pools (by CIDR or name) or the node's automatic ones."""
    from pycalico.selector import parse

    family = [p for p in pools if pool_network(p).version == version]
    if requested:
        chosen = []
        for wanted in requested:
            match = [
                p
                for p in family
                if p["metadata"]["name"] == wanted or _same_cidr(p["spec"]["cidr"], wanted)
            ]
            if not match or match[0]["spec"].get("disabled"):
                raise NoPools(f"the given pool ({wanted}) does not exist, or is not enabled")
            chosen.append(match[0])
    else:
        chosen = [
            p
            for p in family
            if not p["spec"].get("disabled")
            and p["spec"].get("assignmentMode", "Automatic") == "Automatic"
            and parse(p["spec"].get("nodeSelector", "all()")).evaluate(node_labels)
        ]
        if not chosen:
            raise NoPools(f"no configured Calico pools for node {node}")
    usable = [p for p in chosen if use in p["spec"].get("allowedUses", ["Workload", "Tunnel"])]
    if not usable:
        raise NoPools(f"cannot find a qualified ippool, no pools match the required use ({use})")
    return usable


def _same_cidr(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_network(a) == ipaddress.ip_network(b, strict=False)
    except ValueError:
        return False


def candidate_blocks(pool: Pool, host: str) -> Iterator[Network]:
    """Every block-sized subnet of `pool`, from a host-specific start, wrapping around.

    The start depends only on the host name, so a host that retries walks the same
    candidates, and different hosts tend to start far apart (fewer claim races).
    """
    net = pool_network(pool)
    block_size: int = pool["spec"]["blockSize"]
    count = 1 << (block_size - net.prefixlen)
    step = 1 << (net.max_prefixlen - block_size)
    start = random.Random(fnv32(host)).randrange(count)
    base = int(net.network_address)
    for i in range(count):
        index = (start + i) % count
        yield ipaddress.ip_network((base + index * step, block_size))
