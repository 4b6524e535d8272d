"""One IPAM block: the allocation array, the FIFO of free ordinals, the attribute table.

Pure data and decisions, no I/O. The JSON form is Calico's etcd model
(`libcalico-go` AllocationBlock), so a block written by pycalico reads the same to Calico.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from pycalico.ipam.errors import AddressInUse

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

WINDOWS_RESERVED_HANDLE = "windows-reserved-ipam-handle"


@dataclass
class Attribute:
    handle_id: str | None
    secondary: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"handle_id": self.handle_id, "secondary": self.secondary or None}


@dataclass
class Block:
    cidr: Network
    affinity: str | None
    allocations: list[int | None]
    unallocated: list[int]
    attributes: list[Attribute]
    sequence_number: int
    sequence_number_for_allocation: dict[str, int] = field(default_factory=dict)
    deleted: bool = False

    @classmethod
    def new(cls, cidr: Network, affinity: str | None, now_ns: int | None = None) -> Block:
        size = cidr.num_addresses
        return cls(
            cidr=cidr,
            affinity=affinity,
            allocations=[None] * size,
            unallocated=list(range(size)),
            attributes=[],
            # Calico starts a block's sequence at the creation time so a re-created block
            # never repeats the numbers a releaser may still hold from the old one.
            sequence_number=time.time_ns() if now_ns is None else now_ns,
        )

    # --- addresses ---------------------------------------------------------------------

    def ordinal(self, ip: Address) -> int:
        if ip not in self.cidr:
            raise ValueError(f"{ip} is not in block {self.cidr}")
        return int(ip) - int(self.cidr.network_address)

    def address(self, ordinal: int) -> Address:
        return self.cidr.network_address + ordinal

    @property
    def host(self) -> str | None:
        """The owning node for `host:<node>` affinities."""
        if self.affinity and self.affinity.startswith("host:"):
            return self.affinity[len("host:") :]
        return None

    def in_use(self) -> int:
        return len(self.allocations) - len(self.unallocated)

    def is_empty(self) -> bool:
        return all(
            a is None or self.attributes[a].handle_id == WINDOWS_RESERVED_HANDLE
            for a in self.allocations
        )

    # --- changes (callers write the block back with CAS) ---------------------------------

    def assign(
        self,
        count: int,
        handle_id: str | None,
        attrs: dict[str, str],
        reserved: Collection[Address] = (),
    ) -> list[Address]:
        """Take up to `count` free ordinals from the head of the FIFO; reserved IPs stay."""
        if count <= 0:
            return []
        chosen: list[int] = []
        for o in self.unallocated:
            if len(chosen) == count:
                break
            if reserved and self.address(o) in reserved:
                continue
            chosen.append(o)
        if not chosen:
            return []
        taken = set(chosen)
        self.unallocated = [o for o in self.unallocated if o not in taken]
        index = len(self.attributes)
        self.attributes.append(Attribute(handle_id, dict(attrs)))
        for o in chosen:
            self.allocations[o] = index
            self.sequence_number_for_allocation[str(o)] = self.sequence_number
        return [self.address(o) for o in chosen]

    def assign_ordinal(self, ordinal: int, handle_id: str | None, attrs: dict[str, str]) -> None:
        if self.allocations[ordinal] is not None:
            raise AddressInUse(self.address(ordinal))
        self.unallocated.remove(ordinal)
        self.attributes.append(Attribute(handle_id, dict(attrs)))
        self.allocations[ordinal] = len(self.attributes) - 1
        self.sequence_number_for_allocation[str(ordinal)] = self.sequence_number

    def handle_of(self, ordinal: int) -> str | None:
        index = self.allocations[ordinal]
        return None if index is None else self.attributes[index].handle_id

    def attributes_of(self, ordinal: int) -> Attribute | None:
        index = self.allocations[ordinal]
        return None if index is None else self.attributes[index]

    def release(self, ordinals: Iterable[int]) -> list[int]:
        """Free these ordinals (those not allocated are skipped); return the freed ones."""
        freed = [o for o in dict.fromkeys(ordinals) if self.allocations[o] is not None]
        for o in freed:
            self.allocations[o] = None
            self.unallocated.append(o)
            self.sequence_number_for_allocation.pop(str(o), None)
        self._drop_unused_attributes()
        return freed

    def ordinals_of_handle(self, handle_id: str) -> list[int]:
        return [
            o
            for o, a in enumerate(self.allocations)
            if a is not None and self.attributes[a].handle_id == handle_id
        ]

    def _drop_unused_attributes(self) -> None:
        used = sorted({a for a in self.allocations if a is not None})
        if len(used) == len(self.attributes):
            return
        remap = {old: new for new, old in enumerate(used)}
        self.attributes = [self.attributes[i] for i in used]
        self.allocations = [None if a is None else remap[a] for a in self.allocations]

    # --- encoding ------------------------------------------------------------------------

    def to_json(self) -> str:
        return json.dumps(
            {
                "cidr": str(self.cidr),
                "affinity": self.affinity,
                "allocations": self.allocations,
                "unallocated": self.unallocated,
                "attributes": [a.to_json() for a in self.attributes],
                "deleted": self.deleted,
                "sequenceNumber": self.sequence_number,
                "sequenceNumberForAllocation": self.sequence_number_for_allocation or None,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Block:
        data = json.loads(text)
        return cls(
            cidr=ipaddress.ip_network(data["cidr"]),
            affinity=data.get("affinity"),
            allocations=data["allocations"],
            unallocated=data["unallocated"],
            attributes=[
                Attribute(_sanitise_handle(a.get("handle_id")), a.get("secondary") or {})
                for a in data.get("attributes") or []
            ],
            sequence_number=data.get("sequenceNumber", 0),
            sequence_number_for_allocation=data.get("sequenceNumberForAllocation") or {},
            deleted=data.get("deleted", False),
        )


def _sanitise_handle(handle: str | None) -> str | None:
    """Calico cuts handles at the first CR (an old bug wrote some with one)."""
    return handle.split("\r", 1)[0] if handle else handle
