"""NetworkSet (namespaced) and GlobalNetworkSet: labelled lists of CIDRs for rule selectors."""

from __future__ import annotations

from pycalico.api import checks
from pycalico.api.kind import Kind
from pycalico.api.schema import Field, ListOf, Str, Struct

NETS_SPEC = Struct((Field("nets", ListOf(Str((checks.ip_or_cidr,)))),))

NETWORK_SET = Kind("NetworkSet", "networksets", namespaced=True, spec=NETS_SPEC)

GLOBAL_NETWORK_SET = Kind(
    "GlobalNetworkSet",
    "globalnetworksets",
    namespaced=False,
    spec=NETS_SPEC,
)
