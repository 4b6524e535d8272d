"""NetworkSet (namespaced) and GlobalNetworkSet: labelled lists of CIDRs for rule selectors."""

from __future__ import annotations

from typing import Any

from pycalico.api import checks
from pycalico.api.kind import Kind
from pycalico.api.schema import Field, FieldError, ListOf, Str, Struct, go_tag

# Calico's `cidr` tag: an address or a CIDR, host bits allowed.
NETS_SPEC = Struct((Field("nets", ListOf(Str((go_tag("cidr", checks.ip_or_cidr),)))),))

NAMESPACE_LABEL = "projectcalico.org/namespace"


def _no_namespace_label(resource: dict[str, Any]) -> list[FieldError]:
    """validateNetworkSet / validateGlobalNetworkSet: the label that maps a namespace into
    Calico's v1 model is Calico's to set, not the user's."""
    if NAMESPACE_LABEL not in resource["metadata"].get("labels", {}):
        return []
    reason = f"{NAMESPACE_LABEL} is not a valid label name"
    return [
        FieldError(
            f"metadata.labels[{NAMESPACE_LABEL}]",
            NAMESPACE_LABEL,
            reason,
            "Metadata.Labels (label)",
        )
    ]


NETWORK_SET = Kind(
    "NetworkSet",
    "networksets",
    namespaced=True,
    spec=NETS_SPEC,
    checks=(_no_namespace_label,),
)

GLOBAL_NETWORK_SET = Kind(
    "GlobalNetworkSet",
    "globalnetworksets",
    namespaced=False,
    spec=NETS_SPEC,
    checks=(_no_namespace_label,),
)
