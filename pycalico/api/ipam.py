"""IPAM resources: IPAMConfiguration (user-facing) and the allocator's own records."""

from __future__ import annotations

from typing import Any

from pycalico.api.kind import Kind, singleton_name
from pycalico.api.schema import (
    Bool,
    Enum,
    Field,
    FieldError,
    Int,
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
