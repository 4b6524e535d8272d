"""`calicoctl policy explain` with hosts on either side (hep:NAME, node:NODE[/IFACE], or a
host's address): host endpoint stages, failsafes, DefaultEndpointToHostAction, forwarding."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.calicoctl_harness import InProcess, multi, resource_yaml

HEP_LABELS = {"host-endpoint": "ingress"}


def _node(name: str, ip: str) -> str:
    return resource_yaml("Node", name, {"bgp": {"ipv4Address": f"{ip}/24"}})


def _pod(name: str, node: str, ip: str) -> str:
    return resource_yaml(
        "WorkloadEndpoint",
        f"{node}-k8s-{name}-eth0",
        {
            "node": node,
            "orchestrator": "k8s",
            "pod": name,
            "endpoint": "eth0",
            "ipNetworks": [f"{ip}/32"],
            "interfaceName": f"cali{name}",
            "profiles": ["kns.prod"],
        },
        namespace="prod",
        labels={"app": name, "projectcalico.org/namespace": "prod"},
    )


def _policy(name: str, **spec: Any) -> str:
    return resource_yaml(
        "GlobalNetworkPolicy", name, {"selector": "host-endpoint == 'ingress'", **spec}
    )


def _tcp(action: str, port: int | str, **source: Any) -> dict[str, Any]:
    return {
        "action": action,
        "protocol": "TCP",
        "source": source,
        "destination": {"ports": [port]},
    }


@pytest.fixture
def cluster(ctl: InProcess) -> InProcess:
    """n1 with a host endpoint on eth0 open to TCP 8080 from 203.0.113.0/24; n2 without
    one; a pod on each."""
    docs = multi(
        _node("n1", "192.0.2.11"),
        _node("n2", "192.0.2.12"),
        resource_yaml(
            "Profile",
            "kns.prod",
            {"ingress": [{"action": "Allow"}], "egress": [{"action": "Allow"}]},
        ),
        _pod("a", "n1", "10.0.0.1"),
        _pod("b", "n2", "10.0.0.2"),
        resource_yaml(
            "HostEndpoint",
            "n1-eth0",
            {"node": "n1", "interfaceName": "eth0", "expectedIPs": ["192.0.2.11"]},
            labels=HEP_LABELS,
        ),
        _policy("allow-8080", ingress=[_tcp("Allow", 8080, nets=["203.0.113.0/24"])]),
    )
    assert ctl.run("apply", "-f", "-", stdin=docs).rc == 0
    return ctl


def explain(ctl: InProcess, src: str, dst: str, port: int) -> list[str]:
    result = ctl.run("policy", "explain", f"--from={src}", f"--to={dst}", f"--port={port}")
    assert result.rc == 0, result.err
    return [" ".join(line.split()) for line in result.out.splitlines()]


def test_host_endpoint_policy_decides_traffic_to_the_hosts_processes(cluster: InProcess) -> None:
    assert explain(cluster, "203.0.113.5", "hep:n1-eth0", 8080) == [
        "ingress hep n1-eth0 ALLOW by policy default/allow-8080 rule 0",
        "verdict: ALLOW",
    ]
    assert explain(cluster, "203.0.113.5", "node:n1", 8081) == [
        "ingress node n1 (hep n1-eth0) DENY by end of tier default: no policy allowed it",
        "verdict: DENY",
    ]
    # The host's address names the host too; SSH is a failsafe port.
    assert explain(cluster, "198.51.100.1", "192.0.2.11", 22) == [
        "ingress hep n1-eth0 ALLOW by failsafe inbound tcp:22",
        "verdict: ALLOW",
    ]
    # No host endpoint on that interface, or on that node: nothing stands in the way.
    assert explain(cluster, "203.0.113.5", "node:n1/eth1", 8081) == ["verdict: ALLOW"]
    assert explain(cluster, "203.0.113.5", "node:n2", 8081) == ["verdict: ALLOW"]


def test_host_egress_is_default_deny_but_for_the_outbound_failsafes(cluster: InProcess) -> None:
    assert explain(cluster, "node:n1", "node:n2", 8080)[-2:] == [
        "egress node n1 (hep n1-eth0) DENY by no profile allowed it",
        "verdict: DENY",
    ]
    assert explain(cluster, "node:n1", "node:n2", 179) == [
        "egress node n1 (hep n1-eth0) ALLOW by failsafe outbound tcp:179",
        "verdict: ALLOW",
    ]


def test_a_pod_and_its_own_host(cluster: InProcess) -> None:
    assert explain(cluster, "node:n1", "prod/a", 80) == [
        "egress node n1 (hep n1-eth0) ALLOW by host to its own pod",
        "verdict: ALLOW",
    ]
    assert explain(cluster, "prod/a", "node:n1", 8081) == [
        "egress prod/a ALLOW by profile kns.prod rule 0",
        "ingress node n1 (hep n1-eth0) DENY by defaultEndpointToHostAction Drop",
        "verdict: DENY",
    ]
    config = resource_yaml(
        "FelixConfiguration", "default", {"defaultEndpointToHostAction": "Accept"}
    )
    assert cluster.run("apply", "-f", "-", stdin=config).rc == 0
    assert explain(cluster, "prod/a", "node:n1", 8081)[-1] == "verdict: ALLOW"


def test_pre_dnat_and_untracked_policy_come_before_normal_policy(cluster: InProcess) -> None:
    docs = multi(
        _policy(
            "close-nodeport",
            preDNAT=True,
            applyOnForward=True,
            ingress=[_tcp("Deny", 30080, nets=["203.0.113.0/24"])],
        ),
        _policy(
            "untracked",
            doNotTrack=True,
            applyOnForward=True,
            ingress=[_tcp("Deny", 8080, nets=["192.0.2.12/32"]), _tcp("Allow", 8081)],
        ),
    )
    assert cluster.run("apply", "-f", "-", stdin=docs).rc == 0
    assert explain(cluster, "203.0.113.5", "node:n1", 30080) == [
        "ingress node n1 (hep n1-eth0) [preDNAT] DENY by policy default/close-nodeport rule 0",
        "verdict: DENY",
    ]
    assert explain(cluster, "node:n2", "node:n1", 8080) == [
        "ingress node n1 (hep n1-eth0) [untracked] DENY by policy default/untracked rule 0",
        "verdict: DENY",
    ]
    # An untracked allow skips normal policy, which would refuse 8081.
    assert explain(cluster, "203.0.113.5", "node:n1", 8081) == [
        "ingress node n1 (hep n1-eth0) [untracked] ALLOW by policy default/untracked rule 1",
        "verdict: ALLOW",
    ]


def test_apply_on_forward_policy_meets_traffic_the_node_forwards_to_its_pods(
    cluster: InProcess,
) -> None:
    assert explain(cluster, "203.0.113.5", "prod/a", 81)[-1] == "verdict: ALLOW"
    only_80 = _policy("fwd", applyOnForward=True, types=["Ingress"], ingress=[_tcp("Allow", 80)])
    assert cluster.run("apply", "-f", "-", stdin=only_80).rc == 0
    assert explain(cluster, "203.0.113.5", "prod/a", 81) == [
        "ingress hep n1-eth0 [forward] DENY by end of tier default: no policy allowed it",
        "verdict: DENY",
    ]
    assert explain(cluster, "203.0.113.5", "prod/a", 80) == [
        "ingress hep n1-eth0 [forward] ALLOW by policy default/fwd rule 0",
        "ingress prod/a ALLOW by profile kns.prod rule 0",
        "verdict: ALLOW",
    ]
    # Pod to pod on another node: each node's host endpoint in turn (n2 has none).
    assert explain(cluster, "prod/b", "prod/a", 81)[-2:] == [
        "ingress hep n1-eth0 [forward] DENY by end of tier default: no policy allowed it",
        "verdict: DENY",
    ]


@pytest.mark.parametrize(
    ("side", "message"),
    [
        ("hep:nope", "no host endpoint nope"),
        ("node:nope", "no node nope"),
        ("prod/nope", "no pod prod/nope (and not an IP address, hep:NAME or node:NODE)"),
    ],
)
def test_an_unknown_side_is_one_clear_error(cluster: InProcess, side: str, message: str) -> None:
    result = cluster.run("policy", "explain", "--from=203.0.113.5", f"--to={side}")
    assert result.rc == 1 and result.out == ""
    assert result.err.strip().splitlines() == [message]


def test_rule_selectors_match_host_endpoints_by_their_expected_ips(cluster: InProcess) -> None:
    from_hosts = resource_yaml(
        "GlobalNetworkPolicy",
        "from-hosts",
        {
            "selector": "app == 'b'",
            "ingress": [{"action": "Allow", "source": {"selector": "host-endpoint == 'ingress'"}}],
        },
    )
    host_out = _policy("host-out", egress=[{"action": "Allow"}])
    assert cluster.run("apply", "-f", "-", stdin=multi(from_hosts, host_out)).rc == 0
    assert explain(cluster, "hep:n1-eth0", "prod/b", 80) == [
        "egress hep n1-eth0 ALLOW by policy default/host-out rule 0",
        "ingress prod/b ALLOW by policy default/from-hosts rule 0",
        "verdict: ALLOW",
    ]
    assert explain(cluster, "198.51.100.1", "prod/b", 80)[-1] == "verdict: DENY"
