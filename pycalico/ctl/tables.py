"""calicoctl's table output: columns per kind, rendered like Go's text/tabwriter."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

Resource = dict[str, Any]
Column = Callable[[Resource, "TableContext"], str]


class TableContext:
    """Cluster facts some columns need (the global AS number for Node's ASN column)."""

    def __init__(self, global_asn: str = "64512") -> None:
        self.global_asn = global_asn


def _spec(path: str) -> Column:
    keys = path.split(".")

    def get(resource: Resource, _: TableContext) -> str:
        value: Any = resource.get("spec", {})
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return _text(value)

    return get


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    return str(value)


def _name(resource: Resource, _: TableContext) -> str:
    return str(resource["metadata"]["name"])


def _bool_spec(key: str) -> Column:
    return lambda r, _: "true" if r["spec"].get(key) else "false"


def _or_dash(column: Column) -> Column:
    return lambda r, ctx: column(r, ctx) or "-"


def _node_asn(resource: Resource, ctx: TableContext) -> str:
    asn = resource["spec"].get("bgp", {}).get("asNumber")
    return str(asn) if asn is not None else f"({ctx.global_asn})"


def _node_ip(key: str) -> Column:
    return lambda r, _: str(r["spec"].get("bgp", {}).get(key, ""))


def _peer_node(resource: Resource, _: TableContext) -> str:
    spec = resource["spec"]
    return spec.get("node") or spec.get("nodeSelector") or "(global)"


def _peer_asn(resource: Resource, _: TableContext) -> str:
    # A Go value field, not a pointer: a peerSelector peer's unset AS prints as 0.
    return str(resource["spec"].get("asNumber", 0))


def _mesh_enabled(resource: Resource, _: TableContext) -> str:
    value = resource["spec"].get("nodeToNodeMeshEnabled")
    return "-" if value is None else ("true" if value else "false")


def _wep_workload(resource: Resource, _: TableContext) -> str:
    spec = resource["spec"]
    return str(spec.get("pod") or spec.get("workload") or "")


def _nats(resource: Resource, _: TableContext) -> str:
    return ",".join(
        f"{n['internalIP']}:{n['externalIP']}" for n in resource["spec"].get("ipNATs", [])
    )


def _labels(resource: Resource, _: TableContext) -> str:
    labels = resource["metadata"].get("labels", {})
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _truncated_nets(resource: Resource, _: TableContext) -> str:
    text = ",".join(resource["spec"].get("nets", []))
    return text if len(text) <= 80 else text[:77] + "..."


def _count(key: str) -> Column:
    return lambda r, _: str(len(r["spec"].get(key, [])))


def _pod_selector(resource: Resource, _: TableContext) -> str:
    from pycalico.api.staged import pod_selector_text

    return pod_selector_text(resource["spec"].get("podSelector") or {})


def _hep_ips(resource: Resource, _: TableContext) -> str:
    return ",".join(resource["spec"].get("expectedIPs", []))


# kind -> (default columns, wide columns); every column is (HEADER, getter).
_NAME = ("NAME", _name)
_POLICY_PS = (_NAME, ("TIER", _spec("tier")))
_POLICY_WIDE = (*_POLICY_PS, ("ORDER", _spec("order")), ("SELECTOR", _spec("selector")))
COLUMNS: dict[str, tuple[tuple[tuple[str, Column], ...], tuple[tuple[str, Column], ...]]] = {
    "IPPool": (
        (_NAME, ("CIDR", _spec("cidr")), ("SELECTOR", _spec("nodeSelector"))),
        (
            _NAME,
            ("CIDR", _spec("cidr")),
            ("NAT", _bool_spec("natOutgoing")),
            ("IPIPMODE", _spec("ipipMode")),
            ("VXLANMODE", _spec("vxlanMode")),
            ("DISABLED", _bool_spec("disabled")),
            ("DISABLEBGPEXPORT", _bool_spec("disableBGPExport")),
            ("SELECTOR", _spec("nodeSelector")),
            ("ASSIGNMENTMODE", _spec("assignmentMode")),
        ),
    ),
    "Node": (
        (_NAME,),
        (
            _NAME,
            ("ASN", _node_asn),
            ("IPV4", _node_ip("ipv4Address")),
            ("IPV6", _node_ip("ipv6Address")),
        ),
    ),
    "WorkloadEndpoint": (
        (
            ("WORKLOAD", _wep_workload),
            ("NODE", _spec("node")),
            ("NETWORKS", _spec("ipNetworks")),
            ("INTERFACE", _spec("interfaceName")),
        ),
        (
            _NAME,
            ("WORKLOAD", _wep_workload),
            ("NODE", _spec("node")),
            ("NETWORKS", _spec("ipNetworks")),
            ("INTERFACE", _spec("interfaceName")),
            ("PROFILES", _spec("profiles")),
            ("NATS", _nats),
        ),
    ),
    "BGPPeer": ((_NAME, ("PEERIP", _spec("peerIP")), ("NODE", _peer_node), ("ASN", _peer_asn)),)
    * 2,
    "BGPConfiguration": (
        (
            _NAME,
            # Calico's template prints the dash for the other two columns only.
            ("LOGSEVERITY", _spec("logSeverityScreen")),
            ("MESHENABLED", _mesh_enabled),
            ("ASNUMBER", _or_dash(_spec("asNumber"))),
        ),
    )
    * 2,
    "BGPFilter": (
        (
            _NAME,
            ("NUMEXPORTV4", _count("exportV4")),
            ("NUMIMPORTV4", _count("importV4")),
            ("NUMEXPORTV6", _count("exportV6")),
            ("NUMIMPORTV6", _count("importV6")),
        ),
    )
    * 2,
    "NetworkPolicy": (_POLICY_PS, _POLICY_WIDE),
    "GlobalNetworkPolicy": (_POLICY_PS, _POLICY_WIDE),
    "StagedNetworkPolicy": (_POLICY_PS, _POLICY_WIDE),
    "StagedGlobalNetworkPolicy": (_POLICY_PS, _POLICY_WIDE),
    "StagedKubernetesNetworkPolicy": ((_NAME,), (_NAME, ("PODSELECTOR", _pod_selector))),
    "HostEndpoint": (
        (_NAME, ("NODE", _spec("node"))),
        (
            _NAME,
            ("NODE", _spec("node")),
            ("INTERFACE", _spec("interfaceName")),
            ("IPS", _hep_ips),
            ("PROFILES", _spec("profiles")),
        ),
    ),
    "Profile": ((_NAME,), (_NAME, ("LABELS", _labels))),
    "NetworkSet": ((_NAME,), (_NAME, ("NETS", _truncated_nets))),
    "GlobalNetworkSet": ((_NAME,), (_NAME, ("NETS", _truncated_nets))),
    "IPReservation": ((_NAME,), (_NAME, ("CIDRS", _spec("reservedCIDRs")))),
    "ClusterInformation": (
        (
            _NAME,
            ("CLUSTERGUID", _spec("clusterGUID")),
            ("CLUSTERTYPE", _spec("clusterType")),
            ("CALICOVERSION", _spec("calicoVersion")),
            ("DATASTOREREADY", _spec("datastoreReady")),
        ),
    )
    * 2,
    "Tier": ((_NAME, ("ORDER", _spec("order"))),) * 2,
}


def _namespace(resource: Resource, _: TableContext) -> str:
    return str(resource["metadata"].get("namespace", ""))


def columns_for(kind: str, wide: bool, with_namespace: bool) -> list[tuple[str, Column]]:
    ps, wide_cols = COLUMNS.get(kind, ((_NAME,), (_NAME,)))
    cols = list(wide_cols if wide else ps)
    if with_namespace:
        cols.insert(0, ("NAMESPACE", _namespace))
    return cols


def custom_columns(
    kind: str, names: Sequence[str], with_namespace: bool
) -> list[tuple[str, Column]]:
    """`custom-columns=A,B`: any header this kind shows in its default or wide table."""
    known = {h: c for h, c in columns_for(kind, True, True) + columns_for(kind, False, True)}
    cols = []
    for name in names:
        header = name.strip().upper()
        if header not in known:
            raise ValueError(
                f"unknown column '{name}' for {kind} (known: {', '.join(sorted(known))})"
            )
        cols.append((header, known[header]))
    return cols


def render(rows: Sequence[Sequence[str]]) -> str:
    """text/tabwriter with minwidth 5, padding 3, every cell tab-terminated, then a blank line."""
    if not rows:
        return ""
    widths = [max(5, max(len(row[i]) for row in rows) + 3) for i in range(len(rows[0]))]
    lines = ["".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines) + "\n\n"


def table(
    resources: Sequence[Resource], cols: Sequence[tuple[str, Column]], ctx: TableContext
) -> str:
    rows = [[header for header, _ in cols]]
    rows += [[get(r, ctx) for _, get in cols] for r in resources]
    return render(rows)
