"""Kind lookup by any of calicoctl's names, importing only the module that defines the kind.

Only the kind a command touches is imported, which keeps `calicoctl get <kind>` cold start
cheap.
"""

from __future__ import annotations

import importlib

from pycalico.api.kind import Kind

# Kind name -> (module, attribute, names calicoctl accepts for it, lower-case).
_TABLE: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "IPPool": ("ippool", "IPPOOL", ("ippool", "ippools", "ipp", "ipps", "pool", "pools")),
    "IPReservation": (
        "ippool",
        "IPRESERVATION",
        ("ipreservation", "ipreservations", "reservation", "reservations"),
    ),
    "Node": ("node", "NODE", ("node", "nodes", "no", "nos")),
    "BGPConfiguration": (
        "bgp",
        "BGP_CONFIGURATION",
        ("bgpconfiguration", "bgpconfigurations", "bgpconfig", "bgpconfigs"),
    ),
    "BGPPeer": ("bgp", "BGP_PEER", ("bgppeer", "bgppeers", "bgpp", "bgpps", "bp", "bps")),
    "BGPFilter": ("bgp", "BGP_FILTER", ("bgpfilter", "bgpfilters", "bgpf", "bgpfs", "bf", "bfs")),
    "FelixConfiguration": (
        "felixconfig",
        "FELIXCONFIGURATION",
        ("felixconfiguration", "felixconfigurations", "felixconfig", "felixconfigs"),
    ),
    "KubeControllersConfiguration": (
        "kubecontrollers",
        "KUBECONTROLLERSCONFIGURATION",
        (
            "kubecontrollersconfiguration",
            "kubecontrollersconfigurations",
            "kubecontrollersconfig",
            "kubecontrollersconfigs",
        ),
    ),
    "ClusterInformation": (
        "cluster",
        "CLUSTER_INFORMATION",
        ("clusterinformation", "clusterinformations", "clusterinfo", "clusterinfos"),
    ),
    "NetworkPolicy": (
        "policy",
        "NETWORK_POLICY",
        ("networkpolicy", "networkpolicies", "policy", "policies", "np", "nps", "pol", "pols"),
    ),
    "GlobalNetworkPolicy": (
        "policy",
        "GLOBAL_NETWORK_POLICY",
        ("globalnetworkpolicy", "globalnetworkpolicies", "gnp", "gnps"),
    ),
    "StagedNetworkPolicy": (
        "staged",
        "STAGED_NETWORK_POLICY",
        (
            "stagednetworkpolicy",
            "stagednetworkpolicies",
            "stagedpolicy",
            "stagedpolicies",
            "snp",
            "snps",
            "scnp",
            "spol",
            "spols",
        ),
    ),
    "StagedGlobalNetworkPolicy": (
        "staged",
        "STAGED_GLOBAL_NETWORK_POLICY",
        ("stagedglobalnetworkpolicy", "stagedglobalnetworkpolicies", "sgnp", "sgnps"),
    ),
    "StagedKubernetesNetworkPolicy": (
        "staged",
        "STAGED_KUBERNETES_NETWORK_POLICY",
        (
            "stagedkubernetesnetworkpolicy",
            "stagedkubernetesnetworkpolicies",
            "stagedkubernetespolicy",
            "stagedkubernetespolicies",
            "sknp",
            "sknps",
            "skpol",
            "skpols",
        ),
    ),
    "Profile": ("policy", "PROFILE", ("profile", "profiles", "pro", "pros")),
    "Tier": ("policy", "TIER", ("tier", "tiers")),
    "WorkloadEndpoint": (
        "endpoints",
        "WORKLOAD_ENDPOINT",
        ("workloadendpoint", "workloadendpoints", "wep", "weps"),
    ),
    "HostEndpoint": (
        "endpoints",
        "HOST_ENDPOINT",
        ("hostendpoint", "hostendpoints", "hep", "heps"),
    ),
    "NetworkSet": ("networkset", "NETWORK_SET", ("networkset", "networksets", "netset", "netsets")),
    "GlobalNetworkSet": (
        "networkset",
        "GLOBAL_NETWORK_SET",
        ("globalnetworkset", "globalnetworksets", "gnetset", "gnetsets"),
    ),
    "IPAMConfiguration": (
        "ipam",
        "IPAM_CONFIGURATION",
        ("ipamconfiguration", "ipamconfigurations", "ipamconfig", "ipamconfigs"),
    ),
}

_BY_ALIAS = {alias: name for name, (_, _, aliases) in _TABLE.items() for alias in aliases}


class UnknownKind(ValueError):
    pass


def kind_names() -> list[str]:
    return list(_TABLE)


def resolve(name: str) -> Kind:
    """The kind for a kind name (`IPPool`) or any calicoctl alias (`ipp`, `pools`)."""
    canonical = _BY_ALIAS.get(name.lower())
    if canonical is None:
        raise UnknownKind(name)
    module, attr, _ = _TABLE[canonical]
    kind: Kind = getattr(importlib.import_module(f"pycalico.api.{module}"), attr)
    return kind


def by_kind_name(kind: str) -> Kind:
    """The kind for the exact `kind:` value of a document (case-sensitive, as Calico)."""
    if kind not in _TABLE:
        raise UnknownKind(kind)
    return resolve(kind)
