"""IPPool and IPReservation."""

from __future__ import annotations

import ipaddress
from typing import Any

from pycalico.api import checks
from pycalico.api.kind import Kind
from pycalico.api.schema import (
    Bool,
    Custom,
    Enum,
    Field,
    FieldError,
    GoTag,
    Int,
    ListOf,
    Str,
    Struct,
    WholeList,
    type_name,
)

ENCAP_MODES = ("Never", "Always", "CrossSubnet")
ALLOWED_USES = ("Workload", "Tunnel", "LoadBalancer")
LINK_LOCAL_V4 = ipaddress.ip_network("169.254.0.0/16")
LINK_LOCAL_V6 = ipaddress.ip_network("fe80::/10")


# libcalico-go's IPPool client names the fields it checks itself so; its generic validator
# would say just `CIDR`.
CIDR_FIELD = "IPPool.Spec.CIDR"


def _pool_cidr(value: Any) -> str:
    if not isinstance(value, str) or checks.cidr(value):
        raise FieldError("spec.cidr", value, "IPPool CIDR must be a valid subnet", CIDR_FIELD)
    net = ipaddress.ip_network(value, strict=False)
    if str(net.network_address) != str(ipaddress.ip_interface(value).ip):
        # Calico normalises the CIDR before this check, so it prints the masked value.
        raise FieldError("spec.cidr", str(net), "IPPool CIDR is not strictly masked", CIDR_FIELD)
    return str(net)


def _default_block_size(spec: dict[str, Any]) -> int:
    return 26 if ipaddress.ip_network(spec["cidr"]).version == 4 else 122


def _check_spec(spec: dict[str, Any], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    net = ipaddress.ip_network(spec["cidr"])
    block = spec["blockSize"]
    low, high = (20, 32) if net.version == 4 else (116, 128)
    if not low <= block <= high:
        errors.append(
            FieldError(
                f"{path}.blockSize",
                block,
                f"IPv{net.version} block size must be between {low} and {high}",
                "IPPool.Spec.BlockSize",
            )
        )
    elif not spec.get("disabled") and net.prefixlen > block:
        errors.append(
            FieldError(
                f"{path}.cidr",
                spec["cidr"],
                "IP pool size is too small for use with Calico IPAM. "
                "It must be equal to or greater than the block size.",
                CIDR_FIELD,
            )
        )
    link_local = LINK_LOCAL_V4 if net.version == 4 else LINK_LOCAL_V6
    if net.overlaps(link_local):
        errors.append(
            FieldError(
                f"{path}.cidr",
                spec["cidr"],
                f"IPPool CIDR overlaps with IPv{net.version} Link Local range {link_local}",
                CIDR_FIELD,
            )
        )
    ipip, vxlan = spec["ipipMode"], spec["vxlanMode"]
    if ipip != "Never" and vxlan != "Never":
        errors.append(
            FieldError(
                f"{path}.vxlanMode",
                vxlan,
                "Cannot enable both VXLAN and IPIP on the same IPPool",
                "IPPool.Spec.VXLANMode",
            )
        )
    if net.version == 6 and ipip != "Never":
        errors.append(
            FieldError(
                f"{path}.ipipMode",
                ipip,
                "IPIP is not supported on an IPv6 IP pool",
                "IPPool.Spec.IPIPMode",
            )
        )
    uses = spec["allowedUses"]
    if "LoadBalancer" in uses:
        # libcalico-go's validator words these (its field names spell "IPpool" so).
        errors.extend(
            FieldError(
                f"{path}.allowedUses",
                uses,
                f"LoadBalancer cannot be used at the same time as: {use}",
                "IPpool.AllowedUses",
            )
            for use in uses
            if use != "LoadBalancer"
        )
        if ipip != "Never" or vxlan != "Never":
            errors.append(
                FieldError(
                    f"{path}.ipipMode",
                    ipip,
                    "Neither IPIPMode nor VXLANMode can be enabled on AllowedUses LoadBalancer "
                    "IP pool",
                    "IPpool.IPIPMode",
                )
            )
        if not spec.get("disableBGPExport"):
            errors.append(
                FieldError(
                    f"{path}.disableBGPExport",
                    False,
                    "IP Pool with AllowedUse LoadBalancer must have DisableBGPExport set to true",
                    "IPpool.DisableBGPExport",
                )
            )
        if spec["nodeSelector"] != "all()":
            errors.append(
                FieldError(
                    f"{path}.nodeSelector",
                    spec["nodeSelector"],
                    "IP Pool with AllowedUse LoadBalancer must have node selector set to all()",
                    "IPpool.NodeSelector",
                )
            )
    return errors


def _must_not_be_set(value: Any) -> Any:
    raise ValueError("deprecated v1 field; must not be set")


def _unique(values: list[Any]) -> str | None:
    return "duplicate entries" if len(set(values)) != len(values) else None


IPPOOL_SPEC = Struct(
    (
        Field("cidr", Custom(_pool_cidr), required=True),
        Field("vxlanMode", Enum(ENCAP_MODES), default="Never"),
        Field("ipipMode", Enum(ENCAP_MODES), default="Never"),
        Field("natOutgoing", Bool()),
        Field("disabled", Bool()),
        Field("disableBGPExport", Bool()),
        Field("blockSize", Int(), default=_default_block_size),
        Field("nodeSelector", Str((checks.selector,)), default="all()"),
        Field("namespaceSelector", Str((checks.selector,))),
        Field("ipip", Custom(_must_not_be_set)),
        Field("nat-outgoing", Custom(_must_not_be_set)),
        Field(
            "allowedUses", ListOf(Enum(ALLOWED_USES), (_unique,)), default=["Workload", "Tunnel"]
        ),
        Field("assignmentMode", Enum(("Automatic", "Manual")), default="Automatic"),
    ),
    checks=(_check_spec,),
)

IPPOOL = Kind(
    "IPPool",
    "ippools",
    namespaced=False,
    spec=IPPOOL_SPEC,
)


def _reserved_cidrs(value: Any) -> list[str]:
    """Calico's `cidrs` tag, which checks the list as one value (the error shows it all);
    CIDRs are stored masked."""
    if not isinstance(value, list):
        raise ValueError(f"must be a list, not a {type_name(value)}")
    if any(not isinstance(v, str) or checks.ip_or_cidr(v) for v in value):
        raise ValueError(GoTag("cidrs"))
    return [str(ipaddress.ip_network(v, strict=False)) if "/" in v else v for v in value]


IPRESERVATION = Kind(
    "IPReservation",
    "ipreservations",
    namespaced=False,
    spec=Struct((Field("reservedCIDRs", WholeList(_reserved_cidrs)),)),
)
