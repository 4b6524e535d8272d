"""Felix's route manager against the real kernel, inside a node namespace the test owns."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from pycalico.felix.calc.routes import PROTO_BOOT, FdbEntry, Neighbour, Route, RouteState
from pycalico.felix.dataplane.routes import WORKLOAD_ROUTE_GRACE, RouteManager
from pycalico.netns import in_netns
from tests.support.node_namespace import node_namespace, sh

pytestmark = pytest.mark.integration


@pytest.fixture
def node() -> Iterator[tuple[str, Any]]:
    from pyroute2 import IPRoute

    with node_namespace("rmnode") as n:
        sh(
            n.ns,
            "ip",
            "link",
            "add",
            "vxlan.calico",
            "type",
            "vxlan",
            "id",
            "4096",
            "dstport",
            "4789",
            "local",
            "192.0.2.11",
            "dev",
            "eth0",
            "nolearning",
        )
        sh(n.ns, "ip", "link", "set", "vxlan.calico", "up")
        sh(n.ns, "ip", "link", "add", "cali0123456789a", "type", "veth", "peer", "name", "pod0")
        sh(n.ns, "ip", "link", "set", "cali0123456789a", "up")
        sh(n.ns, "ip", "link", "set", "pod0", "up")
        ipr = in_netns(n.path, IPRoute)  # its socket stays in the node namespace
        try:
            yield n.ns, ipr
        finally:
            ipr.close()


DESIRED = RouteState(
    routes={
        Route("10.244.1.0/26", kind="blackhole"),
        Route("10.244.1.5/32", dev="cali0123456789a", proto=PROTO_BOOT, scope="link"),
        Route("10.244.2.0/26", dev="vxlan.calico", via="10.244.2.0", onlink=True, proto=PROTO_BOOT),
        Route("10.244.3.0/26", dev="eth0", via="192.0.2.13", onlink=True),
    },
    neighbours={Neighbour("10.244.2.0", "66:00:00:00:00:02")},
    fdb={FdbEntry("66:00:00:00:00:02", "192.0.2.12")},
)


def test_the_kernel_gets_exactly_the_calculated_state(node: tuple[str, Any]) -> None:
    ns, ipr = node
    RouteManager(ipr).reconcile(DESIRED)
    routes = sh(ns, "ip", "route").splitlines()
    assert "blackhole 10.244.1.0/26 proto 80 " in routes
    assert "10.244.1.5 dev cali0123456789a scope link " in routes
    assert "10.244.2.0/26 via 10.244.2.0 dev vxlan.calico onlink " in routes  # proto boot
    assert "10.244.3.0/26 via 192.0.2.13 dev eth0 proto 80 onlink " in routes
    assert "10.244.2.0 lladdr 66:00:00:00:00:02 PERMANENT" in sh(
        ns, "ip", "neigh", "show", "dev", "vxlan.calico"
    )
    assert "66:00:00:00:00:02 dst 192.0.2.12 self permanent" in sh(
        ns, "bridge", "fdb", "show", "dev", "vxlan.calico"
    )


def test_a_second_apply_of_the_same_state_writes_nothing(node: tuple[str, Any]) -> None:
    _, ipr = node
    RouteManager(ipr).reconcile(DESIRED)
    again = RouteManager(ipr).reconcile(DESIRED)  # a restarted Felix: fresh manager, same kernel
    assert (again.added, again.removed) == (0, 0)


def test_what_is_no_longer_wanted_goes_and_foreign_routes_stay(node: tuple[str, Any]) -> None:
    ns, ipr = node
    sh(ns, "ip", "route", "add", "198.51.100.0/24", "via", "192.0.2.1")  # not ours
    manager = RouteManager(ipr)
    manager.reconcile(DESIRED)
    smaller = RouteState(routes={Route("10.244.1.0/26", kind="blackhole")})
    manager.reconcile(smaller)
    routes = sh(ns, "ip", "route")
    assert "10.244.2.0/26" not in routes and "10.244.3.0/26" not in routes
    assert "198.51.100.0/24 via 192.0.2.1" in routes
    assert sh(ns, "ip", "neigh", "show", "dev", "vxlan.calico").strip() == ""
    assert "192.0.2.12" not in sh(ns, "bridge", "fdb", "show", "dev", "vxlan.calico")


def test_every_route_on_vxlan_calico_is_felixs_whatever_its_protocol(
    node: tuple[str, Any],
) -> None:
    """Felix's VXLAN routes carry the device route protocol, as Calico's do: the device,
    not the protocol, marks them, so one Felix no longer wants goes at once."""
    ns, ipr = node
    sh(ns, "ip", "route", "add", "10.244.9.0/26", "via", "10.244.9.0", "dev", "vxlan.calico",
       "onlink")  # fmt: skip
    RouteManager(ipr).reconcile(DESIRED)
    routes = sh(ns, "ip", "route")
    assert "10.244.9.0/26" not in routes
    assert "10.244.2.0/26 via 10.244.2.0 dev vxlan.calico onlink" in routes


def test_an_unknown_workload_route_survives_the_grace_period_only(node: tuple[str, Any]) -> None:
    ns, ipr = node
    sh(ns, "ip", "route", "add", "10.244.1.9", "dev", "cali0123456789a", "scope", "link")
    now = [1000.0]
    manager = RouteManager(ipr, clock=lambda: now[0])
    empty = RouteState()
    manager.reconcile(empty)
    assert "10.244.1.9" in sh(ns, "ip", "route")  # the CNI just added it
    assert not manager.due()
    now[0] += WORKLOAD_ROUTE_GRACE + 1
    assert manager.due()
    manager.reconcile(empty)
    assert "10.244.1.9" not in sh(ns, "ip", "route")
    assert not manager.due()


def test_a_stray_gone_from_the_kernel_is_forgotten_not_due_for_ever(
    node: tuple[str, Any],
) -> None:
    ns, ipr = node
    sh(ns, "ip", "route", "add", "10.244.1.9", "dev", "cali0123456789a", "scope", "link")
    now = [1000.0]
    manager = RouteManager(ipr, clock=lambda: now[0])
    manager.reconcile(RouteState())  # a stray, in its grace period
    sh(ns, "ip", "route", "del", "10.244.1.9", "dev", "cali0123456789a")  # its pod went

    manager.reconcile(RouteState())
    now[0] += WORKLOAD_ROUTE_GRACE + 1

    assert not manager.due()


def test_a_route_whose_device_is_missing_is_retried_for_the_grace_period_only(
    node: tuple[str, Any],
) -> None:
    ns, ipr = node
    now = [1000.0]
    manager = RouteManager(ipr, clock=lambda: now[0])
    late = RouteState(
        routes={Route("10.244.1.7/32", dev="cali0000000late", proto=PROTO_BOOT, scope="link")}
    )
    manager.reconcile(late)
    assert manager.due()  # the pod's veth may come any moment
    sh(ns, "ip", "link", "add", "cali0000000late", "type", "veth", "peer", "name", "pod1")
    sh(ns, "ip", "link", "set", "cali0000000late", "up")
    manager.reconcile(late)
    assert "10.244.1.7 dev cali0000000late" in sh(ns, "ip", "route")
    assert not manager.due()
    gone = RouteState(
        routes=late.routes
        | {Route("10.244.1.8/32", dev="cali00000000gone", proto=PROTO_BOOT, scope="link")}
    )
    manager.reconcile(gone)
    now[0] += WORKLOAD_ROUTE_GRACE + 1
    assert not manager.due()  # a device that long gone waits for the resync


def _applied(state: RouteState) -> Any:
    """What RouteManager.apply reads of a Desired: its routing's state."""
    return SimpleNamespace(routing=SimpleNamespace(state=state))


def test_a_changed_route_set_is_patched_without_reading_the_table_back_until_a_reset(
    node: tuple[str, Any],
) -> None:
    ns, ipr = node
    manager = RouteManager(ipr)
    manager.apply(_applied(DESIRED))
    # Felix's protocol but not wanted: a reconcile removes it, a patch does not look.
    rogue = "10.244.9.0/26 via 192.0.2.13 dev eth0 onlink proto 80"
    sh(ns, "ip", "route", "add", *rogue.split())
    gone = Route("10.244.3.0/26", dev="eth0", via="192.0.2.13", onlink=True)
    changed = RouteState(
        routes=(DESIRED.routes - {gone})
        | {Route("10.244.4.0/26", dev="eth0", via="192.0.2.14", onlink=True)},
        neighbours=DESIRED.neighbours,
        fdb=DESIRED.fdb,
    )

    manager.apply(_applied(changed))

    routes = sh(ns, "ip", "route")
    assert "10.244.4.0/26 via 192.0.2.14 dev eth0 proto 80 onlink" in routes
    assert "10.244.3.0/26" not in routes
    assert "10.244.9.0/26" in routes
    manager.reset()
    manager.apply(_applied(changed))
    assert "10.244.9.0/26" not in sh(ns, "ip", "route")


def test_a_new_route_whose_device_is_missing_is_left_to_the_reconcile_that_defers_it(
    node: tuple[str, Any],
) -> None:
    _, ipr = node
    manager = RouteManager(ipr)
    manager.apply(_applied(DESIRED))
    late = Route("10.244.1.9/32", dev="cali00000000none", proto=PROTO_BOOT, scope="link")

    manager.apply(_applied(RouteState(DESIRED.routes | {late}, DESIRED.neighbours, DESIRED.fdb)))

    assert manager.due()  # deferred: retried while its veth may still come
