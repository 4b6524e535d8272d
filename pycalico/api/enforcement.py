"""Which parts of a resource pycalico does not act on, so that none is silently ignored.

calicoctl accepts every manifest Calico accepts (real manifests must round-trip), but a user
who sets a field pycalico does not implement must be told: calicoctl prints a warning line
naming the fields when it writes such a resource, Felix logs one once, and `calicoctl policy
explain` marks the policy. A field counts only when it asks for something pycalico does not
do: a value that is what pycalico does anyway (a BGPPeer's `failureDetectionMode: None`,
the defaults calicoctl fills in on write) is no warning.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Kinds pycalico stores and serves but nothing acts on.
UNENFORCED_KINDS: dict[str, str] = {
    "BGPFilter": "BGP filters are not applied to BIRD's import and export",
}

# What pycalico's calico-kube-controllers acts on: the node controller's automatic host
# endpoints. Any other KubeControllersConfiguration value but the one kube-controllers
# starts with is warned about.
KUBE_CONTROLLERS_ENFORCED = frozenset(
    {
        "controllers.node.hostEndpoint.autoCreate",
        "controllers.node.hostEndpoint.createDefaultHostEndpoint",
    }
)

# FelixConfiguration fields Felix reads (pycalico.felix.calc.settings.Settings: a unit test
# keeps the two equal). Every other field set to a value pycalico does not already behave
# as is warned about.
FELIX_ENFORCED = frozenset(
    {
        "defaultEndpointToHostAction",
        "mtuIfacePattern",
        "vxlanPort",
        "vxlanVNI",
        "vxlanMTU",
        "ipipMTU",
        "ipForwarding",
        "ipv6Support",
        "routeRefreshInterval",
        "logSeverityScreen",
        "healthHost",
        "healthPort",
        "prometheusMetricsHost",
        "prometheusMetricsPort",
        "failsafeInboundHostPorts",
        "failsafeOutboundHostPorts",
        "flowLogsFlushInterval",
        "flowLogsGoldmaneServer",
        "flowLogsPolicyEvaluationMode",
        "flowLogsLocalReporter",
        "flowLogsCollectorDebugTrace",
    }
)

# Values that ask for what pycalico does anyway, per kind and field: calico-node's own
# `reportingInterval: 0s` (no status reports), the defaults calicoctl fills in on write,
# and "off" values of features pycalico lacks.
_ALREADY_SO: dict[str, dict[str, tuple[Any, ...]]] = {
    "FelixConfiguration": {
        "reportingInterval": ("0s", "0"),
        "bpfEnabled": (False,),
        "floatingIPs": ("Disabled",),
        "wireguardEnabled": (False,),
        "wireguardEnabledV6": (False,),
    },
    "BGPPeer": {
        "failureDetectionMode": ("None", ""),
        "restartMode": ("GracefulRestart", ""),
        "birdGatewayMode": ("Recursive", ""),
        "filters": ([],),
        "keepaliveTime": ("",),
        "localASNumber": (None,),
    },
    "BGPConfiguration": {
        "communities": ([],),
        "prefixAdvertisements": ([],),
    },
}

# Fields acted on by nothing, per kind (any value but the ones above is warned about).
_UNENFORCED_FIELDS: dict[str, tuple[str, ...]] = {
    "BGPPeer": (
        "password",
        "failureDetectionMode",
        "restartMode",
        "birdGatewayMode",
        "filters",
        "keepaliveTime",
        "localASNumber",
        "localWorkloadSelector",
        "reachableBy",
    ),
    "BGPConfiguration": (
        "communities",
        "prefixAdvertisements",
        "nodeMeshPassword",
        "localWorkloadPeeringIPV4",
        "localWorkloadPeeringIPV6",
    ),
}

_POLICY_KINDS = ("NetworkPolicy", "GlobalNetworkPolicy", "Profile")

# Calico's open-source Felix has no code path of its own for Learn and Ignore (reference
# flows.md §6): they are evaluated as Set, which a user who chose them should be told.
AS_SET = "is evaluated as Set into flow logs' pending traces, as Calico's open-source Felix does"


def _set(kind: str, field: str, value: Any) -> bool:
    """Whether `value` asks for something: neither absent nor what pycalico does anyway."""
    return value is not None and value not in _ALREADY_SO.get(kind, {}).get(field, ())


def _felix_fields(spec: Mapping[str, Any]) -> list[str]:
    from pycalico.api.felixconfig import FELIX_SPEC

    filled = {f.name: f.default for f in FELIX_SPEC.fields if f.default is not None}
    # The bpf* fields configure a dataplane that is off unless bpfEnabled is true.
    bpf_on = spec.get("bpfEnabled") is True
    return [
        f"spec.{name}"
        for name, value in spec.items()
        if name not in FELIX_ENFORCED
        and (bpf_on or not name.startswith("bpf") or name == "bpfEnabled")
        and value != filled.get(name, object())
        and _set("FelixConfiguration", name, value)
    ]


def _leaves(value: Any, path: str = "") -> list[tuple[str, Any]]:
    """A mapping's scalar and list values by dotted path, in order."""
    if not isinstance(value, Mapping):
        return [(path, value)]
    found = []
    for key, item in value.items():
        found += _leaves(item, f"{path}.{key}" if path else str(key))
    return found


def _kube_controllers_fields(spec: Mapping[str, Any]) -> list[str]:
    from pycalico.api.kubecontrollers import KUBE_CONTROLLERS_DEFAULTS

    defaults = dict(_leaves(KUBE_CONTROLLERS_DEFAULTS))
    return [
        f"spec.{path}"
        for path, value in _leaves(spec)
        if path not in KUBE_CONTROLLERS_ENFORCED
        and value not in (None, [], {})
        and value != defaults.get(path, object())
    ]


def _rule_fields(spec: Mapping[str, Any]) -> list[str]:
    return [
        f"spec.{direction}[{i}].http"
        for direction in ("ingress", "egress")
        for i, rule in enumerate(spec.get(direction) or [])
        if isinstance(rule, Mapping) and rule.get("http")
    ]


def unenforced(resource: Mapping[str, Any]) -> list[str]:
    """The JSON paths of what `resource` asks for that pycalico does not do ("kind" when
    nothing acts on the whole kind), in the resource's order."""
    kind = resource.get("kind", "")
    if kind in UNENFORCED_KINDS:
        return ["kind"]
    spec = resource.get("spec") or {}
    if not isinstance(spec, Mapping):
        return []
    if kind == "FelixConfiguration":
        return _felix_fields(spec)
    if kind == "KubeControllersConfiguration":
        return _kube_controllers_fields(spec)
    fields = [
        f"spec.{name}"
        for name in _UNENFORCED_FIELDS.get(kind, ())
        if _set(kind, name, spec.get(name))
    ]
    if kind in _POLICY_KINDS:
        fields += _rule_fields(spec)
    return fields


def describe(resource: Mapping[str, Any], fields: list[str]) -> str:
    """One line naming the resource and what of it pycalico does not enforce."""
    kind = resource.get("kind", "")
    meta = resource.get("metadata") or {}
    name = meta.get("name", "")
    if meta.get("namespace"):
        name = f"{meta['namespace']}/{name}"
    if fields == ["kind"]:
        return f"{kind} {name} is not enforced by pycalico: {UNENFORCED_KINDS[kind]}"
    return f"{kind} {name}: pycalico does not enforce {', '.join(fields)}"


def warnings(resource: Mapping[str, Any]) -> list[str]:
    """The lines (without calicoctl's "Warning: ") saying what of `resource` pycalico does not
    act on as asked: the fields `unenforced` names, and a staged Learn or Ignore."""
    from pycalico.api.staged import STAGED_KINDS

    lines = []
    fields = unenforced(resource)
    if fields:
        lines.append(describe(resource, fields))
    kind = resource.get("kind", "")
    action = (resource.get("spec") or {}).get("stagedAction", "Set")
    if kind in STAGED_KINDS and action in ("Learn", "Ignore"):
        meta = resource.get("metadata") or {}
        name = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
        lines.append(f"{kind} {name}: stagedAction {action} {AS_SET}")
    return lines
