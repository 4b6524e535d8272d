"""The routes the lab itself made on its underlay, found missing and put back.

The lab gives every node (and etcd member) a default route via the router, and the external
host its routes back to the nodes (and, behind a ToR, to the pods). Taking an interface down
deletes the routes through it and bringing it up does not restore them: after an `eth0` flap
a node's pods lose the outside. Felix restores the routes that are Calico's, never these;
`status` flags what is missing and `calico-lab repair` puts it back.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

from pycalico.lab.cluster import EXTERNAL_ROUTER_IP
from pycalico.lab.namespaces import in_ns, ns_name
from pycalico.lab.state import LabError, LabState
from pycalico.lab.underlay_plan import ETCD_MEMBERS, SUBNETS


@dataclass(frozen=True)
class UnderlayRoute:
    role: str  # node1, etcd1, ext
    dst: str  # "default" or a CIDR
    gateway: str
    dev: str = "eth0"

    def text(self) -> str:
        return f"{self.dst} via {self.gateway} dev {self.dev}"


def expected(state: LabState) -> list[UnderlayRoute]:
    """Every route the lab made, in the order `up` made them (pure)."""
    routes = [
        UnderlayRoute(node, "default", _gateway(cidr))
        for node, cidr in sorted(state.node_ips.items(), key=lambda kv: state.nodes.index(kv[0]))
    ]
    if state.datastore == "etcd":
        routes += [
            UnderlayRoute(f"etcd{i + 1}", "default", _gateway(SUBNETS[0]))
            for i in range(ETCD_MEMBERS)
        ]
    routes.append(UnderlayRoute("ext", "192.168.56.0/23", EXTERNAL_ROUTER_IP))
    if state.topology == "tor":
        routes.append(UnderlayRoute("ext", state.pool, EXTERNAL_ROUTER_IP))
    return routes


def _gateway(interface: str) -> str:
    return str(ipaddress.ip_interface(interface).network.network_address + 1)


def _present(state: LabState, route: UnderlayRoute) -> bool:
    dst = "0.0.0.0/0" if route.dst == "default" else route.dst
    shown = json.loads(
        in_ns(ns_name(state.name, route.role), "ip", "-j", "route", "show", "exact", dst) or "[]"
    )
    return any(r.get("gateway") == route.gateway and r.get("dev") == route.dev for r in shown)


def missing(state: LabState) -> list[UnderlayRoute]:
    """The lab's underlay routes the kernel no longer has."""
    return [route for route in expected(state) if not _present(state, route)]


def repair(state: LabState) -> list[str]:
    """Put back every missing route (bringing its interface up first if it is down); one
    line per thing done."""
    done = []
    for route in missing(state):
        ns = ns_name(state.name, route.role)
        link = json.loads(in_ns(ns, "ip", "-j", "link", "show", "dev", route.dev))[0]
        if "UP" not in link.get("flags", []):
            in_ns(ns, "ip", "link", "set", route.dev, "up")
            done.append(f"{route.role}: {route.dev} was down: set it up")
        try:
            in_ns(ns, "ip", "route", "replace", *route.text().split())
        except LabError as exc:
            raise LabError(f"{route.role}: could not restore {route.text()}: {exc}") from None
        done.append(f"{route.role}: restored {route.text()}")
    return done
