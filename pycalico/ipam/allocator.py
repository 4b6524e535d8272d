"""Calico's block allocator over the datastore contract.

Every change is one datastore transaction guarded by the revisions it read, so concurrent
allocators (many CNI calls, many nodes) never hand out an address twice. Where Calico
writes the block and the handle in two steps (and can leak a count between them), pycalico
writes both in one transaction; a block and its affinity are also claimed together, so
there is no pending-affinity window to clean up after a crash.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pycalico.datastore.backend import (
    Backend,
    Compare,
    DatastoreUnavailable,
    Delete,
    KeyValue,
    Op,
    Put,
    RevisionConflict,
)
from pycalico.ipam import keys
from pycalico.ipam.block import Address, Block, Network
from pycalico.ipam.errors import IpamError, PoolsExhausted
from pycalico.ipam.pools import NoPools, Pool, candidate_blocks, pool_network, select_pools

MAX_RETRIES = 100
# A BlockAffinity value as Calico's etcd model writes it.
CONFIRMED_AFFINITY = json.dumps({"state": "confirmed", "deleted": False}, separators=(",", ":"))
DEFAULT_BLOCK_LIMIT = 20

_T = TypeVar("_T")
Released = tuple[int, list[Address]]  # how many were freed, those that were not allocated


def _decoded(kv: KeyValue, decode: Callable[[str], _T], what: str) -> _T:
    """`decode(kv.value)`; a value something else wrote there is an error naming the key."""
    try:
        return decode(kv.value)
    except (ValueError, TypeError, KeyError, AttributeError):
        raise DatastoreUnavailable(f"cannot read {kv.key}: not a stored Calico {what}") from None


def _block(kv: KeyValue) -> Block:
    return _decoded(kv, Block.from_json, "IPAM block")


def _handle_counts(kv: KeyValue) -> dict[str, int]:
    """A handle's address count per block CIDR."""

    def decode(text: str) -> dict[str, int]:
        counts = json.loads(text).get("block") or {}
        for cidr, count in counts.items():
            ipaddress.ip_network(cidr)
            if not isinstance(count, int):
                raise TypeError(count)
        return dict(counts)

    return _decoded(kv, decode, "IPAM handle")


def _affinity_state(kv: KeyValue) -> str:
    return _decoded(kv, lambda text: str(json.loads(text).get("state") or ""), "block affinity")


@dataclass(frozen=True)
class _Write(Generic[_T]):
    """A transaction to try and what it yields once it lands."""

    compares: list[Compare]
    ops: list[Op]
    result: _T


@dataclass
class IpamConfig:
    strict_affinity: bool = False
    auto_allocate_blocks: bool = True
    max_blocks_per_host: int = 0


@dataclass
class Reserved:
    """IPReservation CIDRs: addresses auto-assign never hands out."""

    networks: list[Network] = field(default_factory=list)

    def __contains__(self, ip: object) -> bool:
        return any(ip in n for n in self.networks)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def covers(self, block: Network) -> bool:
        return any(
            n.version == block.version and block.subnet_of(n)  # type: ignore[arg-type]
            for n in self.networks
        )


@dataclass
class ClusterState:
    """What one allocation reads once: pools, node labels, reservations, IPAM config."""

    pools: list[Pool]
    node_labels: dict[str, str]
    reserved: Reserved
    config: IpamConfig


class Allocator:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def _compare_and_swap(self, attempt: Callable[[], _T | _Write[_T]]) -> _T:
        """Run `attempt` (read, then decide) until the write it returns lands, or until it
        returns an answer that needs no write. A write that lost to another writer
        (RevisionConflict) is decided again from a fresh read, at most MAX_RETRIES times."""
        for _ in range(MAX_RETRIES):
            outcome = attempt()
            if not isinstance(outcome, _Write):
                return outcome
            try:
                self.backend.txn(outcome.compares, outcome.ops)
            except RevisionConflict:
                continue
            return outcome.result
        raise IpamError("Max retries hit - excessive concurrent IPAM requests")

    # --- cluster state -------------------------------------------------------------------

    def read_state(self, host: str) -> ClusterState:
        from pycalico.api.registry import resolve
        from pycalico.datastore.resources import ResourceClient

        client = ResourceClient(self.backend)
        pools, _ = client.list(resolve("IPPool"))
        node = client.get(resolve("Node"), host)
        reservations, _ = client.list(resolve("IPReservation"))
        reserved = Reserved(
            [
                ipaddress.ip_network(c, strict=False)
                for r in reservations
                for c in r["spec"].get("reservedCIDRs", [])
            ]
        )
        config_res = client.get(resolve("IPAMConfiguration"), "default")
        spec = (config_res or {}).get("spec", {})
        config = IpamConfig(
            spec.get("strictAffinity", False),
            spec.get("autoAllocateBlocks", True),
            spec.get("maxBlocksPerHost", 0),
        )
        labels = (node or {}).get("metadata", {}).get("labels", {})
        return ClusterState(pools, labels, reserved, config)

    # --- auto-assign ---------------------------------------------------------------------

    def auto_assign(
        self,
        count: int,
        version: int,
        handle: str,
        attrs: Mapping[str, str],
        host: str,
        pools: Sequence[str] = (),
        use: str = "Workload",
        state: ClusterState | None = None,
    ) -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
        """`count` addresses of IP `version` for `handle`, as block-masked interfaces."""
        if count <= 0:
            return []
        state = state or self.read_state(host)
        try:
            usable = select_pools(state.pools, version, host, state.node_labels, pools, use)
        except NoPools as exc:
            raise IpamError(str(exc)) from None
        got: list[Address] = []
        try:
            self._fill(count, version, usable, handle, attrs, host, state, got)
        except BaseException:
            # All or nothing: whatever went wrong, give back what this call took.
            with contextlib.suppress(Exception):
                self._release_addresses(got)
            raise
        return [self._with_block_prefix(ip, usable) for ip in got]

    def _fill(
        self,
        count: int,
        version: int,
        usable: Sequence[Pool],
        handle: str,
        attrs: Mapping[str, str],
        host: str,
        state: ClusterState,
        got: list[Address],
    ) -> None:
        nets = [pool_network(p) for p in usable]
        limit = state.config.max_blocks_per_host or DEFAULT_BLOCK_LIMIT
        claimed: list[Network] = []
        while len(got) < count:
            affine = [
                b for b in self._affine_blocks(host, version) if any(b.subnet_of(n) for n in nets)
            ]  # type: ignore[arg-type]
            progress = self._assign_from_affine(affine, count, handle, attrs, host, state, got)
            if len(got) >= count:
                return
            if progress:
                continue
            if len(affine) >= limit:
                raise IpamError(
                    "Need to allocate an IPAM block but could not - limit of "
                    f"{limit} blocks reached for this node"
                )
            if not state.config.auto_allocate_blocks:
                raise IpamError("failed to find or claim a block")
            if len(claimed) > count:
                # Each new block serves at least one address (one more covers a block
                # another host borrowed empty meanwhile): claiming more means the node
                # cannot see its own blocks, and would go on until the pool is taken.
                for cidr in claimed:
                    with contextlib.suppress(IpamError):
                        self.release_affinity(host, cidr)
                raise IpamError(
                    f"claimed {len(claimed)} new IPAM blocks for node '{host}' to assign "
                    f"{count} addresses and could assign from none of them; gave them back"
                )
            new_block = self._claim_block(usable, host, state.reserved)
            if new_block is None:
                break
            claimed.append(new_block)
        if not state.config.strict_affinity:
            self._borrow(usable, count, handle, attrs, host, state, got)
        if len(got) < count:
            pool_list = ", ".join(p["spec"]["cidr"] for p in usable)
            raise PoolsExhausted(
                f"Assigned {len(got)} out of {count} requested IPv{version} addresses; "
                f"No IPs available in pools: [{pool_list}]"
            )

    def _with_block_prefix(self, ip: Address, pools: Sequence[Pool]) -> Any:
        for p in pools:
            if ip in pool_network(p):
                return ipaddress.ip_interface(f"{ip}/{p['spec']['blockSize']}")
        return ipaddress.ip_interface(ip)

    def _affine_blocks(self, host: str, version: int) -> list[Network]:
        kvs, _ = self.backend.list(keys.host_affinity_prefix(host, version))
        blocks = []
        for kv in kvs:
            parsed = keys.parse_affinity_key(kv.key)
            # Pending affinities belong to an unfinished claim: not ours yet.
            if parsed and _affinity_state(kv) in ("", "confirmed"):
                blocks.append(parsed[1])
        return blocks

    def _assign_from_affine(
        self,
        affine: Sequence[Network],
        count: int,
        handle: str,
        attrs: Mapping[str, str],
        host: str,
        state: ClusterState,
        got: list[Address],
    ) -> bool:
        progress = False
        for cidr in affine:
            ips = self._assign_in_block(
                cidr, count - len(got), handle, attrs, host, state, affinity_check=True
            )
            got.extend(ips)
            progress = progress or bool(ips)
            if len(got) >= count:
                break
        return progress

    def _claim_block(self, pools: Sequence[Pool], host: str, reserved: Reserved) -> Network | None:
        """Claim the first free block-sized subnet (for this host) in pool order."""
        for pool in pools:
            version = pool_network(pool).version
            existing = {kv.key for kv in self.backend.list(keys.block_prefix(version))[0]}
            for cidr in candidate_blocks(pool, host):
                key = keys.block_key(cidr)
                if key in existing or (reserved and reserved.covers(cidr)):
                    continue
                block = Block.new(cidr, f"host:{host}")
                affinity_key = keys.affinity_key(host, cidr)
                try:
                    self.backend.txn(
                        [Compare(key, 0), Compare(affinity_key, 0)],
                        [Put(key, block.to_json()), Put(affinity_key, CONFIRMED_AFFINITY)],
                    )
                except RevisionConflict:
                    existing.add(key)  # another host won this one: try the next
                    continue
                return cidr
        return None

    def _borrow(
        self,
        pools: Sequence[Pool],
        count: int,
        handle: str,
        attrs: Mapping[str, str],
        host: str,
        state: ClusterState,
        got: list[Address],
    ) -> None:
        for pool in pools:
            version = pool_network(pool).version
            existing = {kv.key for kv in self.backend.list(keys.block_prefix(version))[0]}
            for cidr in candidate_blocks(pool, host):
                if keys.block_key(cidr) not in existing:
                    continue
                got.extend(
                    self._assign_in_block(
                        cidr, count - len(got), handle, attrs, host, state, affinity_check=False
                    )
                )
                if len(got) >= count:
                    return

    def _assign_in_block(
        self,
        cidr: Network,
        count: int,
        handle: str,
        attrs: Mapping[str, str],
        host: str,
        state: ClusterState,
        affinity_check: bool,
    ) -> list[Address]:
        key = keys.block_key(cidr)

        def attempt() -> list[Address] | _Write[list[Address]]:
            kv = self.backend.get(key)
            if kv is None:
                return []
            block = _block(kv)
            if affinity_check and block.host != host:
                return []
            ips = block.assign(count, handle, dict(attrs), state.reserved)
            if not ips:
                return []
            block.sequence_number += 1
            compares, ops = self._handle_change(handle, {str(cidr): len(ips)})
            return _Write(
                [Compare(key, kv.mod_revision), *compares], [Put(key, block.to_json()), *ops], ips
            )

        return self._compare_and_swap(attempt)

    # --- specific addresses --------------------------------------------------------------

    def assign_ip(
        self,
        ip: Address,
        handle: str,
        attrs: Mapping[str, str],
        host: str,
        state: ClusterState | None = None,
    ) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
        state = state or self.read_state(host)
        pool = next(
            (p for p in state.pools if ip in pool_network(p) and not p["spec"].get("disabled")),
            None,
        )
        if pool is None:
            raise IpamError(f"The provided IP address {ip} is not in a configured pool")
        cidr = ipaddress.ip_network(f"{ip}/{pool['spec']['blockSize']}", strict=False)
        key = keys.block_key(cidr)
        assigned = ipaddress.ip_interface(f"{ip}/{cidr.prefixlen}")

        def attempt() -> _Write[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
            kv = self.backend.get(key)
            claim: list[Op] = []
            block_compare = Compare(key, 0 if kv is None else kv.mod_revision)
            if kv is None:
                block = Block.new(cidr, f"host:{host}")
                affinity_key = keys.affinity_key(host, cidr)
                claim = [Put(affinity_key, CONFIRMED_AFFINITY)]
            else:
                block = _block(kv)
                if state.config.strict_affinity and block.host != host:
                    raise IpamError("Block host affinity does not match")
            block.assign_ordinal(block.ordinal(ip), handle, dict(attrs))
            if kv is not None:
                block.sequence_number += 1  # every write of an existing block moves it on
            compares, ops = self._handle_change(handle, {str(cidr): 1})
            return _Write(
                [block_compare, *compares], [Put(key, block.to_json()), *claim, *ops], assigned
            )

        return self._compare_and_swap(attempt)

    # --- release -------------------------------------------------------------------------

    def release_ips(self, ips: Iterable[Address]) -> list[Address]:
        """Free these addresses; return those that were not allocated."""
        return self._release_addresses(list(ips))

    def _release_addresses(self, ips: list[Address]) -> list[Address]:
        if not ips:
            return []
        from pycalico.api.registry import resolve
        from pycalico.datastore.resources import ResourceClient

        pools, _ = ResourceClient(self.backend).list(resolve("IPPool"))
        by_block: dict[str, list[Address]] = {}
        unallocated: list[Address] = []
        for ip in ips:
            kv = self._block_holding(ip, pools)
            if kv is None:
                unallocated.append(ip)
            else:
                by_block.setdefault(kv.key, []).append(ip)
        for key, block_ips in by_block.items():
            _, missing = self._release_in_block(
                key, lambda b, i=block_ips: [b.ordinal(x) for x in i]
            )
            unallocated.extend(missing)
        return unallocated

    def release_if_unchanged(self, ip: Address, handle: str | None, sequence: int | None) -> bool:
        """Free `ip` only if it is still the allocation a report saw: same handle and, when
        given, the same sequence number (an address freed and handed out again since has
        a new one). Whether it was freed."""
        from pycalico.api.registry import resolve
        from pycalico.datastore.resources import ResourceClient

        pools, _ = ResourceClient(self.backend).list(resolve("IPPool"))
        kv = self._block_holding(ip, pools)
        if kv is None:
            return False

        def pick(block: Block) -> list[int]:
            ordinal = block.ordinal(ip)
            seen = block.sequence_number_for_allocation.get(str(ordinal))
            if block.handle_of(ordinal) != handle or sequence not in (None, seen):
                return []
            return [ordinal]

        return self._release_in_block(kv.key, pick)[0] == 1

    def release_by_handle(self, handle: str) -> int:
        """Free every address of `handle`; return how many were freed."""
        kv = self.backend.get(keys.handle_key(handle))
        if kv is None:
            return 0
        freed = 0
        for cidr in _handle_counts(kv):
            key = keys.block_key(ipaddress.ip_network(cidr))
            freed += self._release_in_block(key, lambda b: b.ordinals_of_handle(handle))[0]
        # Counts for blocks that vanished would otherwise keep the handle alive forever.
        self._forget_missing_blocks(handle)
        return freed

    def _forget_missing_blocks(self, handle: str) -> None:
        def attempt() -> _Write[None] | None:
            kv = self.backend.get(keys.handle_key(handle))
            if kv is None:
                return None
            stale = {
                cidr: -count
                for cidr, count in _handle_counts(kv).items()
                if self.backend.get(keys.block_key(ipaddress.ip_network(cidr))) is None
            }
            if not stale:
                return None
            _, ops = self._handle_change(handle, stale)
            return _Write([Compare(kv.key, kv.mod_revision)], ops, None)

        # Best effort: the addresses are free already; counts left after losing every race
        # go at the handle's next release.
        with contextlib.suppress(IpamError):
            self._compare_and_swap(attempt)

    def _release_in_block(self, key: str, pick: Any) -> Released:
        """Free the ordinals `pick(block)` chooses: (how many were freed, those not allocated)."""

        def attempt() -> Released | _Write[Released]:
            kv = self.backend.get(key)
            if kv is None:
                return 0, []
            block = _block(kv)
            wanted = pick(block)
            handles: dict[str, int] = {}
            for o in wanted:
                h = block.handle_of(o)
                if h is not None:
                    handles[h] = handles.get(h, 0) - 1
            freed = block.release(wanted)
            not_allocated = [block.address(o) for o in wanted if o not in set(freed)]
            if not freed:
                return 0, not_allocated
            compares = [Compare(key, kv.mod_revision)]
            ops: list[Op] = []
            if block.is_empty() and block.affinity is None:
                ops.append(Delete(key))
            else:
                block.sequence_number += 1
                ops.append(Put(key, block.to_json()))
            for h, delta in handles.items():
                c, o = self._handle_change(h, {str(block.cidr): delta})
                compares += c
                ops += o
            return _Write(compares, ops, (len(freed), not_allocated))

        return self._compare_and_swap(attempt)

    def _block_holding(self, ip: Address, pools: Sequence[Pool]) -> KeyValue | None:
        for p in pools:
            if ip in pool_network(p):
                cidr = ipaddress.ip_network(f"{ip}/{p['spec']['blockSize']}", strict=False)
                return self.backend.get(keys.block_key(cidr))
        for kv in self.backend.list(keys.block_prefix(ip.version))[0]:
            if ip in _block(kv).cidr:
                return kv
        return None

    # --- handles -------------------------------------------------------------------------

    def _handle_change(
        self, handle: str, deltas: Mapping[str, int]
    ) -> tuple[list[Compare], list[Op]]:
        """The compare and write that apply `deltas` (per block CIDR) to a handle's counts."""
        key = keys.handle_key(handle)
        kv = self.backend.get(key)
        counts: dict[str, int] = {} if kv is None else _handle_counts(kv)
        for cidr, delta in deltas.items():
            value = counts.get(cidr, 0) + delta
            if value > 0:
                counts[cidr] = value
            else:
                counts.pop(cidr, None)
        compare = Compare(key, 0 if kv is None else kv.mod_revision)
        if not counts:
            return [compare], ([Delete(key)] if kv is not None else [])
        value = json.dumps(
            {"handleID": handle, "block": counts, "deleted": False}, separators=(",", ":")
        )
        return [compare], [Put(key, value)]

    def addresses_of_handle(
        self, handle: str
    ) -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
        kv = self.backend.get(keys.handle_key(handle))
        if kv is None:
            return []
        out = []
        for cidr in _handle_counts(kv):
            network = ipaddress.ip_network(cidr)
            block_kv = self.backend.get(keys.block_key(network))
            if block_kv is None:
                continue
            block = _block(block_kv)
            out += [
                ipaddress.ip_interface(f"{block.address(o)}/{network.prefixlen}")
                for o in block.ordinals_of_handle(handle)
            ]
        return out

    def blocks(self, version: int | None = None) -> list[Block]:
        versions = (4, 6) if version is None else (version,)
        return [_block(kv) for v in versions for kv in self.backend.list(keys.block_prefix(v))[0]]

    def handles_on_node(self, node: str, prefix: str = "") -> dict[str, dict[str, str]]:
        """Handles (starting with `prefix`) holding addresses for `node`, with their attributes."""
        found: dict[str, dict[str, str]] = {}
        for block in self.blocks():
            for attr in block.attributes:
                handle = attr.handle_id
                if handle and handle.startswith(prefix) and attr.secondary.get("node") == node:
                    found[handle] = attr.secondary
        return found

    def release_pool_affinities(self, pool_cidr: Network) -> None:
        """Give up every host's claim on blocks of a pool being deleted.

        Empty blocks go away with their affinity; blocks still holding addresses lose
        their owner but keep the addresses until those are released.
        """
        for kv in self.backend.list(keys.all_affinities_prefix())[0]:
            parsed = keys.parse_affinity_key(kv.key)
            if parsed is None:
                continue  # e.g. Calico's host marker /calico/ipam/v2/host/<node>
            host, cidr = parsed
            if cidr.version != pool_cidr.version or not cidr.subnet_of(pool_cidr):  # type: ignore[arg-type]
                continue
            self.release_affinity(host, cidr)

    def affinities(self) -> list[tuple[str, Network]]:
        """(host, block CIDR) of every block affinity key."""
        found = []
        for kv in self.backend.list(keys.all_affinities_prefix())[0]:
            parsed = keys.parse_affinity_key(kv.key)
            if parsed is not None:
                found.append(parsed)
        return found

    def release_affinity(self, host: str, cidr: Network) -> None:
        """Take `host`'s claim off a block: its affinity key, and the block's own record of
        it (the block goes too if it is empty). Either may be missing already."""
        affinity_key = keys.affinity_key(host, cidr)
        block_key = keys.block_key(cidr)

        def attempt() -> _Write[None] | None:
            affinity = self.backend.get(affinity_key)
            compares = [Compare(affinity_key, 0 if affinity is None else affinity.mod_revision)]
            ops: list[Op] = [] if affinity is None else [Delete(affinity_key)]
            block_kv = self.backend.get(block_key)
            if block_kv is not None:
                block = _block(block_kv)
                compares.append(Compare(block_key, block_kv.mod_revision))
                if block.host == host:
                    if block.is_empty():
                        ops.append(Delete(block_key))
                    else:
                        block.affinity = None
                        block.sequence_number += 1
                        ops.append(Put(block_key, block.to_json()))
            return _Write(compares, ops, None) if ops else None

        self._compare_and_swap(attempt)
