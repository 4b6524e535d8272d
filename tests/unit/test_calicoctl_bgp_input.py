"""BGP resources through calicoctl: bad input refused in one line with nothing written, the
edge cases Calico accepts still accepted, and the `get` tables of bgpPeers and bgpConfig.

Bad cases run against a store that already holds peers of every scope (global, one node,
a node selector) so that "overlapping peers" has something to overlap, and "nothing written"
compares the store revision and every BGP listing before and after.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.calicoctl_harness import InProcess, multi, one_error_line, resource_yaml

STORED = multi(
    resource_yaml("BGPPeer", "tor", {"peerIP": "192.0.2.1", "asNumber": 65001}),
    resource_yaml("BGPPeer", "n1-tor", {"node": "n1", "peerIP": "192.0.2.2", "asNumber": 65001}),
    resource_yaml("BGPPeer", "n1-spare", {"node": "n1", "peerIP": "192.0.2.3", "asNumber": 65001}),
    resource_yaml(
        "BGPPeer",
        "rack-a",
        {"nodeSelector": "rack == 'a'", "peerIP": "[fd00::1]:1179", "asNumber": 65002},
    ),
)


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    expect: tuple[str, ...]
    command: str = "apply"


def peer(name: str, **spec: Any) -> str:
    return resource_yaml("BGPPeer", name, spec)


def peer_case(case_id: str, spec: dict[str, Any], *expect: str) -> Case:
    return Case(case_id, peer("new", **spec), expect)


def raw_peer(case_id: str, spec: str, *expect: str) -> Case:
    """YAML as a person types it (`asNumber: 1.10` unquoted is a number to YAML)."""
    text = (
        f"apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {{name: new}}\nspec: {spec}\n"
    )
    return Case(case_id, text, expect)


def config(**spec: Any) -> str:
    return resource_yaml("BGPConfiguration", "default", spec)


def node_bgp(**bgp: Any) -> str:
    return resource_yaml("Node", "n1", {"bgp": {"ipv4Address": "192.0.2.11/24", **bgp}})


def bgp_filter(**spec: Any) -> str:
    return resource_yaml("BGPFilter", "f", spec)


GOOD = {"peerIP": "192.0.2.50", "asNumber": 65001}
IPV4_TAG = "(Reason: failed to validate Field: RouteReflectorClusterID because of Tag: ipv4 )"
DUPLICATE = "duplicates BGPPeer"

CASES = [
    # --- AS numbers ---------------------------------------------------------------------------
    peer_case("peer-as-zero", {**GOOD, "asNumber": 0}, "ASNumber = '0'", "1-4294967295"),
    peer_case("peer-as-zero-string", {**GOOD, "asNumber": "0"}, "ASNumber = '0'"),
    peer_case("peer-as-too-big", {**GOOD, "asNumber": 4294967296}, "'4294967296'"),
    peer_case("peer-as-negative", {**GOOD, "asNumber": -1}, "ASNumber = '-1'"),
    peer_case("peer-as-junk", {**GOOD, "asNumber": "sixty-five"}, "invalid AS number"),
    peer_case("peer-as-spaces", {**GOOD, "asNumber": " 65001"}, "invalid AS number"),
    peer_case("peer-as-bool", {**GOOD, "asNumber": True}, "invalid AS number"),
    peer_case("peer-asdot-high-too-big", {**GOOD, "asNumber": "65536.1"}, "'65536.1'"),
    peer_case("peer-asdot-low-too-big", {**GOOD, "asNumber": "1.65536"}, "'1.65536'"),
    peer_case("peer-asdot-zero", {**GOOD, "asNumber": "0.0"}, "'0.0'"),
    peer_case("peer-asdot-three-parts", {**GOOD, "asNumber": "1.2.3"}, "'1.2.3'"),
    raw_peer(
        "peer-asdot-unquoted",
        "{peerIP: 192.0.2.50, asNumber: 1.10}",
        "ASNumber = '1.1'",
        'quote asdot ("1.10")',
    ),
    peer_case("peer-local-as-junk", {**GOOD, "localASNumber": "x"}, "LocalASNumber"),
    Case("config-as-zero", config(asNumber=0), ("ASNumber = '0'", "invalid AS number")),
    Case("config-as-too-big", config(asNumber=2**32), ("ASNumber = '4294967296'",)),
    Case("config-as-junk", config(asNumber="AS65000"), ("ASNumber = 'AS65000'",)),
    Case("node-as-zero", node_bgp(asNumber=0), ("ASNumber = '0'",)),
    Case("node-as-junk", node_bgp(asNumber="65000.x"), ("ASNumber = '65000.x'",)),
    # --- peer IPs -----------------------------------------------------------------------------
    peer_case("peer-ip-junk", {**GOOD, "peerIP": "not-an-ip"}, "PeerIP = 'not-an-ip'"),
    peer_case("peer-ip-hostname", {**GOOD, "peerIP": "tor.example.com"}, "invalid peer IP"),
    peer_case("peer-ip-cidr", {**GOOD, "peerIP": "192.0.2.0/24"}, "invalid peer IP"),
    peer_case("peer-ip-bad-octet", {**GOOD, "peerIP": "192.0.2.256"}, "invalid peer IP"),
    peer_case("peer-ip-not-a-string", {**GOOD, "peerIP": 3221225985}, "invalid peer IP"),
    peer_case("peer-ip-port-zero", {**GOOD, "peerIP": "192.0.2.9:0"}, "invalid peer port"),
    peer_case("peer-ip-port-too-big", {**GOOD, "peerIP": "192.0.2.9:65536"}, "1-65535"),
    peer_case("peer-ip-port-empty", {**GOOD, "peerIP": "192.0.2.9:"}, "invalid peer IP"),
    peer_case("peer-ip-port-named", {**GOOD, "peerIP": "192.0.2.9:bgp"}, "invalid peer IP"),
    peer_case("peer-ip6-brackets-no-port", {**GOOD, "peerIP": "[fd00::9]"}, "[<IPv6>]:<port>"),
    peer_case("peer-ip6-port-too-big", {**GOOD, "peerIP": "[fd00::9]:70000"}, "peer port"),
    peer_case("peer-ip6-bad-address", {**GOOD, "peerIP": "[fd00::g]:179"}, "invalid peer IP"),
    peer_case("peer-ip6-zone", {**GOOD, "peerIP": "fe80::1%eth0"}, "invalid peer IP"),
    peer_case(
        "peer-reachable-by-other-family",
        {**GOOD, "reachableBy": "fd00::1"},
        "ReachableBy",
        "family",
    ),
    peer_case(
        "peer-reachable-by-without-peer-ip",
        {"peerSelector": "all()", "reachableBy": "192.0.2.254"},
        "ReachableBy",
        "ReachablyBy field must be empty when PeerIP is empty",
    ),
    # --- selectors ----------------------------------------------------------------------------
    peer_case("node-selector-bad", {**GOOD, "nodeSelector": "rack =="}, "NodeSelector"),
    peer_case("peer-selector-bad", {"peerSelector": "has("}, "PeerSelector", "selector"),
    peer_case(
        "peer-selector-and-peer-ip",
        {"peerIP": "192.0.2.50", "peerSelector": "all()"},
        "PeerIP = '192.0.2.50' (PeerIP field must be empty when PeerSelector is specified)]",
    ),
    peer_case(
        "node-and-node-selector",
        {**GOOD, "node": "n1", "nodeSelector": "all()"},
        "Node field must be empty when NodeSelector is specified",
    ),
    # --- route reflector cluster IDs ----------------------------------------------------------
    Case("cluster-id-word", node_bgp(routeReflectorClusterID="rr-1"), ("'rr-1'", IPV4_TAG)),
    Case("cluster-id-ipv6", node_bgp(routeReflectorClusterID="fd00::1"), ("'fd00::1'",)),
    Case("cluster-id-octet", node_bgp(routeReflectorClusterID="244.0.0.256"), (IPV4_TAG,)),
    Case("cluster-id-cidr", node_bgp(routeReflectorClusterID="244.0.0.1/32"), (IPV4_TAG,)),
    Case("cluster-id-number", node_bgp(routeReflectorClusterID=1), ("must be a string",)),
    # --- overlapping peers --------------------------------------------------------------------
    peer_case(
        "duplicate-global-peer",
        {"peerIP": "192.0.2.1", "asNumber": 65009},
        "PeerIP = '192.0.2.1'",
        "BGPPeer(new) duplicates BGPPeer(tor): the same peer 192.0.2.1 for every node (global)",
    ),
    peer_case(
        "duplicate-global-peer-with-bgp-port",
        {"peerIP": "192.0.2.1:179", "asNumber": 65001},
        "BGPPeer(new) duplicates BGPPeer(tor)",
    ),
    peer_case(
        "duplicate-node-peer",
        {"node": "n1", "peerIP": "192.0.2.2", "asNumber": 65001},
        "BGPPeer(new) duplicates BGPPeer(n1-tor): the same peer 192.0.2.2 for node n1",
    ),
    peer_case(
        "duplicate-selector-peer-spelled-differently",
        {"nodeSelector": 'rack=="a"', "peerIP": "[fd00:0::1]:1179", "asNumber": 65002},
        "BGPPeer(new) duplicates BGPPeer(rack-a): the same peer [fd00::1]:1179 "
        "for nodeSelector rack == 'a'",
    ),
    Case(
        "duplicate-on-create",
        peer("new", peerIP="192.0.2.1", asNumber=65001),
        ("Failed to create 'BGPPeer' resource", DUPLICATE),
        command="create",
    ),
    Case(
        "duplicate-within-one-file",
        multi(peer("one", **GOOD), peer("two", **GOOD)),
        ("Failed to apply any 'BGPPeer' resources", "BGPPeer(two) duplicates BGPPeer(one)"),
    ),
    Case(
        "update-into-a-duplicate",
        peer("n1-spare", node="n1", peerIP="192.0.2.2", asNumber=65001),
        ("BGPPeer(n1-spare) duplicates BGPPeer(n1-tor)",),
    ),
    Case(
        "replace-into-a-duplicate",
        peer("rack-a", peerIP="192.0.2.1", asNumber=65001),
        ("Failed to replace 'BGPPeer' resource", "BGPPeer(rack-a) duplicates BGPPeer(tor)"),
        command="replace",
    ),
    # --- BGPConfiguration and BGPFilter -------------------------------------------------------
    Case(
        "communities-defined-but-unused",
        config(communities=[{"name": "c", "value": "65001:1"}]),
        (
            "error with field Spec.Communities[] = '[{c 65001:1}]' "
            "(communities are defined but not used in Spec.PrefixAdvertisement[].)]",
        ),
    ),
    Case(
        "advertised-community-undefined",
        config(prefixAdvertisements=[{"cidr": "10.0.0.0/8", "communities": ["nope"]}]),
        (
            "error with field Spec.PrefixAdvertisement[].Communities[] = 'nope' "
            "(community used is invalid or not defined.)]",
        ),
    ),
    Case(
        "filter-v6-cidr-in-v4-rules",
        bgp_filter(exportV4=[{"cidr": "fd00::/64", "matchOperator": "In", "action": "Accept"}]),
        ("CIDR = 'fd00::/64' (Reason: failed to validate Field: CIDR because of Tag: netv4 )",),
    ),
    Case(
        "filter-cidr-not-masked",
        bgp_filter(importV4=[{"cidr": "10.0.0.1/8", "matchOperator": "In", "action": "Reject"}]),
        ("CIDR = '10.0.0.1/8' (Reason: failed to validate Field: CIDR because of Tag: netv4 )",),
    ),
    Case(
        "filter-v4-prefix-length-over-32",
        bgp_filter(
            exportV4=[
                {
                    "cidr": "10.0.0.0/8",
                    "matchOperator": "In",
                    "prefixLength": {"max": 33},
                    "action": "Accept",
                }
            ]
        ),
        ("Max = '33'",),
    ),
    Case(
        "filter-prefix-length-without-cidr",
        bgp_filter(exportV6=[{"prefixLength": {"min": 64}, "action": "Accept"}]),
        ("PrefixLength = '{64 <nil>}' (CIDR cannot be empty when PrefixLength is not)",),
    ),
    Case(
        "filter-bad-interface",
        bgp_filter(exportV4=[{"interface": "eth0; rm", "action": "Accept"}]),
        ("Interface",),
    ),
]


@pytest.fixture(autouse=True)
def stored_peers(ctl: InProcess) -> None:
    ctl.ok("apply", "-f", "-", stdin=STORED)


def everything(ctl: InProcess) -> tuple[int, str]:
    listings = [
        ctl.ok("get", kind, "-o", "json").out
        for kind in ("bgppeers", "bgpconfigs", "bgpfilters", "nodes")
    ]
    return ctl.revision(), "".join(listings)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_bgp_input_is_one_line_exit_1_and_writes_nothing(ctl: InProcess, case: Case) -> None:
    before = everything(ctl)
    result = ctl.run(case.command, "-f", "-", stdin=case.text)
    line = one_error_line(result)
    for expected in case.expect:
        assert expected in line, (expected, line)
    assert result.out == ""
    assert everything(ctl) == before


def test_patch_into_a_duplicate_peer_is_refused(ctl: InProcess) -> None:
    before = everything(ctl)
    result = ctl.run("patch", "bgppeer", "n1-spare", "-p", '{"spec":{"peerIP":"192.0.2.2"}}')
    assert "BGPPeer(n1-spare) duplicates BGPPeer(n1-tor)" in one_error_line(result)
    assert everything(ctl) == before


@pytest.mark.parametrize(
    ("as_number", "stored"),
    [("1.10", 65546), ("65535.65535", 4294967295), ("0.1", 1), ("4294967295", 4294967295)],
)
def test_asdot_and_numeric_strings_are_accepted_and_stored_as_numbers(
    ctl: InProcess, as_number: str, stored: int
) -> None:
    ctl.ok("apply", "-f", "-", stdin=config(asNumber=as_number))
    assert f"asNumber: {stored}\n" in ctl.ok("get", "bgpconfig", "default", "-o", "yaml").out


def test_an_integral_float_as_number_is_the_integer_as_for_calico(ctl: InProcess) -> None:
    ctl.ok("apply", "-f", "-", stdin=node_bgp(asNumber=65000.0))
    assert "asNumber: 65000\n" in ctl.ok("get", "node", "n1", "-o", "yaml").out


@pytest.mark.parametrize(
    "peer_ip",
    ["192.0.2.1:1179", "[fd00::1]:179", "[192.0.2.1]:1179", "fd00::1", "::ffff:192.0.2.1"],
)
def test_peer_ip_forms_calico_accepts_are_accepted(ctl: InProcess, peer_ip: str) -> None:
    ctl.ok("apply", "-f", "-", stdin=peer("new", peerIP=peer_ip, asNumber=65001))


def test_the_same_peer_in_another_scope_or_on_another_port_is_not_a_duplicate(
    ctl: InProcess,
) -> None:
    ctl.ok(
        "apply",
        "-f",
        "-",
        stdin=multi(
            peer("tor-on-n1", node="n1", peerIP="192.0.2.1", asNumber=65001),
            peer("tor-on-n2", node="n2", peerIP="192.0.2.2", asNumber=65001),
            peer("tor-other-port", peerIP="192.0.2.1:1179", asNumber=65001),
            peer("rack-b", nodeSelector="rack == 'b'", peerIP="[fd00::1]:1179", asNumber=65002),
        ),
    )


def test_apply_of_an_existing_peer_is_an_update_not_a_duplicate(ctl: InProcess) -> None:
    ctl.ok("apply", "-f", "-", stdin=peer("tor", peerIP="192.0.2.1", asNumber=65099))
    assert "65099" in ctl.ok("get", "bgppeer", "tor").out


def test_a_deleted_peer_can_be_recreated_under_another_name(ctl: InProcess) -> None:
    ctl.ok("delete", "bgppeer", "tor")
    ctl.ok("create", "-f", "-", stdin=peer("tor2", peerIP="192.0.2.1", asNumber=65001))


def test_get_bgp_peers_table_shows_node_then_selector_then_global(ctl: InProcess) -> None:
    ctl.ok("apply", "-f", "-", stdin=peer("by-label", peerSelector="rr == 'true'"))
    assert ctl.ok("get", "bgpPeers").out == (
        "NAME       PEERIP           NODE          ASN     \n"
        "by-label                    (global)      0       \n"
        "n1-spare   192.0.2.3        n1            65001   \n"
        "n1-tor     192.0.2.2        n1            65001   \n"
        "rack-a     [fd00::1]:1179   rack == 'a'   65002   \n"
        "tor        192.0.2.1        (global)      65001   \n"
        "\n"
    )
    assert ctl.ok("get", "bgppeers", "-o", "wide").out == ctl.ok("get", "bgpPeers").out


def test_get_bgp_configuration_table_and_yaml(ctl: InProcess) -> None:
    assert ctl.ok("get", "bgpconfig").out == "NAME   LOGSEVERITY   MESHENABLED   ASNUMBER   \n\n"
    ctl.ok(
        "apply",
        "-f",
        "-",
        stdin=multi(
            config(logSeverityScreen="Info", nodeToNodeMeshEnabled=False, asNumber=64513),
            resource_yaml("BGPConfiguration", "node.n1", {"listenPort": 1179}),
        ),
    )
    assert ctl.ok("get", "bgpconfig").out == (
        "NAME      LOGSEVERITY   MESHENABLED   ASNUMBER   \n"
        "default   Info          false         64513      \n"
        "node.n1                 -             -          \n"
        "\n"
    )
    yaml = ctl.ok("get", "bgpConfiguration", "default", "-o", "yaml").out
    assert yaml.startswith("apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\n")
    assert yaml.endswith(
        "spec:\n  asNumber: 64513\n  logSeverityScreen: Info\n  nodeToNodeMeshEnabled: false\n"
    )
