"""Felix's dataplane driver: one snapshot in, the node's kernel state made to match.

Order matters for traffic already flowing: devices first (so routes have somewhere to
point), then routes/neighbours/FDB by diff, then the `inet calico` table (policy and NAT in
one transaction), then the MTU file for the CNI.

Devices and routes are reconciled again only when their inputs changed (the datastore's,
and the underlay and tunnel links, as the kernel announces their changes), after a full
reload of the datastore (every resync, or a lost watch), or when a route is due (a stray
out of its grace period, a wanted one waiting for its device); a change that concerns only
policy (a label, a policy) skips them, which keeps it fast. A full reload also rewrites the
whole nftables table, repairing anything changed behind Felix's back.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from pyroute2 import NetlinkError

from pycalico.atomic_file import write_text
from pycalico.felix import (
    calc_routes,
    conntrack_flows,
    ipip_device,
    kernel_events,
    mtu,
    nat,
    vxlan_device,
)
from pycalico.felix.policy_manager import PolicyManager
from pycalico.felix.route_manager import RouteManager
from pycalico.felix.snapshot import Snapshot
from pycalico.policy import calc as policy_calc
from pycalico.policy import nft as policy_nft
from pycalico.policy import policy_inputs

log = logging.getLogger("pycalico.felix")

DEFAULT_VXLAN_VNI = 4096
DEFAULT_VXLAN_PORT = 4789


class DataplaneError(RuntimeError):
    pass


@dataclass
class Driver:
    node: str
    ipr: Any  # pyroute2 IPRoute in the node's namespace
    mtu_file: str = "/var/lib/calico/mtu"
    env: dict[str, str] = field(default_factory=dict)  # FELIX_* overrides
    # With the BIRD backend, BIRD installs the blackholes of blocks outside VXLAN pools.
    bird_blackholes: bool = False
    # One file per endpoint whose policy is in the kernel: who waits for a new pod to be
    # usable (the lab, a runtime) watches for it, as Calico's CNI waits for Felix's.
    endpoint_status_dir: str = ""
    # The datastore revision the kernel reflects, after every successful apply: whoever
    # changed the datastore can wait for the dataplane to have caught up.
    revision_file: str = ""
    routes: RouteManager = field(init=False)
    policy: PolicyManager = field(default_factory=PolicyManager, init=False)
    # Kept across applies: unchanged resources and endpoints cost (almost) nothing.
    policy_reader: policy_inputs.Reader = field(default_factory=policy_inputs.Reader, init=False)
    policy_calculator: policy_calc.Calculator = field(init=False)
    # What devices and routes were last reconciled from (None: do it on the next apply).
    _routed: tuple[Any, ...] | None = field(default=None, init=False)
    _link_events: kernel_events.LinkEvents | None = field(default=None, init=False)
    _links_dirty: bool = field(default=False, init=False)  # a link changed: route again
    _underlay: str = field(default="", init=False)
    _vxlan_port: int | None = field(default=None, init=False)
    _pod_mtu: int = field(default=0, init=False)
    _forwarding_on: bool = field(default=False, init=False)
    _written_mtu: int = field(default=0, init=False)
    _status_written: set[str] | None = field(default=None, init=False)  # None: read the dir
    # Local workload addresses in the kernel's policy (None before the first apply: flows a
    # restart finds belong to pods that are still there, or were flushed before it).
    _workload_addresses: frozenset[policy_calc.Network] | None = field(default=None, init=False)
    applies: int = field(default=0, init=False)
    route_count: int = field(default=0, init=False)
    endpoint_count: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.routes = RouteManager(self.ipr)
        self.policy_calculator = policy_calc.Calculator(self.node)

    def _setting(self, snap: Snapshot, field_name: str, default: Any) -> Any:
        """FELIX_<NAME> env beats the node's and the global FelixConfiguration (Calico's order)."""
        env_value = self.env.get("FELIX_" + field_name.upper())
        if env_value is not None:
            return (
                type(default)(env_value)
                if not isinstance(default, bool)
                else env_value.lower() in ("true", "1", "yes")
            )
        return snap.felix_config.get(field_name, default)

    def underlay(self, address: ipaddress.IPv4Interface) -> str:
        for msg in self.ipr.get_addr(family=2):
            if msg.get_attr("IFA_ADDRESS") == str(address.ip):
                link = self.ipr.get_links(msg["index"])[0]
                return str(link.get_attr("IFLA_IFNAME"))
        raise DataplaneError(f"no interface holds this node's address {address.ip}")

    def apply(self, snap: Snapshot) -> None:
        routing = (
            snap.generation,
            snap.nodes,
            snap.pools,
            snap.block_owners,
            snap.borrowed,
            snap.workloads,
            snap.felix_config,
        )
        if self._routed is None or self._routed[0] != snap.generation:
            self.policy.reset()
        links_changed = self._links_changed()  # first: changes from now on are heard
        if links_changed or routing != self._routed or self.routes.due:
            self._routed, self._links_dirty = None, False
            self._route(snap)
            self._routed = routing
        policy = self.policy_calculator.calculate(snap.policy)
        rules = policy_nft.render(
            policy, str(self._setting(snap, "defaultEndpointToHostAction", "Drop"))
        )
        nat.add_to(rules, snap.nat_pools, self._vxlan_port)
        self.policy.apply(rules)
        self._forget_flows(snap)
        self._write_endpoint_status(set(policy.endpoints))
        if self.revision_file:
            write_text(self.revision_file, f"{snap.revision}\n")
        self._write_mtu(self._pod_mtu)
        self.applies += 1

    def due(self) -> bool:
        """Whether the kernel needs an apply though the datastore did not change: a link the
        routes hang on changed (a down took its routes with it), or a route waits for its
        grace period or its device. Cheap: reads only what the kernel announced.

        A link change is worth a try even after a failed apply: a link coming back up is
        what an apply that failed while it was down waits for. Otherwise a failed apply
        waits for the next datastore change or resync, rather than fail every tick."""
        if self._links_changed():
            return True
        return self._routed is not None and self.routes.due

    def _links_changed(self) -> bool:
        """Whether the underlay or a tunnel link changed since routes were last reconciled."""
        if self._link_events is None:  # opened in the namespace of the thread that applies
            self._link_events = kernel_events.LinkEvents()
        names = (self._underlay, calc_routes.VXLAN_DEVICE, calc_routes.IPIP_DEVICE)
        if self._link_events.changed(name for name in names if name):
            self._links_dirty = True
        return self._links_dirty

    def close(self) -> None:
        self.policy.close()
        if self._link_events is not None:
            self._link_events.close()

    def _route(self, snap: Snapshot) -> None:
        """Devices, then routes, neighbours and FDB entries, as the snapshot wants them."""
        local = snap.nodes.get(self.node)
        if local is None or local.address is None:
            raise DataplaneError(f"Node {self.node} has no IPv4 address yet")
        underlay = self._underlay = self.underlay(local.address)
        self._enable_forwarding(snap)
        links = [
            mtu.Link(
                str(link.get_attr("IFLA_IFNAME")),
                int(link.get_attr("IFLA_MTU")),
                bool(link["flags"] & 1),
            )
            for link in self.ipr.get_links()
        ]
        host_mtu = mtu.host_mtu(
            links, self._setting(snap, "mtuIfacePattern", mtu.DEFAULT_IFACE_PATTERN)
        )
        vxlan_on = any(p.vxlan_mode != "Never" for p in snap.pools if p.cidr.version == 4)
        ipip_on = any(p.ipip_mode != "Never" for p in snap.pools if p.cidr.version == 4)
        vxlan_port = int(self._setting(snap, "vxlanPort", DEFAULT_VXLAN_PORT)) if vxlan_on else None
        enabled: dict[str, int] = {}
        if vxlan_on:
            enabled["vxlan"] = int(self._setting(snap, "vxlanMTU", 0))
        if ipip_on:
            enabled["ipip"] = int(self._setting(snap, "ipipMTU", 0))
        if vxlan_port is not None and local.vxlan_address:
            vxlan_device.ensure(
                self.ipr,
                vxlan_device.VxlanSpec(
                    vni=int(self._setting(snap, "vxlanVNI", DEFAULT_VXLAN_VNI)),
                    port=vxlan_port,
                    local_ip=str(local.address.ip),
                    parent=underlay,
                    mac=local.vxlan_mac,
                    mtu=mtu.tunnel_mtu(host_mtu, "vxlan", enabled.get("vxlan", 0)),
                    address=local.vxlan_address,
                ),
            )
        if ipip_on:
            ipip_device.ensure(
                self.ipr,
                ipip_device.IpipSpec(
                    mtu=mtu.tunnel_mtu(host_mtu, "ipip", enabled.get("ipip", 0)),
                    address=local.ipip_address,
                ),
            )
        tunl0 = next((link for link in links if link.name == calc_routes.IPIP_DEVICE), None)
        if not ipip_on and tunl0 is not None:
            ipip_device.disable(self.ipr)
        state = calc_routes.calculate(
            self.node,
            snap.nodes,
            snap.pools,
            snap.block_owners,
            snap.borrowed,
            snap.workloads,
            underlay,
            self.bird_blackholes,
            tunl0_up=ipip_on or (tunl0 is not None and tunl0.up),
        )
        self.routes.apply(state)
        self.route_count, self.endpoint_count = len(state.routes), len(snap.workloads)
        self._vxlan_port, self._pod_mtu = vxlan_port, mtu.pod_mtu(host_mtu, enabled)

    def _forget_flows(self, snap: Snapshot) -> None:
        """Conntrack entries of local workload addresses that went away, now that no policy
        lets anything to or from them (a new pod given the address starts with none)."""
        addresses = frozenset(
            net
            for endpoint in snap.policy.endpoints
            if endpoint.node == self.node
            for net in endpoint.addresses
        )
        before = addresses if self._workload_addresses is None else self._workload_addresses
        gone = [str(net.network_address) for net in before - addresses]
        if gone:
            try:
                conntrack_flows.remove(gone)
            except (OSError, NetlinkError) as exc:
                log.warning("could not remove conntrack flows of %s: %s", sorted(gone), exc)
        self._workload_addresses = addresses

    def _enable_forwarding(self, snap: Snapshot) -> None:
        """IP forwarding on, as Felix turns it on at start (ipForwarding: Enabled).

        Without it a node delivers nothing arriving from a tunnel or the underlay to its
        pods: only the pods' own veths get forwarding from the CNI. A new namespace
        inherits the host's setting, so this only shows where the host has it off, as a
        stock Debian host has.
        """
        if self._forwarding_on or self._setting(snap, "ipForwarding", "Enabled") == "Disabled":
            return
        paths = ["/proc/sys/net/ipv4/ip_forward"]
        if self._setting(snap, "ipv6Support", True) and os.path.exists("/proc/sys/net/ipv6"):
            paths.append("/proc/sys/net/ipv6/conf/all/forwarding")
        for path in paths:
            with open(path, "w", encoding="ascii") as f:
                f.write("1")
        self._forwarding_on = True

    def _write_endpoint_status(self, interfaces: set[str]) -> None:
        if not self.endpoint_status_dir:
            return
        present = self._status_written
        if present is None:  # first time: whatever an earlier run left there
            os.makedirs(self.endpoint_status_dir, exist_ok=True)
            present = set(os.listdir(self.endpoint_status_dir))
        self._status_written = None  # until the directory is as `interfaces` says again
        for name in present - interfaces:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.endpoint_status_dir, name))
        for name in interfaces - present:
            path = os.path.join(self.endpoint_status_dir, name)
            write_text(path, json.dumps({"ifaceName": name, "status": "up"}) + "\n")
        self._status_written = set(interfaces)

    def _write_mtu(self, value: int) -> None:
        if value == self._written_mtu:
            return
        write_text(self.mtu_file, f"{value}\n")
        self._written_mtu = value
