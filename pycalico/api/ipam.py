"""IPAM resources: IPAMConfiguration (user-facing) and the allocator's own records."""

from __future__ import annotations

from typing import Any

from pycalico.api import checks
from pycalico.api.kind import Kind, singleton_name
from pycalico.api.schema import (
    Bool,
    Custom,
    Enum,
    Field,
    FieldError,
    Int,
    ListOf,
    MapOf,
    Str,
    Struct,
)


def _check_ipam_config(spec: dict[str, Any], path: str) -> list[FieldError]:
    errors = []
    if not spec["strictAffinity"] and not spec["autoAllocateBlocks"]:
        errors.append(
            FieldError(
                f"{path}.autoAllocateBlocks",
                False,
                "Cannot disable 'StrictAffinity' and 'AutoAllocateBlocks' at the same time",
            )
        )
    if spec.get("maxBlocksPerHost", 0) > 0 and not spec["strictAffinity"]:
        errors.append(
            FieldError(
                f"{path}.maxBlocksPerHost",
                spec["maxBlocksPerHost"],
                "MaxBlocksPerHost requires StrictAffinity to be enabled",
            )
        )
    return errors


IPAM_CONFIGURATION = Kind(
    "IPAMConfiguration",
    "ipamconfigurations",
    namespaced=False,
    spec=Struct(
        (
            Field("strictAffinity", Bool(), default=False, omitempty=False),
            Field("maxBlocksPerHost", Int(minimum=0)),
            Field("autoAllocateBlocks", Bool(), default=True, omitempty=False),
            Field("kubeVirtVMAddressPersistence", Enum(("Enabled", "Disabled"))),
        ),
        checks=(_check_ipam_config,),
    ),
    name_check=singleton_name("default"),
)


def _allocation(value: Any) -> Any:
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return value
    raise ValueError("allocation must be null or an attribute index")


BLOCK_AFFINITY = Kind(
    "BlockAffinity",
    "blockaffinities",
    namespaced=False,
    spec=Struct(
        (
            Field("state", Enum(("pending", "confirmed", "pendingDeletion"))),
            Field("node", Str(), required=True),
            Field("type", Enum(("host", "virtual"))),
            Field("cidr", Str((checks.cidr,)), required=True),
            Field("deleted", Str()),
        )
    ),
    internal=True,
)

IPAM_BLOCK = Kind(
    "IPAMBlock",
    "ipamblocks",
    namespaced=False,
    spec=Struct(
        (
            Field("cidr", Str((checks.cidr,)), required=True),
            Field("affinity", Str()),
            Field("strictAffinity", Bool(), default=False, omitempty=False),
            Field("allocations", ListOf(Custom(_allocation)), omitempty=False, default=[]),
            Field("unallocated", ListOf(Int(minimum=0)), omitempty=False, default=[]),
            Field(
                "attributes",
                ListOf(
                    Struct(
                        (
                            Field("handle_id", Str()),
                            Field("secondary", MapOf(Str())),
                        )
                    )
                ),
                omitempty=False,
                default=[],
            ),
            Field("sequenceNumber", Int(minimum=0), omitempty=False, default=0),
            Field("sequenceNumberForAllocation", MapOf(Int(minimum=0))),
            Field("deleted", Bool(), omitempty=False, default=False),
        )
    ),
    internal=True,
)

IPAM_HANDLE = Kind(
    "IPAMHandle",
    "ipamhandles",
    namespaced=False,
    spec=Struct(
        (
            Field("handleID", Str(), required=True),
            Field("block", MapOf(Int(minimum=0)), omitempty=False, default={}),
            Field("deleted", Bool(), omitempty=False, default=False),
        )
    ),
    name_check=lambda name: None if name else "name is required",
    internal=True,
)
