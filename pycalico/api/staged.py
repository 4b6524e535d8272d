"""Staged policies: StagedNetworkPolicy, StagedGlobalNetworkPolicy and
StagedKubernetesNetworkPolicy (reference flows.md §6).

A staged policy is the enforced kind's spec plus `stagedAction` — `Set` (the default when
absent), `Delete`, `Learn` or `Ignore` — stored and shown like any policy and never
programmed into the dataplane: its would-be verdict is for the flow logs' pending trace.

Calico's rules (libcalico-go's validator and clientv3, v3.30):
* a Delete staged policy has every spec field but `tier` (none at all for the Kubernetes
  kind) at its zero value; its `types` are not defaulted. Calico's client silently drops
  `types` from a Delete; pycalico refuses them like any other field, in Calico's sentence;
* otherwise the spec is validated as the enforced kind's, `types` defaulted the same way;
* the tier must exist, a non-default tier prefixes the name, and the name may not start
  with `knp.default.` (those are Kubernetes policies' names);
* the Kubernetes kind's spec is networking.k8s.io/v1's NetworkPolicySpec, checked here as
  kube-apiserver checks one (label selectors, peers, ports, policyTypes).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pycalico.api import checks
from pycalico.api.kind import Kind
from pycalico.api.policy import (
    _check_global_policy,
    _check_policy_selectors,
    _policy_fields,
    _policy_name,
    _policy_name_check,
    _tier_label,
    default_policy_types,
)
from pycalico.api.schema import (
    Custom,
    Enum,
    Field,
    FieldError,
    Int,
    ListOf,
    MapOf,
    Refusal,
    Str,
    Struct,
)

STAGED_ACTIONS = ("Set", "Delete", "Learn", "Ignore")
DELETE = "Delete"
KNP_PREFIX = "knp.default."
STAGED_KINDS = (
    "StagedNetworkPolicy",
    "StagedGlobalNetworkPolicy",
    "StagedKubernetesNetworkPolicy",
)
# Felix evaluates Set into flow logs' pending traces; OSS Felix has no code path for Learn
# and Ignore (reference flows.md §6), so calicoctl says so when one is written.
NOT_EVALUATED = "only stagedAction Set is evaluated into flow logs' pending traces"

_STAGED_ACTION = Field("stagedAction", Enum(STAGED_ACTIONS, tag="stagedAction"))


def _types_unless_delete(spec: dict[str, Any]) -> list[str] | None:
    return None if spec.get("stagedAction") == DELETE else default_policy_types(spec)


def _staged_fields(global_policy: bool) -> tuple[Field, ...]:
    fields = tuple(
        replace(f, default=_types_unless_delete) if f.name == "types" else f
        for f in _policy_fields(global_policy)
    )
    return (_STAGED_ACTION, *fields)


def _delete_check(spec_name: str, keep: tuple[str, ...], sentence: str) -> Any:
    def check(spec: dict[str, Any], path: str) -> list[FieldError]:
        if spec.get("stagedAction") != DELETE:
            return []
        if any(key not in ("stagedAction", *keep) for key in spec if not _zero(spec[key])):
            return [FieldError(path, None, sentence, spec_name)]
        return []

    return check


def _zero(value: Any) -> bool:
    return value in ({}, [], None, "")


_DELETE_SENTENCE = "Spec fields, except Tier, should all be zero-value if stagedAction is Delete"


def _unless_delete(check: Any) -> Any:
    """The enforced kind's checks apply unless the staged action is Delete (Calico)."""

    def staged(spec: dict[str, Any], path: str) -> list[FieldError]:
        return [] if spec.get("stagedAction") == DELETE else list(check(spec, path))

    return staged


def _no_knp_prefix(kind: str) -> Any:
    def check(resource: dict[str, Any]) -> list[FieldError]:
        name = resource["metadata"]["name"]
        if not name.startswith(KNP_PREFIX):
            return []
        return [
            Refusal(
                "metadata.name",
                name,
                f"operation Create is not supported on {KNP_PREFIX}: "
                f"Cannot create a {kind} with that name prefix",
            )
        ]

    return check


STAGED_NETWORK_POLICY = Kind(
    "StagedNetworkPolicy",
    "stagednetworkpolicies",
    namespaced=True,
    spec=Struct(
        _staged_fields(global_policy=False),
        checks=(
            _delete_check("StagedNetworkPolicySpec", ("tier",), _DELETE_SENTENCE),
            _unless_delete(_check_policy_selectors),
        ),
    ),
    name_check=_policy_name,
    checks=(_no_knp_prefix("StagedNetworkPolicy"), _policy_name_check("StagedNetworkPolicy")),
    derived_labels=_tier_label,
)

STAGED_GLOBAL_NETWORK_POLICY = Kind(
    "StagedGlobalNetworkPolicy",
    "stagedglobalnetworkpolicies",
    namespaced=False,
    spec=Struct(
        _staged_fields(global_policy=True),
        checks=(
            _delete_check("StagedGlobalNetworkPolicySpec", ("tier",), _DELETE_SENTENCE),
            _unless_delete(_check_global_policy),
        ),
    ),
    name_check=_policy_name,
    checks=(
        _no_knp_prefix("StagedGlobalNetworkPolicy"),
        _policy_name_check("StagedGlobalNetworkPolicy"),
    ),
    derived_labels=_tier_label,
)


# --- networking.k8s.io/v1 NetworkPolicySpec ------------------------------------------------

_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def _check_requirement(requirement: dict[str, Any], path: str) -> list[FieldError]:
    operator, values = requirement.get("operator"), requirement.get("values") or []
    if operator in ("In", "NotIn") and not values:
        return [
            FieldError(
                f"{path}.values", None, "must be specified when `operator` is 'In' or 'NotIn'"
            )
        ]
    if operator in ("Exists", "DoesNotExist") and values:
        return [
            FieldError(
                f"{path}.values",
                values,
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )
        ]
    return []


LABEL_SELECTOR = Struct(
    (
        Field("matchLabels", MapOf(Str((checks.label_value,)), key_check=checks.label_key)),
        Field(
            "matchExpressions",
            ListOf(
                Struct(
                    (
                        Field("key", Str((checks.label_key,)), required=True),
                        Field("operator", Enum(_OPERATORS), required=True),
                        Field("values", ListOf(Str((checks.label_value,)))),
                    ),
                    checks=(_check_requirement,),
                )
            ),
        ),
    )
)


def _k8s_cidr(value: Any) -> str:
    if not isinstance(value, str) or "/" not in value or checks.cidr(value):
        raise ValueError("must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")
    return value


def _check_peer(peer: dict[str, Any], path: str) -> list[FieldError]:
    present = [k for k in ("podSelector", "namespaceSelector", "ipBlock") if k in peer]
    if not present:
        return [FieldError(path, None, "must specify a peer")]
    if "ipBlock" in present and len(present) > 1:
        return [FieldError(path, None, "may not specify both ipBlock and another peer")]
    return []


PEER = Struct(
    (
        Field("podSelector", LABEL_SELECTOR),
        Field("namespaceSelector", LABEL_SELECTOR),
        Field(
            "ipBlock",
            Struct(
                (
                    Field("cidr", Custom(_k8s_cidr), required=True),
                    Field("except", ListOf(Custom(_k8s_cidr))),
                )
            ),
        ),
    ),
    checks=(_check_peer,),
)


def _k8s_port(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("must be a port number or a port name")
    if isinstance(value, int):
        if not 1 <= value <= 65535:
            raise ValueError("must be between 1 and 65535, inclusive")
        return value
    if checks.port_name(value):
        raise ValueError("must be a valid port name (at most 15 of a-z, 0-9 and '-')")
    return value


def _check_port(port: dict[str, Any], path: str) -> list[FieldError]:
    if "endPort" not in port:
        return []
    if not isinstance(port.get("port"), int):
        return [
            FieldError(
                f"{path}.endPort",
                port["endPort"],
                "may not be specified when `port` is non-numeric",
            )
        ]
    if port["endPort"] < port["port"]:
        return [
            FieldError(
                f"{path}.endPort", port["endPort"], "must be greater than or equal to `port`"
            )
        ]
    return []


PORT = Struct(
    (
        Field("protocol", Enum(("TCP", "UDP", "SCTP"))),
        # Pointers in Go: 0 is a value (refused), not "unset" (every port).
        Field("port", Custom(_k8s_port), omitempty=False),
        Field("endPort", Int(1, 65535), omitempty=False),
    ),
    checks=(_check_port,),
)


def _unique_policy_types(types: list[str]) -> str | None:
    if len(types) > 2:
        return "may not specify more than two policyTypes"
    return "duplicate policy type" if len(set(types)) != len(types) else None


STAGED_KUBERNETES_NETWORK_POLICY = Kind(
    "StagedKubernetesNetworkPolicy",
    "stagedkubernetesnetworkpolicies",
    namespaced=True,
    spec=Struct(
        (
            _STAGED_ACTION,
            # Not omitempty in Go: always shown, `{}` when it selects every pod.
            Field("podSelector", LABEL_SELECTOR, default={}, omitempty=False),
            Field(
                "ingress",
                ListOf(Struct((Field("ports", ListOf(PORT)), Field("from", ListOf(PEER))))),
            ),
            Field(
                "egress",
                ListOf(Struct((Field("ports", ListOf(PORT)), Field("to", ListOf(PEER))))),
            ),
            Field(
                "policyTypes",
                ListOf(Enum(("Ingress", "Egress")), (_unique_policy_types,)),
            ),
        ),
        checks=(
            _delete_check(
                "StagedKubernetesNetworkPolicySpec",
                (),
                "Spec fields should all be zero-value if stagedAction is Delete",
            ),
        ),
    ),
    checks=(_no_knp_prefix("StagedKubernetesNetworkPolicy"),),
)


def pod_selector_text(selector: dict[str, Any]) -> str:
    """A LabelSelector as calicoctl's PODSELECTOR column prints it (Go's generated String())."""
    labels = "".join(f"{k}: {v}," for k, v in sorted((selector.get("matchLabels") or {}).items()))
    requirements = "".join(
        f"LabelSelectorRequirement{{Key:{r.get('key', '')},Operator:{r.get('operator', '')},"
        f"Values:[{' '.join(r.get('values') or [])}],}},"
        for r in selector.get("matchExpressions") or []
    )
    return (
        f"&LabelSelector{{MatchLabels:map[string]string{{{labels}}},"
        f"MatchExpressions:[]LabelSelectorRequirement{{{requirements}}},}}"
    )
