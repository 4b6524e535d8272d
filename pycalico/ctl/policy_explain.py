"""`calicoctl policy explain`: what policy does to a connection, and which rule decides it.

Computed from the datastore with the calculation Felix programs into the kernel (see
pycalico/policy/verdict.py), so it answers for the packets, not for the YAML.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pycalico.api import enforcement
from pycalico.api.codec import dump_json, dump_yaml
from pycalico.api.registry import resolve
from pycalico.ctl.errors import CtlError, UsageError
from pycalico.policy import calc, pending, verdict
from pycalico.policy import inputs as policy_inputs
from pycalico.policy.model import PROTOCOL_NUMBERS, Endpoint, HostEndpoint, Policy

USAGE = """Usage:
  calicoctl policy explain --from=<WHO> --to=<WHO> [--port=<port>]
                           [--proto=<proto>] [--output=<FORMAT>] [--config=<CONFIG>]

Options:
  -h --help              Show this screen.
     --from=<WHO>        The client: a pod (namespace/name, or name in default), a host
                         (hep:NAME for a HostEndpoint, node:NODE[/IFACE] for a node's own
                         processes) or an address.
     --to=<WHO>          The server, in the same forms.
     --port=<port>       Destination port (TCP/UDP/SCTP).
     --proto=<proto>     tcp (default), udp, sctp, icmp or a protocol number.
  -o --output=<FORMAT>   json or yaml; text when not given.
  -c --config=<CONFIG>   Path to the file containing connection configuration in
                         YAML or JSON format. [default: /etc/calico/calicoctl.cfg]

Description:
  Explains whether policy lets the connection through: the source's egress, then the
  destination's ingress, each with the policy (tier/namespace/name) and rule index, or the
  profile, or the default deny that decided it. Host endpoints take part as Felix applies
  them: failsafe ports, then untracked (doNotTrack), preDNAT and normal policy on a host's
  own traffic, applyOnForward policy on traffic a node forwards to or from its pods (at the
  host endpoint holding the node's address, or its '*' one). A pod reaching its own host
  meets defaultEndpointToHostAction (from FelixConfiguration: a node's
  FELIX_DEFAULTENDPOINTTOHOSTACTION, which calicoctl cannot see, overrides it).

  With staged policies in the datastore (StagedNetworkPolicy, StagedGlobalNetworkPolicy,
  StagedKubernetesNetworkPolicy), the same walk is made again with them enforced, each
  in its tier at its order, and printed after the real verdict as what they would decide
  (policy, rule, action) and the staged verdict. Every stagedAction but Delete takes part,
  as in Calico's Felix, whose flow logs show the same verdicts as pending policies.
"""
OUTPUT_FORMATS = ("json", "yaml")


def _parse(args: Sequence[str]) -> dict[str, str]:
    opts: dict[str, str] = {}
    items = list(args)
    while items:
        item = items.pop(0)
        if item in ("-h", "--help"):
            opts["help"] = "1"
            continue
        key, eq, value = item.partition("=")
        if key not in (
            "--from",
            "--to",
            "--port",
            "--proto",
            "-o",
            "--output",
            "-c",
            "--config",
            "--allow-version-mismatch",
        ):
            raise UsageError(f"unknown option '{item}'")
        if key == "--allow-version-mismatch":
            continue
        if not eq:
            if not items:
                raise UsageError(f"{key} needs a value")
            value = items.pop(0)
        names = {"-c": "config", "--config": "config", "-o": "output", "--output": "output"}
        opts[names.get(key, key[2:])] = value
    return opts


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass
class _Cluster:
    """What the sides of a connection are resolved against."""

    inputs: calc.Inputs
    node_addresses: dict[str, list[Address]]  # each Node's BGP addresses
    felix_configs: dict[str, dict[str, Any]]  # FelixConfiguration specs by name

    def heps_of(self, node: str) -> list[HostEndpoint]:
        return sorted(
            (h for h in self.inputs.host_endpoints if h.node == node), key=lambda h: h.key
        )

    def gateway(self, node: str) -> HostEndpoint | None:
        """The host endpoint a node's forwarded traffic meets: the one holding the node's
        own address, else its '*' one, else its only one."""
        heps = self.heps_of(node)
        named = [h for h in heps if h.interface != calc.ALL_INTERFACES]
        own = set(self.node_addresses.get(node, []))
        for hep in named:
            if own & {a.network_address for a in hep.addresses}:
                return hep
        everywhere = [h for h in heps if h.interface == calc.ALL_INTERFACES]
        if everywhere:
            return everywhere[0]
        return named[0] if len(named) == 1 else None

    def rules_of(self, node: str) -> verdict.NodeRules:
        from pycalico.felix.calc.settings import resolve as felix_settings

        settings = felix_settings(
            {},
            self.felix_configs.get("default", {}),
            self.felix_configs.get(f"node.{node}", {}),
        )
        inbound = settings.failsafe_inbound_host_ports
        outbound = settings.failsafe_outbound_host_ports

        def failsafe(direction: str, packet: verdict.Packet) -> str | None:
            entries, peer = (
                (inbound, packet.src) if direction == "ingress" else (outbound, packet.dst)
            )
            for entry in entries:
                if (
                    packet.protocol == PROTOCOL_NUMBERS[entry.protocol]
                    and packet.dst_port == entry.port
                    and (not entry.net or peer in ipaddress.ip_network(entry.net))
                ):
                    where = "inbound" if direction == "ingress" else "outbound"
                    net = f"{entry.net}:" if entry.net else ""
                    return f"{where} {entry.protocol}:{net}{entry.port}"
            return None

        return verdict.NodeRules(settings.default_endpoint_to_host_action, failsafe)

    def resolve(self, text: str) -> tuple[verdict.Side, list[Address]]:
        """A side of the connection and its candidate addresses (the first of the other
        side's IP version is used)."""
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            pass
        else:
            return self._owner(address), [address]
        kind, colon, rest = text.partition(":")
        if colon and kind == "hep":
            hep = next((h for h in self.inputs.host_endpoints if h.key == rest), None)
            if hep is None:
                raise CtlError(f"no host endpoint {rest}")
            addresses = [n.network_address for n in hep.addresses]
            if not addresses:
                raise CtlError(f"host endpoint {rest} has no expectedIPs")
            return verdict.Host(hep.node, hep, f"hep {hep.key}"), addresses
        if colon and kind == "node":
            return self._node(rest)
        return self._pod(text)

    def _node(self, text: str) -> tuple[verdict.Side, list[Address]]:
        node, slash, interface = text.partition("/")
        heps = self.heps_of(node)
        if node not in self.node_addresses and not heps:
            raise CtlError(f"no node {node}")
        if slash:
            governing = calc.resolve_host_endpoints(heps, node, None)
            hep = governing.get(interface) or governing.get(calc.ALL_INTERFACES)
            shown = f"node {node}/{interface}"
        else:
            hep, shown = self.gateway(node), f"node {node}"
        addresses = list(self.node_addresses.get(node, []))
        if hep is not None:
            addresses += [n.network_address for n in hep.addresses]
        if not addresses:
            raise CtlError(f"node {node} has no address")
        return _host(node, hep, shown), addresses

    def _pod(self, text: str) -> tuple[verdict.Side, list[Address]]:
        namespace, _, pod = text.rpartition("/")
        namespace = namespace or "default"
        for ep in self.inputs.endpoints:
            if ep.namespace == namespace and pod in (ep.pod, ep.key.partition("/")[2]):
                if not ep.addresses:
                    raise CtlError(f"pod {namespace}/{pod} has no address")
                return ep, [n.network_address for n in ep.addresses]
        raise CtlError(f"no pod {namespace}/{pod} (and not an IP address, hep:NAME or node:NODE)")

    def _owner(self, address: Address) -> verdict.Side:
        """A workload's, a host endpoint's or a node's address; None for anyone else's."""
        for ep in self.inputs.endpoints:
            if any(address in n for n in ep.addresses):
                return ep
        for hep in sorted(self.inputs.host_endpoints, key=lambda h: h.key):
            if any(address in n for n in hep.addresses):
                return verdict.Host(hep.node, hep, f"hep {hep.key}")
        for node, addresses in sorted(self.node_addresses.items()):
            if address in addresses:
                return _host(node, self.gateway(node), f"node {node}")
        return None


def _host(node: str, hep: HostEndpoint | None, shown: str) -> verdict.Host:
    """A node's processes, named with the host endpoint their traffic goes through."""
    return verdict.Host(node, hep, f"{shown} (hep {hep.key})" if hep is not None else shown)


def _pick(src: list[Address], dst: list[Address]) -> tuple[Address, Address]:
    """One address each, of one IP version (IPv4 first)."""
    for version in (4, 6):
        a = next((x for x in src if x.version == version), None)
        b = next((x for x in dst if x.version == version), None)
        if a is not None and b is not None:
            return a, b
    raise CtlError("--from and --to are of different IP versions")


def _node_addresses(nodes: Sequence[dict[str, Any]]) -> dict[str, list[Address]]:
    found: dict[str, list[Address]] = {}
    for node in nodes:
        bgp = node.get("spec", {}).get("bgp") or {}
        found[node["metadata"]["name"]] = [
            ipaddress.ip_interface(bgp[k]).ip for k in ("ipv4Address", "ipv6Address") if bgp.get(k)
        ]
    return found


def run(args: Sequence[str], allow_version_mismatch: bool) -> int:
    from pycalico.ctl.session import connect

    if not args or args[0] != "explain":
        raise UsageError("the only policy subcommand is 'explain'")
    opts = _parse(args[1:])
    if "help" in opts:
        sys.stdout.write(USAGE)
        return 0
    if "from" not in opts or "to" not in opts:
        raise UsageError("policy explain needs --from and --to")
    proto_text = opts.get("proto", "tcp").lower()
    if proto_text.isdigit() and 1 <= int(proto_text) <= 255:
        protocol = int(proto_text)
    elif proto_text in PROTOCOL_NUMBERS:
        protocol = PROTOCOL_NUMBERS[proto_text]
    else:
        raise UsageError(f"unknown protocol '{opts['proto']}'")
    port = None
    if "port" in opts:
        if not opts["port"].isdigit() or not 1 <= int(opts["port"]) <= 65535:
            raise UsageError(f"invalid port '{opts['port']}': must be 1-65535")
        port = int(opts["port"])
    output = opts.get("output")
    if output is not None and output not in OUTPUT_FORMATS:
        raise UsageError(f"unknown output format '{output}': use json or yaml")
    client = connect(opts.get("config"), allow_version_mismatch)
    kinds = (*policy_inputs.KINDS, *policy_inputs.STAGED_KINDS)
    listed = {kind: client.list(resolve(kind))[0] for kind in kinds}
    inputs = policy_inputs.Reader().read(listed, client.list(resolve("WorkloadEndpoint"))[0])
    configs = {
        c["metadata"]["name"]: c["spec"] for c in client.list(resolve("FelixConfiguration"))[0]
    }
    cluster = _Cluster(inputs, _node_addresses(client.list(resolve("Node"))[0]), configs)
    src, src_addresses = cluster.resolve(opts["from"])
    dst, dst_addresses = cluster.resolve(opts["to"])
    src_ip, dst_ip = _pick(src_addresses, dst_addresses)
    packet = verdict.Packet(
        src_ip, dst_ip, protocol, port, icmp_type=8 if protocol in (1, 58) else None
    )
    steps = verdict.explain(inputs, src, dst, packet, cluster.rules_of, cluster.gateway)
    staged = None
    if inputs.staged_policies:
        staged = verdict.explain(
            inputs.staged_as_enforced(), src, dst, packet, cluster.rules_of, cluster.gateway
        )
    # Pods by the name users gave them (the endpoint's own name is Calico's WEP name).
    shown = {
        ep.key: f"{ep.namespace}/{ep.pod}"
        for ep in (src, dst)
        if isinstance(ep, Endpoint) and ep.pod
    }
    report = _Report(
        shown,
        _unenforced_by_step_name(listed),
        {p.id: p for p in [*inputs.policies, *inputs.staged_policies]},
    )
    if output is None:
        sys.stdout.write(report.text(steps, staged))
    else:
        doc = {
            "from": opts["from"],
            "to": opts["to"],
            "protocol": proto_text,
            "port": port,
            **report.result(steps),
            "staged": None if staged is None else report.result(staged),
        }
        sys.stdout.write(dump_json(doc) + "\n" if output == "json" else dump_yaml(doc))
    return 0


@dataclass
class _Report:
    """How steps are shown: pods by their names, policies by kind and name, with what of
    them pycalico does not enforce."""

    shown: dict[str, str]  # endpoint key -> namespace/pod
    unenforced: dict[str, list[str]]  # by the name a step gives the policy or profile
    policies: dict[str, Policy]  # by id, staged ones too

    def who(self, step: verdict.Step) -> str:
        name = self.shown.get(step.endpoint, step.endpoint)
        return f"{name} [{step.stage}]" if step.stage else name

    def by(self, step: verdict.Step) -> str:
        policy = self.policies.get(step.policy)
        if policy is not None and pending.is_staged(policy):
            return f"{policy.kind} {step.policy.partition(':')[2]}"
        return step.by

    def lines(self, steps: list[verdict.Step]) -> list[str]:
        width = max([len(self.who(s)) for s in steps] + [8])
        found = []
        for step in steps:
            rule = f" rule {step.rule}" if step.rule is not None else ""
            fields = self.unenforced.get(step.by)
            caveat = f" (not enforced: {', '.join(fields)})" if fields else ""
            found.append(
                f"{step.direction:<8} {self.who(step):<{width}} "
                f"{'ALLOW' if step.allowed else 'DENY':<5} by {self.by(step)}{rule}{caveat}"
            )
        return found

    def text(self, steps: list[verdict.Step], staged: list[verdict.Step] | None) -> str:
        lines = [*self.lines(steps), f"verdict: {_verdict(steps).upper()}"]
        if staged is not None:
            lines += [
                "with staged policies enforced:",
                *self.lines(staged),
                f"staged verdict: {_verdict(staged).upper()}",
            ]
        return "".join(f"{line}\n" for line in lines)

    def result(self, steps: list[verdict.Step]) -> dict[str, Any]:
        return {"verdict": _verdict(steps), "steps": [self.step(s) for s in steps]}

    def step(self, step: verdict.Step) -> dict[str, Any]:
        policy = self.policies.get(step.policy)
        return {
            "direction": step.direction,
            "endpoint": self.shown.get(step.endpoint, step.endpoint),
            "stage": step.stage,
            "action": "Allow" if step.allowed else "Deny",
            "by": self.by(step),
            "policy": None if policy is None else _policy_json(policy),
            "rule": step.rule,
            "notEnforced": self.unenforced.get(step.by, []),
        }


def _verdict(steps: list[verdict.Step]) -> str:
    return "Allow" if all(s.allowed for s in steps) else "Deny"


def _policy_json(policy: Policy) -> dict[str, Any]:
    """A policy as calicoctl names it: kind, namespace and name to `calicoctl get` it by."""
    if pending.is_staged(policy):
        kind = policy.kind
    else:
        kind = "NetworkPolicy" if policy.namespace is not None else "GlobalNetworkPolicy"
    return {
        "kind": kind,
        "tier": policy.tier,
        "namespace": policy.namespace or "",
        "name": policy.name,
    }


def _unenforced_by_step_name(listed: dict[str, list[dict[str, Any]]]) -> dict[str, list[str]]:
    """What of each policy and profile pycalico does not enforce, by the name a step gives
    it ("policy <tier>/<ns>/<name>", "profile <name>")."""
    found: dict[str, list[str]] = {}
    for kind in ("GlobalNetworkPolicy", "NetworkPolicy", "Profile"):
        for resource in listed[kind]:
            fields = enforcement.unenforced(resource)
            if not fields:
                continue
            meta = resource["metadata"]
            if kind == "Profile":
                found[f"profile {meta['name']}"] = fields
            else:
                scope = f"{meta['namespace']}/" if kind == "NetworkPolicy" else ""
                tier = resource["spec"].get("tier", "default")
                found[f"policy {tier}/{scope}{meta['name']}"] = fields
    return found
