"""Every kind name calicoctl accepts resolves to the right kind (reference §6.3).

An alias is proven to land on its kind by the table header it prints on an empty store:
two kinds sharing a header (NAME only) are told apart by `-o json`'s list kind instead.
"""

from __future__ import annotations

import json

import pytest

from tests.support.calicoctl_harness import InProcess, one_error_line

# kind -> names from reference §6.3 (singular, plural and short forms).
ALIASES: dict[str, tuple[str, ...]] = {
    "IPPool": ("ippool", "ippools", "ipp", "ipps", "pool", "pools"),
    "Node": ("node", "nodes", "no", "nos"),
    "WorkloadEndpoint": ("workloadendpoint", "workloadendpoints", "wep", "weps"),
    "BGPPeer": ("bgppeer", "bgppeers", "bgpp", "bgpps", "bp", "bps"),
    "BGPConfiguration": (
        "bgpconfiguration",
        "bgpconfigurations",
        "bgpconfig",
        "bgpconfigs",
    ),
    "BGPFilter": ("bgpfilter", "bgpfilters", "bgpf", "bgpfs", "bf", "bfs"),
    "NetworkPolicy": (
        "networkpolicy",
        "networkpolicies",
        "policy",
        "np",
        "policies",
        "pol",
        "pols",
    ),
    "GlobalNetworkPolicy": ("globalnetworkpolicy", "globalnetworkpolicies", "gnp", "gnps"),
    "HostEndpoint": ("hostendpoint", "hostendpoints", "hep", "heps"),
    "Profile": ("profile", "profiles", "pro", "pros"),
    "NetworkSet": ("networkset", "networksets", "netsets"),
    "GlobalNetworkSet": ("globalnetworkset", "globalnetworksets", "gnetsets"),
    "IPReservation": ("ipreservation", "ipreservations", "reservation", "reservations"),
    "FelixConfiguration": (
        "felixconfiguration",
        "felixconfigurations",
        "felixconfig",
        "felixconfigs",
    ),
    "KubeControllersConfiguration": (
        "kubecontrollersconfiguration",
        "kubecontrollersconfigurations",
        "kubecontrollersconfig",
        "kubecontrollersconfigs",
    ),
    "ClusterInformation": (
        "clusterinformation",
        "clusterinformations",
        "clusterinfo",
        "clusterinfos",
    ),
    "Tier": ("tier", "tiers"),
}

# The ps-style header of each kind (reference §6.4).
HEADERS: dict[str, list[str]] = {
    "IPPool": ["NAME", "CIDR", "SELECTOR"],
    "Node": ["NAME"],
    "WorkloadEndpoint": ["WORKLOAD", "NODE", "NETWORKS", "INTERFACE"],
    "BGPPeer": ["NAME", "PEERIP", "NODE", "ASN"],
    "BGPConfiguration": ["NAME", "LOGSEVERITY", "MESHENABLED", "ASNUMBER"],
    "BGPFilter": ["NAME", "NUMEXPORTV4", "NUMIMPORTV4", "NUMEXPORTV6", "NUMIMPORTV6"],
    "NetworkPolicy": ["NAME", "TIER"],
    "GlobalNetworkPolicy": ["NAME", "TIER"],
    "HostEndpoint": ["NAME", "NODE"],
    "Profile": ["NAME"],
    "NetworkSet": ["NAME"],
    "GlobalNetworkSet": ["NAME"],
    "IPReservation": ["NAME"],
    "FelixConfiguration": ["NAME"],
    "KubeControllersConfiguration": ["NAME"],
    "ClusterInformation": ["NAME", "CLUSTERGUID", "CLUSTERTYPE", "CALICOVERSION", "DATASTOREREADY"],
    "Tier": ["NAME", "ORDER"],
}

CASES = [(kind, alias) for kind, aliases in ALIASES.items() for alias in aliases]


@pytest.mark.parametrize(("kind", "alias"), CASES, ids=[alias for _, alias in CASES])
def test_alias_resolves_to_its_kind(ctl: InProcess, kind: str, alias: str) -> None:
    result = ctl.ok("get", alias)
    assert result.out == "   ".join(HEADERS[kind]) + "   \n\n"
    listed = json.loads(ctl.ok("get", alias, "-o", "json").out)
    assert (listed["kind"], listed["items"]) == (f"{kind}List", [])


@pytest.mark.parametrize("spelling", ["IPPool", "IPPOOLS", "IpPools", "GNP", "NetworkPolicies"])
def test_kind_names_are_case_insensitive(ctl: InProcess, spelling: str) -> None:
    assert ctl.ok("get", spelling).out.startswith(("NAME   CIDR", "NAME   TIER"))


def test_alias_works_for_delete_label_and_patch(ctl: InProcess) -> None:
    ctl.ok(
        "apply",
        "-f",
        "-",
        stdin="apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\n"
        "metadata: {name: s}\nspec: {nets: [10.0.0.0/8]}\n",
    )
    ctl.ok("label", "gnetsets", "s", "a=b")
    ctl.ok("patch", "GlobalNetworkSets", "s", "-p", '{"spec":{"nets":["10.1.0.0/16"]}}')
    got = json.loads(ctl.ok("get", "globalnetworkset", "s", "-o", "json").out)
    assert (got["metadata"]["labels"], got["spec"]["nets"]) == ({"a": "b"}, ["10.1.0.0/16"])
    assert ctl.ok("delete", "gnetsets", "s").out == (
        "Successfully deleted 1 'GlobalNetworkSet' resource(s)\n"
    )


@pytest.mark.parametrize("command", ["get", "delete", "label", "patch"])
def test_unknown_kind_is_one_line(ctl: InProcess, command: str) -> None:
    extra = {"get": [], "delete": ["x"], "label": ["x", "a=b"], "patch": ["x", "-p", "{}"]}
    line = one_error_line(ctl.run(command, "ippoolz", *extra[command]))
    assert "resource type 'ippoolz' is not supported" in line
