"""Host protection in the kernel: Felix's host endpoint chains decide real packets to, from
and through a node (tests/support/host_protection_net.py draws the namespaces)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from pycalico.felix.dataplane import host_links
from pycalico.felix.dataplane.nftables import NftablesManager
from pycalico.netns import in_netns
from tests.support.felix_case import desired, golden_cases, load
from tests.support.host_protection_net import (
    EXTERNAL_IP,
    NODE_IP,
    OUTSIDE_IP,
    POD_IP,
    HostNet,
    connects,
    host_net,
)
from tests.support.node_namespace import bare_namespace

pytestmark = pytest.mark.integration

HEP_LABEL = {"host-endpoint": "ingress"}


def _without_host_endpoints(case: dict[str, Any]) -> dict[str, Any]:
    kept = [r for r in case["resources"] if r["kind"] != "HostEndpoint"]
    return {**case, "resources": kept}


@pytest.mark.parametrize("case", golden_cases())
def test_each_golden_table_goes_into_a_kernel_and_comes_out_again_by_difference(
    case: str,
) -> None:
    """The golden tables are what nft accepts, as a whole and as changes: host endpoints
    appearing and going add and remove base chains in one transaction each."""
    loaded = load(case)
    with bare_namespace("hepgold") as ns, contextlib.closing(NftablesManager()) as manager:
        path = f"/run/netns/{ns}"
        for step in (_without_host_endpoints(loaded), loaded, _without_host_endpoints(loaded)):
            in_netns(path, lambda s=step: manager.write(desired(s).ruleset))
            listed = subprocess.run(
                ["ip", "netns", "exec", ns, "nft", "list", "chains", "inet"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            hooked = step is loaded
            assert ("filter-cali-from-host-endpoint" in listed) == hooked
        manager.reset()
        in_netns(path, lambda: manager.write(desired(loaded).ruleset))


def _resources(net: HostNet, *extra: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "kind": "Node",
            "metadata": {"name": "node1"},
            "spec": {"bgp": {"ipv4Address": f"{NODE_IP}/24"}},
        },
        {"kind": "IPPool", "metadata": {"name": "pods"}, "spec": {"cidr": "10.65.0.0/16"}},
        {
            "kind": "Profile",
            "metadata": {"name": "kns.default"},
            "spec": {"ingress": [{"action": "Allow"}], "egress": [{"action": "Allow"}]},
        },
        {
            "kind": "WorkloadEndpoint",
            "metadata": {"name": "node1-k8s-web-eth0", "namespace": "default"},
            "spec": {
                "node": "node1",
                "orchestrator": "k8s",
                "pod": "web",
                "endpoint": "eth0",
                "interfaceName": net.pod_iface,
                "ipNetworks": [f"{POD_IP}/32"],
                "profiles": ["kns.default"],
            },
        },
        *extra,
    ]


def _hep(interface: str = "eth0", **spec: Any) -> dict[str, Any]:
    return {
        "kind": "HostEndpoint",
        "metadata": {"name": f"node1-{interface.strip('*') or 'all'}", "labels": HEP_LABEL},
        "spec": {"node": "node1", "interfaceName": interface, "expectedIPs": [NODE_IP], **spec},
    }


def _policy(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": name},
        "spec": {"selector": "host-endpoint == 'ingress'", **spec},
    }


ALLOW_8080_FROM_OUTSIDE = _policy(
    "allow-8080",
    ingress=[
        {
            "action": "Allow",
            "protocol": "TCP",
            "source": {"nets": ["203.0.113.0/24"]},
            "destination": {"ports": [8080]},
        }
    ],
)


@contextlib.contextmanager
def _felix(net: HostNet) -> Iterator[Any]:
    """Program(resources, felix=...): the node's ruleset as Felix computes it from the
    resources and the node's links as the kernel has them."""
    with contextlib.closing(NftablesManager()) as manager:

        def program(resources: list[dict[str, Any]], **felix: Any) -> None:
            def work() -> None:
                from pyroute2 import IPRoute

                with IPRoute() as ipr:
                    links = host_links.read(ipr)
                case = {"node": "node1", "resources": resources, "felix": felix}
                manager.write(desired(case, links).ruleset)

            in_netns(net.node_path, work)

        yield program


def test_a_host_endpoint_admits_what_policy_names_and_the_failsafes_and_nothing_else() -> None:
    with host_net() as net, _felix(net) as program:
        program(_resources(net, _hep(), ALLOW_8080_FROM_OUTSIDE))
        assert connects(net.outside, NODE_IP, 8080, source=EXTERNAL_IP)
        assert not connects(net.outside, NODE_IP, 8080, source=OUTSIDE_IP)  # not 203.0.113/24
        assert not connects(net.outside, NODE_IP, 8081, source=EXTERNAL_IP)
        assert connects(net.outside, NODE_IP, 22, source=OUTSIDE_IP)  # inbound failsafe
        # The host's own traffic out: default deny but for the outbound failsafes (BGP).
        assert connects(net.node, OUTSIDE_IP, 179)
        assert not connects(net.node, OUTSIDE_IP, 8081)
        # Forwarded traffic is not the host's: no applyOnForward policy, so it passes.
        assert connects(net.outside, POD_IP, 81, source=EXTERNAL_IP)

        program(_resources(net, ALLOW_8080_FROM_OUTSIDE))  # the host endpoint goes
        assert connects(net.outside, NODE_IP, 8081, source=OUTSIDE_IP)
        assert connects(net.node, OUTSIDE_IP, 8081)


def test_failsafe_ports_follow_felix_configuration() -> None:
    with host_net() as net, _felix(net) as program:
        program(
            _resources(net, _hep()),
            failsafeInboundHostPorts=[{"protocol": "TCP", "port": 8081}],
            failsafeOutboundHostPorts=[],
        )
        assert connects(net.outside, NODE_IP, 8081)
        assert not connects(net.outside, NODE_IP, 22)
        assert not connects(net.node, OUTSIDE_IP, 179)


def test_the_all_interfaces_endpoint_guards_the_host_but_not_pod_traffic() -> None:
    with host_net() as net, _felix(net) as program:
        program(_resources(net, _hep("*"), ALLOW_8080_FROM_OUTSIDE))
        assert connects(net.outside, NODE_IP, 8080, source=EXTERNAL_IP)
        assert not connects(net.outside, NODE_IP, 8081, source=EXTERNAL_IP)
        assert not connects(net.node, OUTSIDE_IP, 8081)
        assert connects(net.outside, POD_IP, 80, source=EXTERNAL_IP)  # forwarded
        assert connects(net.pod, OUTSIDE_IP, 8081)  # forwarded
        assert connects(net.node, POD_IP, 80)  # the host to its own pod: always


@pytest.mark.parametrize(
    ("action", "reaches"), [("Drop", False), ("Accept", True), ("Return", True)]
)
def test_default_endpoint_to_host_action_decides_pod_to_host_traffic_under_a_host_endpoint(
    action: str, reaches: bool
) -> None:
    """The `*` endpoint would refuse 8081; traffic from the node's own pod to it never
    meets host endpoint policy: the workload's egress policy, then this action, decide."""
    with host_net() as net, _felix(net) as program:
        program(_resources(net, _hep("*")), defaultEndpointToHostAction=action)
        assert not connects(net.outside, NODE_IP, 8081)
        assert connects(net.pod, NODE_IP, 8081) == reaches


def test_apply_on_forward_policy_governs_traffic_forwarded_through_the_host_endpoint() -> None:
    only_80 = {
        "types": ["Ingress"],
        "ingress": [{"action": "Allow", "protocol": "TCP", "destination": {"ports": [80]}}],
    }
    with host_net() as net, _felix(net) as program:
        program(_resources(net, _hep(), _policy("fwd", **only_80)))
        assert connects(net.outside, POD_IP, 81)  # normal policy: host traffic only
        program(_resources(net, _hep(), _policy("fwd", applyOnForward=True, **only_80)))
        assert connects(net.outside, POD_IP, 80)
        assert not connects(net.outside, POD_IP, 81)
        assert connects(net.pod, OUTSIDE_IP, 8081)  # no applyOnForward egress policy


def _dnat_30080_to_the_pod(net: HostNet) -> None:
    """A NodePort as kube-proxy would make it, in a table of the test's own."""
    script = (
        "add table ip heptest\n"
        "add chain ip heptest pre { type nat hook prerouting priority dstnat; }\n"
        f"add rule ip heptest pre tcp dport 30080 dnat to {POD_IP}:80\n"
    )
    subprocess.run(
        ["ip", "netns", "exec", net.node, "nft", "-f", "-"], input=script, text=True, check=True
    )


def test_pre_dnat_policy_sees_the_node_port_before_it_becomes_the_pods_port() -> None:
    close_node_port = _policy(
        "close-nodeport",
        preDNAT=True,
        applyOnForward=True,
        ingress=[
            {
                "action": "Deny",
                "protocol": "TCP",
                "source": {"nets": ["203.0.113.0/24"]},
                "destination": {"ports": [30080]},
            }
        ],
    )
    with host_net() as net, _felix(net) as program:
        _dnat_30080_to_the_pod(net)
        program(_resources(net, _hep(), ALLOW_8080_FROM_OUTSIDE))
        assert connects(net.outside, NODE_IP, 30080, source=EXTERNAL_IP)
        program(_resources(net, _hep(), ALLOW_8080_FROM_OUTSIDE, close_node_port))
        assert not connects(net.outside, NODE_IP, 30080, source=EXTERNAL_IP)
        assert connects(net.outside, NODE_IP, 30080, source=OUTSIDE_IP)  # not 203.0.113/24
        assert connects(net.outside, POD_IP, 80, source=EXTERNAL_IP)  # the pod's own port


def test_a_pre_dnat_allow_skips_the_normal_host_endpoint_policy() -> None:
    open_8081 = _policy(
        "open-8081",
        preDNAT=True,
        applyOnForward=True,
        ingress=[{"action": "Allow", "protocol": "TCP", "destination": {"ports": [8081]}}],
    )
    with host_net() as net, _felix(net) as program:
        program(_resources(net, _hep(), ALLOW_8080_FROM_OUTSIDE, open_8081))
        assert connects(net.outside, NODE_IP, 8081, source=EXTERNAL_IP)
        assert not connects(net.outside, NODE_IP, 8080, source=OUTSIDE_IP)  # normal policy


def _tracked(net: HostNet) -> set[tuple[str, int]]:
    """The node's conntrack entries as (source address, destination port)."""

    def work() -> set[tuple[str, int]]:
        from pyroute2 import Conntrack

        with Conntrack(nfgen_family=socket.AF_INET) as ct:
            return {(e.tuple_orig.saddr, int(e.tuple_orig.dport or 0)) for e in ct.dump_entries()}

    return in_netns(net.node_path, work)


def test_do_not_track_policy_admits_a_flow_conntrack_never_sees_and_denies_before_it() -> None:
    untracked = _policy(
        "untracked-8080",
        doNotTrack=True,
        applyOnForward=True,
        ingress=[
            {
                "action": "Deny",
                "protocol": "TCP",
                "source": {"nets": [f"{OUTSIDE_IP}/32"]},
                "destination": {"ports": [8080]},
            },
            {"action": "Allow", "protocol": "TCP", "destination": {"ports": [8080]}},
        ],
        egress=[{"action": "Allow", "protocol": "TCP", "source": {"ports": [8080]}}],
    )
    allow_8080 = _policy(
        "allow-8080-all",
        ingress=[{"action": "Allow", "protocol": "TCP", "destination": {"ports": [8080]}}],
    )
    with host_net() as net, _felix(net) as program:
        program(_resources(net, _hep(), allow_8080, untracked))
        assert connects(net.outside, NODE_IP, 8080, source=EXTERNAL_IP)
        assert connects(net.outside, NODE_IP, 22)  # a tracked flow, for comparison
        tracked = _tracked(net)
        assert (OUTSIDE_IP, 22) in tracked and (EXTERNAL_IP, 8080) not in tracked
        # Normal policy allows 8080 from anywhere; only the untracked deny stops this.
        assert not connects(net.outside, NODE_IP, 8080, source=OUTSIDE_IP)


def test_host_traffic_dnat_ed_on_its_way_out_meets_the_endpoints_egress_policy() -> None:
    """Judged in mangle's postrouting hook once its outgoing interface is known, by the
    endpoint's egress policy on the address and port it was DNAT-ed to."""
    allow_8081_out = _policy(
        "allow-8081-out",
        egress=[{"action": "Allow", "protocol": "TCP", "destination": {"ports": [8081]}}],
    )
    script = (
        "add table ip heptest\n"
        "add chain ip heptest out { type nat hook output priority -100; }\n"
        f"add rule ip heptest out tcp dport 9999 dnat to {OUTSIDE_IP}:8081\n"
    )
    with host_net() as net, _felix(net) as program:
        subprocess.run(
            ["ip", "netns", "exec", net.node, "nft", "-f", "-"], input=script, text=True, check=True
        )
        program(_resources(net, _hep()))
        assert not connects(net.node, "198.51.100.7", 9999)
        program(_resources(net, _hep(), allow_8081_out))
        assert connects(net.node, "198.51.100.7", 9999)
