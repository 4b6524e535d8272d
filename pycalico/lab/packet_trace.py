"""`calico-lab trace`: one real packet from a pod, followed hop by hop through the kernel.

Before the packet leaves, every namespace it might cross (the source pod, every node, the
router, the external host, the destination pod) gets a temporary trace table
(trace_tables) and an `nft monitor trace` listening to it, the underlay's bridges and the
pod's eth0 are captured (wire_capture), and the pod's neighbour entry for its gateway is
dropped so that the ARP the kernel sends is seen too. Then the packet goes (trace_send),
the tables come out again, and the path is read back from the kernel, starting at the pod:
in each namespace the route the kernel chose for this packet from where it came in
(route_lookup), what Felix's rules did (trace_verdicts), NAT (the packet before and after
the NAT hook), and where it went next: through a veth to a pod or node, through the
VXLAN device to the VTEP its neighbour and FDB entries name, or over the underlay to the
owner of the next hop, as the capture shows. Where `calicoctl policy explain` disagrees with
what the trace saw, the trace says so: it is what the kernel did.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import random
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from pycalico.lab import route_lookup, trace_events, trace_tables, trace_verdicts
from pycalico.lab.cluster import EXTERNAL_IP, EXTERNAL_ROUTER_IP
from pycalico.lab.namespaces import ns_name
from pycalico.lab.pods import host_veth, pod_key
from pycalico.lab.state import LabError, LabState, Pod
from pycalico.lab.trace_events import Hook, Packet
from pycalico.lab.trace_report import Step, Trace
from pycalico.lab.underlay_plan import SUBNETS, bridge_port
from pycalico.lab.wire_capture import ETH_P_ARP, Capture, carried

SETTLE = 0.3  # for the last trace events to reach the monitors after the answer
MAX_HOPS = 10
GATEWAY = "169.254.1.1"  # every Calico pod's default gateway, answered by proxy ARP
TUNNELS = ("vxlan.calico", "tunl0")


@dataclass
class Lab:
    """Who owns what in the lab: namespaces by address, and names for namespaces."""

    state: LabState
    owners: dict[str, str] = field(default_factory=dict)  # address -> netns
    labels: dict[str, str] = field(default_factory=dict)  # netns -> what a person calls it
    pods_by_ns: dict[str, Pod] = field(default_factory=dict)

    @classmethod
    def of(cls, state: LabState) -> Lab:
        lab = cls(state)
        for node, cidr in state.node_ips.items():
            ns = ns_name(state.name, node)
            lab.owners[cidr.split("/")[0]] = ns
            lab.labels[ns] = node
        router = ns_name(state.name, "router")
        for subnet in SUBNETS:
            lab.owners[str(ipaddress.ip_network(subnet).network_address + 1)] = router
        lab.owners[EXTERNAL_ROUTER_IP] = router
        lab.labels[router] = "tor" if state.topology == "tor" else "router"
        ext = ns_name(state.name, "ext")
        lab.owners[EXTERNAL_IP] = ext
        lab.labels[ext] = "external"
        for key, pod in state.pods.items():
            lab.pods_by_ns[pod.netns] = pod
            lab.labels[pod.netns] = key
            if pod.ip:
                lab.owners[pod.ip] = pod.netns
        return lab

    def label(self, netns: str) -> str:
        return self.labels.get(netns, netns)


def resolve(state: LabState, source: str, destination: str) -> tuple[Pod, str, Pod | None]:
    """(source pod, destination address, destination pod if it is one)."""
    src = state.pods.get(pod_key(source))
    if src is None:
        raise LabError(f"no pod {pod_key(source)} in lab {state.name} (--from takes NS/POD)")
    if not src.ip:
        raise LabError(f"pod {src.name} has no IPv4 address")
    try:
        address = str(ipaddress.IPv4Address(destination))
    except ValueError:
        dst = state.pods.get(pod_key(destination))
        if dst is None:
            raise LabError(
                f"--to {destination}: no pod {pod_key(destination)} and not an IPv4 address"
            ) from None
        return src, dst.ip, dst
    return src, address, next((p for p in state.pods.values() if p.ip == address), None)


def trace(state: LabState, source: str, destination: str, protocol: str, port: int | None) -> Trace:
    from pycalico.lab import trace_policy
    from pycalico.lab.trace_send import send

    src, dst_ip, dst_pod = resolve(state, source, destination)
    if protocol != "icmp" and not port:
        raise LabError(f"--proto {protocol} needs --port")
    packet = Packet(
        src.ip, dst_ip, protocol, random.randint(40000, 59999), port if protocol != "icmp" else 0
    )
    lab = Lab.of(state)
    namespaces = list(
        dict.fromkeys(
            [
                src.netns,
                *(ns_name(state.name, n) for n in state.nodes),
                ns_name(state.name, "router"),
                ns_name(state.name, "ext"),
                *([dst_pod.netns] if dst_pod else []),
            ]
        )
    )
    table = trace_tables.table_name()
    installed: list[str] = []
    monitors: list[trace_tables.Monitor] = []
    wire = Capture(ns_name(state.name, "net"))
    arp = Capture(src.netns, "eth0", ETH_P_ARP)
    try:
        for ns in namespaces:
            installed.append(ns)
            trace_tables.install(ns, table, trace_tables.match(packet))
        monitors = [trace_tables.Monitor(ns) for ns in namespaces]
        for monitor in monitors:
            monitor.start()
        trace_tables.wait_listening(monitors)
        wire.start()
        arp.start()
        # Forget the gateway's MAC, so the kernel asks for it and the answer is seen.
        subprocess.run(
            [
                "nsenter",
                f"--net=/run/netns/{src.netns}",
                "ip",
                "neigh",
                "del",
                GATEWAY,
                "dev",
                "eth0",
            ],
            capture_output=True,
            check=False,
        )
        reply = send(src.netns, packet)
        time.sleep(SETTLE)
    finally:
        for monitor in monitors:
            monitor.stop()
        wire.stop()
        arp.stop()
        for ns in installed:
            trace_tables.remove(ns, table)
    inputs = trace_policy.load_inputs(state)
    events = {
        m.netns: [e for line in m.lines if (e := trace_events.parse(line)) is not None]
        for m in monitors
    }
    walk = Walk(lab, packet, table, events, wire, arp, inputs)
    walk.run(src.netns)
    walk.compare_with_explain()
    return walk.result(src, dst_pod, reply)


@dataclass
class Walk:
    """The path read back from the kernel, namespace by namespace."""

    lab: Lab
    packet: Packet
    table: str
    events: dict[str, list[trace_events.Event]]
    wire: Capture
    arp: Capture
    inputs: Any
    steps: list[Step] = field(default_factory=list)
    decisions: list[trace_verdicts.Decision] = field(default_factory=list)
    ended: str = ""  # delivered, dropped, lost
    ended_how: str = ""
    notes: list[str] = field(default_factory=list)

    def step(self, netns: str, kind: str, text: str, **data: Any) -> None:
        self.steps.append(Step(self.lab.label(netns), kind, text, data))

    def run(self, start: str) -> None:
        netns, src, sport = start, self.packet.src, self.packet.sport
        for _ in range(MAX_HOPS):
            moved = self._hop(netns, src, sport)
            if moved is None:
                return
            netns, src, sport = moved
        self.ended, self.ended_how = "lost", f"more than {MAX_HOPS} hops: a routing loop?"

    def _run_in(self, netns: str, src: str, sport: int) -> list[Hook]:
        def seen(headers: dict[str, str]) -> bool:
            return self.packet.seen_in(headers, src, sport)

        events = self.events.get(netns, [])
        return trace_events.hooks(trace_events.first_packet(events, self.table, seen))

    def _hop(self, netns: str, src: str, sport: int) -> tuple[str, str, int] | None:
        """Read one namespace; where the packet went next (its source there), or None."""
        from pycalico.lab.trace_policy import RuleIndex

        hooks = self._run_in(netns, src, sport)
        where = self.lab.label(netns)
        if not hooks:
            self.ended = "dropped"
            self.ended_how = f"it never reached {where}: no trace of it there"
            self.step(netns, "drop", "the packet did not arrive here")
            return None
        first = hooks[0]
        iif = first.packet.get("iif", "")
        if iif:
            how = " (decapsulated)" if iif in TUNNELS else ""
            self.step(netns, "in", f"arrived on {iif}{how}", iif=iif)
        route = route_lookup.lookup(netns, self.packet, src, sport, iif)
        local = any(h.table == self.table and h.chain == "in" for h in hooks)
        self.step(netns, "route", self._route_text(route, iif), **_route_data(route))
        if first.chain == "out" and route.gateway == GATEWAY:
            self._arp(netns, route.dev)
        if netns in (ns_name(self.lab.state.name, n) for n in self.lab.state.nodes):
            index = RuleIndex(netns, self.inputs)
            for decision in trace_verdicts.decisions(hooks, index):
                self.decisions.append(decision)
                self._policy_step(netns, decision)
                if not decision.allowed:
                    self.ended = "dropped"
                    self.ended_how = f"at {where}, by {_by(decision)}"
                    return None
        dropped = next((h for h in hooks if h.final == "drop"), None)
        if dropped is not None:
            rule = next((e for e in reversed(dropped.events) if e.verdict == "drop"), None)
            what = f"{rule.table} {rule.chain}: {rule.text}" if rule else f"{dropped.chain} policy"
            self.step(netns, "drop", f"dropped by {what}")
            self.ended, self.ended_how = "dropped", f"at {where}, by {what}"
            return None
        if local:
            self.step(netns, "deliver", "delivered to this namespace (input hook)")
            self.ended, self.ended_how = "delivered", f"to {where}"
            return None
        post = next((h for h in hooks if h.table == self.table and h.chain == "post"), None)
        if post is None:
            self.step(netns, "drop", f"not sent on: {route.text()}")
            self.ended, self.ended_how = "dropped", f"at {where}: the kernel did not forward it"
            return None
        out_src, out_sport = self._nat(netns, first, post, hooks)
        oif = post.packet.get("oif", route.dev)
        nxt = self._next(netns, oif, route, out_src, out_sport)
        if nxt is None:
            self.ended, self.ended_how = "lost", f"left {where} on {oif} for outside the lab"
            return None
        return nxt, out_src, out_sport

    def _route_text(self, route: route_lookup.RouteAnswer, iif: str) -> str:
        how = f"in from {iif}" if iif else "sent from here"
        return f"to {self.packet.dst} ({how}): {route.text()}"

    def _arp(self, netns: str, dev: str) -> None:
        """Who answered the pod's ARP for its gateway (Calico's proxy ARP on the veth)."""
        replies = [
            f["arp"]
            for _, _, f in self.arp.frames
            if f.get("arp", {}).get("op") == "reply" and f["arp"]["sender_ip"] == GATEWAY
        ]
        pod = self.lab.pods_by_ns.get(netns)
        node_ns = ns_name(self.lab.state.name, pod.node) if pod else ""
        veth = _veth_of(node_ns, netns) if pod else ""
        proxy = _sysctl(node_ns, f"net.ipv4.conf.{veth}.proxy_arp") if veth else ""
        if replies:
            mac = replies[0]["sender_mac"]
            text = f"who-has {GATEWAY} on {dev}: is-at {mac}, answered by proxy ARP on {veth}"
            text += f" ({pod.node if pod else '?'}, proxy_arp={proxy or '?'})"
        else:
            text = f"no ARP seen for {GATEWAY}: the pod still knew its MAC"
        self.step(netns, "arp", text, replies=replies, veth=veth, proxy_arp=proxy)

    def _policy_step(self, netns: str, decision: trace_verdicts.Decision) -> None:
        pod = _pod_on(self.lab, netns, decision.interface)
        whose = f"{decision.direction} of {pod}" if pod else decision.direction
        verdict = "allowed" if decision.allowed else "DENIED"
        text = f"{whose}: {verdict} by {_by(decision)}"
        if decision.chain:
            text += f" [{decision.chain}"
            text += f" handle {decision.handle}]" if decision.handle is not None else "]"
        for note in decision.notes:
            text += f"; {note}"
        self.step(
            netns,
            "policy",
            text,
            direction=decision.direction,
            interface=decision.interface,
            allowed=decision.allowed,
            by=decision.by,
            rule=decision.rule,
            chain=decision.chain,
            handle=decision.handle,
            nft_rule=decision.rule_text,
        )

    def _nat(self, netns: str, first: Hook, post: Hook, hooks: list[Hook]) -> tuple[str, int]:
        before = (
            first.packet.get("saddr", ""),
            first.packet.get("sport") or first.packet.get("icmp_id"),
        )
        after = (
            post.packet.get("saddr", ""),
            post.packet.get("sport") or post.packet.get("icmp_id"),
        )
        if after != before:
            rule = next(
                (
                    e
                    for h in hooks
                    for e in h.events
                    if h.table == "calico" and e.kind == "rule" and "masquerade" in e.text
                ),
                None,
            )
            by = f"{rule.chain}: {rule.text}" if rule else "a NAT rule"
            if self.packet.protocol == "icmp":
                change = f"{before[0]} (echo id {before[1]}) → {after[0]} (echo id {after[1]})"
            else:
                change = f"{before[0]}:{before[1]} → {after[0]}:{after[1]}"
            self.step(
                netns,
                "nat",
                f"source {change} (masquerade, by {by})",
                before=list(before),
                after=list(after),
            )
        return after[0], int(after[1] or 0)

    def _next(
        self, netns: str, oif: str, route: route_lookup.RouteAnswer, src: str, sport: int
    ) -> str | None:
        """The namespace at the other end of `oif` for this packet, with the steps that
        show how it gets there (the VTEP, the wire)."""
        pod = self.lab.pods_by_ns.get(netns)
        if pod is not None:
            return ns_name(self.lab.state.name, pod.node)
        if oif.startswith("cali"):
            target = self.lab.owners.get(self.packet.dst)
            if target is None:
                self.step(netns, "drop", f"sent to {oif}, but no pod owns {self.packet.dst}")
            return target
        gateway = route.gateway or self.packet.dst
        if oif == "vxlan.calico":
            vtep_ip = _vtep(netns, gateway)
            node_ns = self.lab.owners.get(vtep_ip.get("dst", ""))
            self.step(
                netns,
                "vtep",
                f"{gateway} is {vtep_ip.get('mac', '?')} (neighbour entry), which the FDB sends "
                f"to {vtep_ip.get('dst', '?')} ({self.lab.label(node_ns) if node_ns else '?'})",
                **vtep_ip,
            )
            self._wire(netns, oif, src, sport)
            return node_ns
        self._wire(netns, oif, src, sport)
        return self.lab.owners.get(gateway)

    def _wire(self, netns: str, oif: str, src: str, sport: int) -> None:
        """The packet on the underlay, as the bridge port it was sent into saw it."""
        port = _port_of(self.lab, netns, oif)
        if not port:
            return
        for interface, outgoing, frame in self.wire.frames:
            ip = frame.get("ip")
            if ip is None or outgoing or interface != port:
                continue
            inner = carried(ip)
            headers = {
                "saddr": inner.get("src", ""),
                "daddr": inner.get("dst", ""),
                "sport": str(inner.get("sport", "")),
                "dport": str(inner.get("dport", "")),
                "icmp_id": str(inner.get("icmp_id", "")),
            }
            if self.packet.protocol == "icmp":
                headers.pop("sport")
            if inner.get("protocol") != self.packet.protocol or not self.packet.seen_in(
                headers, src, sport
            ):
                continue
            self.step(netns, "encap", _wire_text(ip, interface), interface=interface, frame=frame)
            return
        self.step(netns, "encap", f"not seen on the underlay (bridge port {port})")

    def compare_with_explain(self) -> None:
        from pycalico.lab.trace_policy import disagreements, explain

        steps = explain(
            self.inputs, self.packet.src, self.packet.dst, self.packet.protocol, self.packet.dport
        )
        self.notes += disagreements(self.decisions, steps)

    def result(self, src: Pod, dst: Pod | None, reply: Any) -> Trace:
        destination = f"{dst.name} ({dst.ip})" if dst else self.packet.dst
        label = self.lab.label(self.lab.owners.get(self.packet.dst, "")) if not dst else ""
        if label and label != self.packet.dst:
            destination = f"{label} ({self.packet.dst})"
        sent = self.packet.tuple_text()
        if self.packet.protocol == "tcp":
            sent += " SYN"
        if self.ended == "delivered":
            outcome = "delivered" if reply.outcome == "answered" else f"delivered, {reply.outcome}"
            summary = f"{self.ended_how}; {reply.detail}"
        else:
            outcome = self.ended or reply.outcome
            summary = f"{self.ended_how}; the sender saw: {reply.outcome} ({reply.detail})"
        p = self.packet
        flow = {"src": p.src, "dst": p.dst, "protocol": p.protocol, "sport": p.sport}
        flow.update({"dport": p.dport} if p.protocol != "icmp" else {"icmp_id": p.sport})
        return Trace(
            f"{src.name} ({src.ip})",
            destination,
            sent,
            self.steps,
            outcome,
            summary,
            self.notes,
            flow,
        )


def _by(decision: trace_verdicts.Decision) -> str:
    return decision.by + (f" rule {decision.rule}" if decision.rule is not None else "")


def _route_data(route: route_lookup.RouteAnswer) -> dict[str, Any]:
    return {
        "dst": route.dst,
        "type": route.type,
        "gateway": route.gateway,
        "dev": route.dev,
        "protocol": route.protocol,
        "scope": route.scope,
        "table": route.table,
        "flags": list(route.flags),
        "error": route.error,
    }


def _wire_text(ip: dict[str, Any], interface: str) -> str:
    inner = ip.get("inner")
    outer = f"{ip['src']}" + (f":{ip['sport']}" if "sport" in ip else "")
    outer += f" → {ip['dst']}" + (f":{ip['dport']}" if "dport" in ip else "")
    if "vni" in ip and inner:
        return (
            f"VXLAN on the wire ({interface}): {outer} UDP, VNI {ip['vni']}, inner {_flow(inner)}"
        )
    if ip.get("protocol") == "ipip" and inner:
        outer = f"{ip['src']} → {ip['dst']} proto 4"
        return f"IPIP on the wire ({interface}): {outer}, inner {_flow(inner)}"
    return f"no encapsulation on the wire ({interface}): {_flow(ip)}"


def _flow(ip: dict[str, Any]) -> str:
    if ip.get("protocol") == "icmp":
        return f"{ip['src']} → {ip['dst']} ICMP type {ip.get('icmp_type')} id {ip.get('icmp_id')}"
    return f"{ip['src']}:{ip.get('sport')} → {ip['dst']}:{ip.get('dport')} {ip['protocol'].upper()}"


def _port_of(lab: Lab, netns: str, oif: str) -> str:
    """The bridge port (in `<lab>-net`) that a node's eth0 or the router's ethN sends into;
    "" for links outside the bridges (the router's ext0 to the external host)."""
    state = lab.state
    for i, node in enumerate(state.nodes):
        if netns == ns_name(state.name, node):
            return bridge_port(i)
    if netns == ns_name(state.name, "router") and oif.startswith("eth"):
        return f"r{oif[3:]}"
    return ""


def _vtep(netns: str, gateway: str) -> dict[str, str]:
    """The VTEP behind a VXLAN next hop: its MAC (neighbour entry), its node (FDB entry)."""
    neigh = _json(netns, "ip", "-j", "neigh", "show", gateway, "dev", "vxlan.calico")
    mac = str(neigh[0].get("lladdr", "")) if neigh else ""
    fdb = _json(netns, "bridge", "-j", "fdb", "show", "dev", "vxlan.calico")
    dst = next((str(e.get("dst", "")) for e in fdb if e.get("mac") == mac), "")
    return {"gateway": gateway, "mac": mac, "dst": dst}


def _json(netns: str, *cmd: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["nsenter", f"--net=/run/netns/{netns}", *cmd], capture_output=True, text=True, check=False
    )
    with contextlib.suppress(ValueError):
        return list(json.loads(out.stdout or "[]"))
    return []


def _sysctl(netns: str, key: str) -> str:
    out = subprocess.run(
        ["nsenter", f"--net=/run/netns/{netns}", "sysctl", "-n", key],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip()


def _veth_of(node_ns: str, pod_ns: str) -> str:
    """The node's end of the pod's veth: the link whose peer is the pod's eth0."""
    pod_eth0 = _json(pod_ns, "ip", "-j", "link", "show", "dev", "eth0")
    peer_index = pod_eth0[0].get("link_index") if pod_eth0 else None
    for link in _json(node_ns, "ip", "-j", "link", "show"):
        if link.get("ifindex") == peer_index and str(link.get("ifname", "")).startswith("cali"):
            return str(link["ifname"])
    return ""


def _pod_on(lab: Lab, netns: str, interface: str) -> str:
    """The pod behind a node's cali interface."""
    if not interface:
        return ""
    node = lab.label(netns)
    for key, pod in lab.state.pods.items():
        if pod.node == node and host_veth(pod) == interface:
            return key
    return ""
