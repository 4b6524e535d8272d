"""Felix end to end on one node namespace: datastore in, VXLAN device, routes, NAT, MTU out."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pycalico.api.registry import resolve
from pycalico.api.resource import normalize
from pycalico.datastore.resources import ResourceClient
from pycalico.datastore.sqlite import SqliteBackend
from pycalico.felix.daemon import Felix
from pycalico.felix.driver import Driver
from pycalico.netns import in_netns
from tests.support.conntrack_entries import add_tcp_entry
from tests.support.node_namespace import node_namespace, sh
from tests.support.resources import workload_endpoint

pytestmark = pytest.mark.integration


def apply(client: ResourceClient, kind: str, name: str, spec: dict[str, Any]) -> None:
    client.apply(
        resolve(kind),
        normalize(
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": kind,
                "metadata": {"name": name},
                "spec": spec,
            }
        ),
    )


def affinity(client: ResourceClient, node: str, block: str) -> None:
    key = f"/calico/ipam/v2/host/{node}/ipv4/block/{block.replace('/', '-')}"
    client.backend.create(key, '{"state":"confirmed","deleted":false}')


def eventually(check: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.fixture
def felix(tmp_path: Path) -> Iterator[tuple[str, ResourceClient, Path]]:
    from pyroute2 import IPRoute

    stack = contextlib.ExitStack()
    ns = stack.enter_context(node_namespace("fxnode")).ns
    backend = SqliteBackend(tmp_path / "store.db", create=True)
    client = ResourceClient(backend)
    stop = threading.Event()
    thread: threading.Thread | None = None
    try:
        apply(
            client,
            "IPPool",
            "pods",
            {"cidr": "10.244.0.0/16", "vxlanMode": "Always", "natOutgoing": True},
        )
        apply(
            client,
            "Node",
            "node1",
            {"bgp": {"ipv4Address": "192.0.2.11/24"}, "ipv4VXLANTunnelAddr": "10.244.1.0"},
        )
        apply(
            client,
            "Node",
            "node2",
            {"bgp": {"ipv4Address": "192.0.2.12/24"}, "ipv4VXLANTunnelAddr": "10.244.2.0"},
        )
        affinity(client, "node1", "10.244.1.0/26")
        affinity(client, "node2", "10.244.2.0/26")
        mtu_file = tmp_path / "mtu"

        def serve() -> None:
            def inside() -> None:
                with (
                    IPRoute() as ipr,
                    contextlib.closing(Driver("node1", ipr, mtu_file=str(mtu_file))) as driver,
                ):
                    Felix(driver, {}).run(SqliteBackend(tmp_path / "store.db", create=True), stop)

            in_netns(f"/run/netns/{ns}", inside)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        yield ns, client, mtu_file
    finally:
        stop.set()
        if thread is not None:
            thread.join(timeout=10)
        backend.close()
        stack.close()
        logging.getLogger("pycalico.felix").setLevel(logging.NOTSET)  # as Felix found it


def test_felix_programs_the_node_and_follows_datastore_changes(
    felix: tuple[str, ResourceClient, Path],
) -> None:
    ns, client, mtu_file = felix
    eventually(lambda: "10.244.2.0/26 via 10.244.2.0 dev vxlan.calico" in sh(ns, "ip", "route"))
    routes = sh(ns, "ip", "route")
    assert "blackhole 10.244.1.0/26 proto 80" in routes
    link = json.loads(sh(ns, "ip", "-j", "-d", "link", "show", "vxlan.calico"))[0]
    assert link["linkinfo"]["info_data"]["id"] == 4096 and link["mtu"] == 1450
    assert "masquerade" in sh(ns, "nft", "list", "table", "inet", "calico")
    eventually(lambda: mtu_file.exists() and mtu_file.read_text() == "1450\n")
    # A node joins: its block is routed without restarting anything.
    apply(
        client,
        "Node",
        "node3",
        {"bgp": {"ipv4Address": "198.51.100.13/24"}, "ipv4VXLANTunnelAddr": "10.244.3.0"},
    )
    affinity(client, "node3", "10.244.3.0/26")
    eventually(lambda: "10.244.3.0/26 via 10.244.3.0 dev vxlan.calico" in sh(ns, "ip", "route"))
    assert "66:" in sh(ns, "bridge", "fdb", "show", "dev", "vxlan.calico")
    # The pool stops masquerading: the NAT rule goes.
    apply(client, "IPPool", "pods", {"cidr": "10.244.0.0/16", "vxlanMode": "Always"})
    eventually(lambda: "masquerade" not in sh(ns, "nft", "list", "table", "inet", "calico"))


def test_routes_lost_to_a_link_flap_come_back_without_any_datastore_change(
    felix: tuple[str, ResourceClient, Path],
) -> None:
    """A link that went down and up took its routes with it: Felix notices between
    datastore changes (and a policy-only change, which skips routing, would not hide it)."""
    ns, _, _ = felix
    remote = "10.244.2.0/26 via 10.244.2.0 dev vxlan.calico"
    eventually(lambda: remote in sh(ns, "ip", "route"))
    # Read while the link is down (no route can be put back on it then): the kernel took
    # the route; Felix hears of the flap from the link events alone.
    flapped = sh(
        ns, "sh", "-c", "ip link set vxlan.calico down && ip route && ip link set vxlan.calico up"
    )
    assert remote not in flapped
    eventually(lambda: remote in sh(ns, "ip", "route"))


def workload(client: ResourceClient, pod: str, *ips: str) -> None:
    client.apply(resolve("WorkloadEndpoint"), workload_endpoint(pod, list(ips)))


def to_workload_map(ns: str) -> str:
    return sh(ns, "nft", "list", "map", "inet", "calico", "cali-to-wl", check=False)


def flows(ns: str) -> set[tuple[str, str]]:
    from pyroute2 import Conntrack

    def inside() -> set[tuple[str, str]]:
        found = set()
        for family in (socket.AF_INET, socket.AF_INET6):
            with Conntrack(nfgen_family=family) as ct:
                found |= {(e.tuple_orig.saddr, e.tuple_orig.daddr) for e in ct.dump_entries()}
        return found

    return in_netns(f"/run/netns/{ns}", inside)


def add_flow(ns: str, src: str, dst: str, reply_src: str, port: int) -> None:
    from pyroute2 import Conntrack

    family = socket.AF_INET if "." in src else socket.AF_INET6

    def inside() -> None:
        with Conntrack(nfgen_family=family) as ct:
            add_tcp_entry(ct, family, src, dst, port, reply_src)

    in_netns(f"/run/netns/{ns}", inside)


def test_flows_of_a_deleted_workload_address_go_with_it_and_no_others(
    felix: tuple[str, ResourceClient, Path],
) -> None:
    """A pod that gets a deleted pod's address must not inherit its established flows."""
    ns, client, _ = felix
    workload(client, "web", "10.244.1.5", "fd00:244::5")
    workload(client, "db", "10.244.1.6")
    eventually(lambda: "calidb" in to_workload_map(ns))
    add_flow(ns, "10.244.1.5", "10.244.2.9", "10.244.2.9", 40000)  # web opened it
    add_flow(ns, "10.244.2.9", "10.244.1.5", "10.244.1.5", 40001)  # web answered it
    add_flow(ns, "10.244.2.9", "10.244.1.6", "10.244.1.6", 40002)  # db's
    add_flow(ns, "10.244.1.6", "203.0.113.1", "203.0.113.1", 40003)  # db's, outward
    add_flow(ns, "fd00:244::5", "fd00:244::9", "fd00:244::9", 40004)  # web's, IPv6
    assert len(flows(ns)) == 5
    client.delete(resolve("WorkloadEndpoint"), "node1-k8s-web-eth0", "default")
    eventually(lambda: "caliweb" not in to_workload_map(ns))
    eventually(lambda: flows(ns) == {("10.244.2.9", "10.244.1.6"), ("10.244.1.6", "203.0.113.1")})


def logged(caplog: pytest.LogCaptureFixture, message: str) -> int:
    """How many of Felix's records so far start with `message`."""
    return sum(r.getMessage().startswith(message) for r in caplog.records)


def applied_since(caplog: pytest.LogCaptureFixture, message: str) -> bool:
    """Whether an apply has gone through since Felix logged `message`."""
    messages = [r.getMessage() for r in caplog.records]
    since = next((i for i, m in enumerate(messages) if m.startswith(message)), len(messages))
    return any(m.startswith("Finished applying updates") for m in messages[since + 1 :])


def test_routes_come_back_when_the_underlay_returns_after_felix_failed_while_it_was_down(
    felix: tuple[str, ResourceClient, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """While eth0 is down Felix cannot put its direct routes back (the kernel refuses a
    next hop on a down device); the link coming up is then the change it waits for."""
    ns, client, _ = felix
    caplog.set_level(logging.WARNING, logger="pycalico.felix")
    apply(client, "IPPool", "pods", {"cidr": "10.244.0.0/16", "vxlanMode": "CrossSubnet"})
    direct = "10.244.2.0/26 via 192.0.2.12 dev eth0"
    eventually(lambda: direct in sh(ns, "ip", "route"))
    failed = logged(caplog, "dataplane apply failed")
    sh(ns, "ip", "link", "set", "eth0", "down")
    # Felix hears of it and tries, in vain; only then is the link's return what it waits for.
    eventually(lambda: logged(caplog, "dataplane apply failed") > failed)
    sh(ns, "ip", "link", "set", "eth0", "up")
    eventually(lambda: direct in sh(ns, "ip", "route"))


def test_route_refresh_interval_from_felix_configuration_sets_the_resync_period(
    felix: tuple[str, ResourceClient, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """Only a full resync repairs a route removed behind Felix's back (no datastore change,
    no link change): with `routeRefreshInterval: 1s` in FelixConfiguration `default` (and
    no FELIX_ROUTEREFRESHINTERVAL) it is back within seconds, not the default 90."""
    ns, client, _ = felix
    caplog.set_level(logging.INFO, logger="pycalico.felix")
    blackhole = "blackhole 10.244.1.0/26 proto 80"
    eventually(lambda: blackhole in sh(ns, "ip", "route"))
    apply(client, "FelixConfiguration", "default", {"routeRefreshInterval": "1s"})
    # The route goes only once the apply that took the new interval is over: removed
    # earlier, that apply (of a datastore change) would be what puts it back.
    eventually(lambda: applied_since(caplog, "routeRefreshInterval is now 1.0s"))
    sh(ns, "ip", "route", "del", "blackhole", "10.244.1.0/26")
    assert blackhole not in sh(ns, "ip", "route")
    # Back by a resync: the default interval (90 s) would be far past this bound.
    eventually(lambda: blackhole in sh(ns, "ip", "route"), seconds=30)


def test_log_severity_screen_from_felix_configuration_sets_felixs_log_level(
    felix: tuple[str, ResourceClient, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """The node's own FelixConfiguration beats `default`; removing it falls back."""
    ns, client, _ = felix
    caplog.set_level(logging.DEBUG)  # let every record through to the capture
    felix_log = logging.getLogger("pycalico.felix")
    eventually(lambda: "blackhole 10.244.1.0/26" in sh(ns, "ip", "route"))
    apply(client, "FelixConfiguration", "default", {"logSeverityScreen": "Warning"})
    eventually(lambda: felix_log.level == logging.WARNING)
    apply(client, "FelixConfiguration", "node.node1", {"logSeverityScreen": "Debug"})
    eventually(lambda: felix_log.level == logging.DEBUG)
    eventually(lambda: any("Finished applying updates" in r.getMessage() for r in caplog.records))
    client.delete(resolve("FelixConfiguration"), "node.node1")
    eventually(lambda: felix_log.level == logging.WARNING)


def test_each_apply_is_logged_at_info_with_what_changed_unless_the_level_is_above(
    felix: tuple[str, ResourceClient, Path], caplog: pytest.LogCaptureFixture
) -> None:
    ns, client, _ = felix
    caplog.set_level(logging.DEBUG)
    eventually(lambda: "blackhole 10.244.1.0/26" in sh(ns, "ip", "route"))

    def finished() -> list[str]:
        return [m for m in caplog.messages if m.startswith("Finished applying updates")]

    apply(client, "FelixConfiguration", "default", {"logSeverityScreen": "Warning"})
    eventually(lambda: logging.getLogger("pycalico.felix").level == logging.WARNING)
    caplog.clear()
    apply(
        client,
        "Node",
        "node3",
        {"bgp": {"ipv4Address": "192.0.2.13/24"}, "ipv4VXLANTunnelAddr": "10.244.3.0"},
    )
    affinity(client, "node3", "10.244.3.0/26")
    eventually(lambda: "10.244.3.0/26 via 10.244.3.0" in sh(ns, "ip", "route"))
    assert finished() == []
    apply(client, "FelixConfiguration", "default", {"logSeverityScreen": "Info"})
    eventually(lambda: logging.getLogger("pycalico.felix").level == logging.INFO)
    apply(
        client,
        "Node",
        "node4",
        {"bgp": {"ipv4Address": "192.0.2.14/24"}, "ipv4VXLANTunnelAddr": "10.244.4.0"},
    )
    affinity(client, "node4", "10.244.4.0/26")
    eventually(lambda: "10.244.4.0/26 via 10.244.4.0" in sh(ns, "ip", "route"))
    eventually(lambda: any("node added node4" in m for m in finished()))
    line = next(m for m in finished() if "node added node4" in m)
    assert "msecToApply=" in line and "(revision " in line
    eventually(lambda: any("routes " in m and " -> " in m for m in finished()))


def test_a_host_endpoint_found_by_address_follows_the_address_between_interfaces(
    felix: tuple[str, ResourceClient, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """No interfaceName: the endpoint governs whichever interface holds one of its
    expectedIPs, as the kernel says now (no datastore change needed). An untracked policy
    on the all-interfaces endpoint is ignored with a warning, as Calico does."""
    ns, client, _ = felix
    caplog.set_level(logging.WARNING, logger="pycalico.felix")

    def chains() -> str:
        return sh(ns, "nft", "list", "chains", "inet")

    sh(ns, "ip", "addr", "add", "198.51.100.7/32", "dev", "eth0")
    apply(
        client, "HostEndpoint", "node1-storage", {"node": "node1", "expectedIPs": ["198.51.100.7"]}
    )
    eventually(lambda: "filter-cali-fh-eth0" in chains())
    # From here on only the kernel changes.
    sh(ns, "ip", "addr", "del", "198.51.100.7/32", "dev", "eth0")
    eventually(lambda: "filter-cali-fh-eth0" not in chains())
    sh(ns, "ip", "link", "add", "storage0", "type", "veth", "peer", "name", "storage1")
    sh(ns, "ip", "addr", "add", "198.51.100.7/32", "dev", "storage0")
    eventually(lambda: "filter-cali-fh-storage0" in chains())

    apply(client, "HostEndpoint", "node1-all", {"node": "node1", "interfaceName": "*"})
    apply(
        client,
        "GlobalNetworkPolicy",
        "untracked",
        {
            "selector": "all()",
            "doNotTrack": True,
            "applyOnForward": True,
            "ingress": [{"action": "Allow"}],
        },
    )
    warning = (
        "DoNotTrack policy is not supported for a HEP with `interfaceName: *` "
        "(HostEndpoint node1-all); ignoring it"
    )
    eventually(lambda: any(r.getMessage() == warning for r in caplog.records))
    assert "raw-cali-fh-any-interface-at-all" not in chains()
