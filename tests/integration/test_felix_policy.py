"""Policy in the kernel: the rendered nftables ruleset decides real packets between pods."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from pycalico.api.resource import normalize
from pycalico.felix.dataplane.nftables import NftablesManager
from pycalico.felix.rules import policy as nft
from pycalico.netns import in_netns
from pycalico.policy import calc, model

pytestmark = pytest.mark.integration

PROFILE = model.profile(
    normalize(
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "Profile",
            "metadata": {"name": "kns.default"},
            "spec": {"ingress": [{"action": "Allow"}], "egress": [{"action": "Allow"}]},
        }
    )
)
TIERS = {"default": calc.Tier("default", 1_000_000)}
WEB_FROM_CLIENT = model.policy(
    normalize(
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "NetworkPolicy",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "selector": "app == 'web'",
                "ingress": [
                    {
                        "action": "Allow",
                        "protocol": "TCP",
                        "source": {"selector": "app == 'client'"},
                        "destination": {"ports": [80]},
                    }
                ],
            },
        }
    )
)


def sh(ns: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, check=check
    )


@contextlib.contextmanager
def node_with_pods(count: int) -> Iterator[tuple[str, list[tuple[str, str, str]]]]:
    """A node namespace and `count` pods wired as Calico wires them: (netns, iface, ip)."""
    tag = uuid.uuid4().hex[:6]
    node = f"pol-{tag}"
    pods = [(f"pol-{tag}-p{i}", f"calipol{tag}{i}", f"10.65.0.{i + 1}") for i in range(count)]
    servers: list[subprocess.Popen[bytes]] = []
    made = [node]
    try:
        subprocess.run(["ip", "netns", "add", node], check=True)
        sh(node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        # Proxy ARP answers for 169.254.1.1 only if the node has a route towards it.
        sh(node, "ip", "link", "add", "up0", "type", "veth", "peer", "name", "up1")
        sh(node, "ip", "link", "set", "up0", "up")
        sh(node, "ip", "link", "set", "up1", "up")
        sh(node, "ip", "addr", "add", "192.0.2.1/24", "dev", "up0")
        sh(node, "ip", "route", "add", "default", "via", "192.0.2.2", "dev", "up0")
        for ns, iface, ip in pods:
            subprocess.run(["ip", "netns", "add", ns], check=True)
            made.append(ns)
            subprocess.run(
                [
                    "ip",
                    "link",
                    "add",
                    iface,
                    "netns",
                    node,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "eth0",
                    "netns",
                    ns,
                ],
                check=True,
            )
            sh(node, "ip", "link", "set", iface, "up")
            sh(node, "sysctl", "-qw", f"net.ipv4.conf.{iface}.proxy_arp=1")
            sh(node, "sysctl", "-qw", f"net.ipv4.neigh.{iface}.proxy_delay=0")
            sh(node, "ip", "route", "add", f"{ip}/32", "dev", iface)
            for cmd in (
                ("ip", "link", "set", "lo", "up"),
                ("ip", "link", "set", "eth0", "up"),
                ("ip", "addr", "add", f"{ip}/32", "dev", "eth0"),
                ("ip", "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link"),
                ("ip", "route", "add", "default", "via", "169.254.1.1"),
            ):
                sh(ns, *cmd)
            servers.append(
                subprocess.Popen(
                    ["ip", "netns", "exec", ns, sys.executable, "-m", "pycalico.lab.echo", "80,81"]
                )
            )
        yield node, pods
    finally:
        for server in servers:
            server.kill()
            server.wait()
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], check=False)


def endpoint(iface: str, ip: str, **labels: str) -> model.Endpoint:
    return model.endpoint(
        normalize(
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": "WorkloadEndpoint",
                "metadata": {
                    "name": f"node1-k8s-{iface}-eth0",
                    "namespace": "default",
                    "labels": labels,
                },
                "spec": {
                    "node": "node1",
                    "orchestrator": "k8s",
                    "pod": iface,
                    "endpoint": "eth0",
                    "interfaceName": iface,
                    "ipNetworks": [f"{ip}/32"],
                    "profiles": ["kns.default"],
                },
            }
        ),
        {"kns.default": PROFILE},
    )


def connects(ns: str, ip: str, port: int) -> bool:
    code = (
        "import socket,sys\n"
        "s=socket.socket();s.settimeout(1)\n"
        f"sys.exit(0 if s.connect_ex(('{ip}',{port}))==0 else 1)\n"
    )
    return sh(ns, sys.executable, "-c", code, check=False).returncode == 0


def program(
    node: str, manager: NftablesManager, endpoints: list[model.Endpoint], policies: list[Any]
) -> None:
    state = calc.calculate(
        "node1", calc.Inputs(endpoints, policies, {"kns.default": PROFILE}, TIERS)
    )
    in_netns(f"/run/netns/{node}", lambda: manager.write(nft.render(state)))


def test_policy_allows_only_what_it_names_and_follows_label_changes() -> None:
    with node_with_pods(3) as (node, pods), contextlib.closing(NftablesManager()) as manager:
        (client_ns, client_if, client_ip), (web_ns, web_if, web_ip), (stray_ns, _, stray_ip) = pods
        client = endpoint(client_if, client_ip, app="client")
        web = endpoint(web_if, web_ip, app="web")
        program(node, manager, [client, web], [WEB_FROM_CLIENT])
        for _ in range(20):  # the echo servers may still be starting
            if connects(client_ns, web_ip, 80):
                break
        assert connects(client_ns, web_ip, 80)
        assert not connects(client_ns, web_ip, 81)  # selected by a policy: default deny
        assert connects(web_ns, client_ip, 81)  # no policy on the client: its profile allows
        # The third pod's interface is not programmed: nothing in or out (fail closed).
        assert not connects(stray_ns, web_ip, 80)
        assert not connects(client_ns, stray_ip, 80)

        # The client loses its label: only set elements change, and the door closes.
        relabelled = endpoint(client_if, client_ip, app="other")
        before = manager.applied
        program(node, manager, [relabelled, web], [WEB_FROM_CLIENT])
        assert before is not None and manager.applied is not None
        assert before.chains == manager.applied.chains
        assert not connects(client_ns, web_ip, 80)

        # The policy goes: the web pod follows its profile again.
        program(node, manager, [relabelled, web], [])
        assert connects(client_ns, web_ip, 81)


def test_a_ruleset_nft_refuses_changes_nothing_and_the_next_apply_starts_over() -> None:
    from pycalico.felix.dataplane.nftables import PolicyApplyError

    with node_with_pods(2) as (node, pods), contextlib.closing(NftablesManager()) as manager:
        (client_ns, client_if, client_ip), (_, web_if, web_ip) = pods
        client = endpoint(client_if, client_ip, app="client")
        web = endpoint(web_if, web_ip, app="web")
        program(node, manager, [client, web], [WEB_FROM_CLIENT])
        for _ in range(20):
            if connects(client_ns, web_ip, 80):
                break
        state = calc.calculate(
            "node1", calc.Inputs([client, web], [], {"kns.default": PROFILE}, TIERS)
        )
        broken = nft.render(state)
        broken.chains["filter-cali-pi-broken"] = ("this is not nft",)
        with pytest.raises(PolicyApplyError, match="nft rejected"):
            in_netns(f"/run/netns/{node}", lambda: manager.write(broken))
        assert manager.applied is None  # the next apply replaces the whole table
        assert not connects(client_ns, web_ip, 81)  # the old ruleset still holds
        assert connects(client_ns, web_ip, 80)
        program(node, manager, [client, web], [])
        assert connects(client_ns, web_ip, 81)


def test_the_last_endpoints_of_a_profile_go_with_its_chain_in_one_change() -> None:
    with node_with_pods(2) as (node, pods), contextlib.closing(NftablesManager()) as manager:
        (_, client_if, client_ip), (_, web_if, web_ip) = pods
        client = endpoint(client_if, client_ip, app="client")
        web = endpoint(web_if, web_ip, app="web")
        program(node, manager, [client, web], [])
        before = manager.applied
        assert before is not None and any("pri-kns.default" in c for c in before.chains)
        # The endpoints' chains jump to the profile's chain, which goes with them: the
        # change must not delete the profile's chain while they still jump to it.
        program(node, manager, [], [])
        after = manager.applied
        assert after is not None and not any("pri-kns.default" in c for c in after.chains)
