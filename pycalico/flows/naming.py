"""How a flow names its ends and the policies in its trace (reference flows.md §1).

Endpoints, by type:
* a workload: its pod's generateName followed by `*` (`nginx-7d9f-*`), so that the pods of
  one ReplicaSet aggregate into one flow; the pod name when it has no generateName;
* a host endpoint: the node's name; a network set: the set's name;
* anything else: the network, `pvt` inside 10/8, 172.16/12, 192.168/16 (and, for IPv6,
  fc00::/7, the unique-local range Go's IsPrivate also counts), else `pub`;
* the namespace `-` for whatever is not namespaced.

Policies, by kind, as Goldmane's PolicyHit carries them: Calico's NetworkPolicy is
`CalicoNetworkPolicy` (short kind `np`); a Kubernetes NetworkPolicy, which pycalico stores
as the Calico NetworkPolicy `knp.default.<name>`, is `NetworkPolicy` (`knp`) named by its
Kubernetes name, in tier `default` — Goldmane's naming, so that a user finds the name they
wrote with kubectl; global kinds have namespace ""; profiles have tier "" (Goldmane shows no
tier for them). Other names are the resource names calicoctl shows (`allow`, or
`security.allow` in tier `security`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from pycalico.flows.record import NO_VALUE, EndpointType, PolicyKind

PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
PUBLIC = "pub"
PRIVATE = "pvt"
KNP_PREFIX = "knp.default."
DEFAULT_TIER = "default"


@dataclass(frozen=True)
class Endpoint:
    """One end of a flow: name, namespace (NO_VALUE when global) and type."""

    name: str
    namespace: str
    type: EndpointType


def workload(namespace: str, pod: str, generate_name: str = "") -> Endpoint:
    name = f"{generate_name}*" if generate_name else pod
    return Endpoint(name, namespace, EndpointType.WORKLOAD)


def host(node: str) -> Endpoint:
    return Endpoint(node, NO_VALUE, EndpointType.HOST)


def network_set(name: str, namespace: str | None = None) -> Endpoint:
    return Endpoint(name, namespace or NO_VALUE, EndpointType.NETWORK_SET)


def network(address: str) -> Endpoint:
    ip = ipaddress.ip_address(address)
    private = any(ip in net for net in PRIVATE_NETWORKS if net.version == ip.version)
    return Endpoint(PRIVATE if private else PUBLIC, NO_VALUE, EndpointType.NETWORK)


# Felix's short kinds (PC:felix/types/policy_id.go), as policy IDs and hit strings spell them.
SHORT_KINDS: dict[PolicyKind, str] = {
    PolicyKind.CALICO_NETWORK_POLICY: "np",
    PolicyKind.GLOBAL_NETWORK_POLICY: "gnp",
    PolicyKind.STAGED_NETWORK_POLICY: "snp",
    PolicyKind.STAGED_GLOBAL_NETWORK_POLICY: "sgnp",
    PolicyKind.STAGED_KUBERNETES_NETWORK_POLICY: "sknp",
    PolicyKind.NETWORK_POLICY: "knp",
    PolicyKind.CLUSTER_NETWORK_POLICY: "kcnp",
    PolicyKind.PROFILE: "pro",
}
KINDS_BY_SHORT = {short: kind for kind, short in SHORT_KINDS.items()}
NAMESPACED_KINDS = frozenset(
    {
        PolicyKind.CALICO_NETWORK_POLICY,
        PolicyKind.STAGED_NETWORK_POLICY,
        PolicyKind.STAGED_KUBERNETES_NETWORK_POLICY,
        PolicyKind.NETWORK_POLICY,
    }
)
STAGED_KINDS = frozenset(
    {
        PolicyKind.STAGED_NETWORK_POLICY,
        PolicyKind.STAGED_GLOBAL_NETWORK_POLICY,
        PolicyKind.STAGED_KUBERNETES_NETWORK_POLICY,
    }
)
# The v3 resource kind each policy kind is stored as.
_RESOURCE_KINDS = {
    "NetworkPolicy": PolicyKind.CALICO_NETWORK_POLICY,
    "GlobalNetworkPolicy": PolicyKind.GLOBAL_NETWORK_POLICY,
    "StagedNetworkPolicy": PolicyKind.STAGED_NETWORK_POLICY,
    "StagedGlobalNetworkPolicy": PolicyKind.STAGED_GLOBAL_NETWORK_POLICY,
    "StagedKubernetesNetworkPolicy": PolicyKind.STAGED_KUBERNETES_NETWORK_POLICY,
    "Profile": PolicyKind.PROFILE,
}


@dataclass(frozen=True)
class PolicyRef:
    """A policy as a flow's trace names it."""

    kind: PolicyKind
    namespace: str  # "" for global kinds and profiles
    name: str
    tier: str  # "" for profiles


def policy_ref(resource_kind: str, name: str, namespace: str = "", tier: str = "") -> PolicyRef:
    """The trace's naming of a stored policy: `resource_kind` and `name` as calicoctl shows
    them, the policy's namespace and tier (its spec's; default `default`)."""
    kind = _RESOURCE_KINDS.get(resource_kind)
    if kind is None:
        raise ValueError(f"{resource_kind} is not a policy kind")
    if kind == PolicyKind.PROFILE:
        return PolicyRef(kind, "", name, "")
    tier = tier or DEFAULT_TIER
    if kind == PolicyKind.CALICO_NETWORK_POLICY and name.startswith(KNP_PREFIX):
        return PolicyRef(PolicyKind.NETWORK_POLICY, namespace, name[len(KNP_PREFIX) :], tier)
    if kind == PolicyKind.STAGED_KUBERNETES_NETWORK_POLICY:
        tier = DEFAULT_TIER  # Kubernetes policies have no tier of their own
    return PolicyRef(kind, namespace if kind in NAMESPACED_KINDS else "", name, tier)


def policy_id(ref: PolicyRef) -> str:
    """Felix's policy ID, `<shortkind>/[<ns>/]<name>`, as NFLOG prefixes carry it."""
    short = SHORT_KINDS[ref.kind]
    return f"{short}/{ref.namespace}/{ref.name}" if ref.namespace else f"{short}/{ref.name}"


def parse_policy_id(text: str, separator: str = "/") -> tuple[PolicyKind, str, str]:
    """(kind, namespace, name) from `<shortkind><separator>[<ns>/]<name>`."""
    short, sep, rest = text.partition(separator)
    kind = KINDS_BY_SHORT.get(short)
    if not sep or kind is None:
        raise ValueError(f"'{text}' is not a policy ID (<kind>{separator}[<namespace>/]<name>)")
    namespace, slash, name = rest.rpartition("/")
    if kind in NAMESPACED_KINDS:
        if not slash or not namespace or "/" in namespace:
            raise ValueError(f"'{text}': a {kind.value} ID needs <namespace>/<name>")
    elif slash:
        raise ValueError(f"'{text}': a {kind.value} ID has no namespace")
    if not name:
        raise ValueError(f"'{text}' names no policy")
    return kind, namespace, name
