"""`calicoctl policy explain`: what policy does to a connection, and which rule decides it.

Computed from the datastore with the calculation Felix programs into the kernel (see
pycalico/policy/verdict.py), so it answers for the packets, not for the YAML.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Sequence
from typing import Any

from pycalico.api import enforcement
from pycalico.api.registry import resolve
from pycalico.ctl.errors import CtlError, UsageError
from pycalico.policy import inputs as policy_inputs
from pycalico.policy import verdict
from pycalico.policy.model import PROTOCOL_NUMBERS, Endpoint

USAGE = """Usage:
  calicoctl policy explain --from=<NS/POD|IP> --to=<NS/POD|IP> [--port=<port>]
                           [--proto=<proto>] [--config=<CONFIG>]

Options:
  -h --help              Show this screen.
     --from=<NS/POD|IP>  The client: a pod (namespace/name, or name in default) or an address.
     --to=<NS/POD|IP>    The server: a pod or an address.
     --port=<port>       Destination port (TCP/UDP/SCTP).
     --proto=<proto>     tcp (default), udp, sctp, icmp or a protocol number.
  -c --config=<CONFIG>   Path to the file containing connection configuration in
                         YAML or JSON format. [default: /etc/calico/calicoctl.cfg]

Description:
  Explains whether policy lets the connection through: the source pod's egress, then the
  destination pod's ingress, each with the policy (tier/namespace/name) and rule index,
  or the profile, or the default deny that decided it.
"""


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
        opts["config" if key in ("-c", "--config") else key[2:]] = value
    return opts


def _resolve(
    text: str, endpoints: Sequence[Endpoint]
) -> tuple[Endpoint | None, ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        namespace, _, pod = text.rpartition("/")
        namespace = namespace or "default"
        for ep in endpoints:
            if ep.namespace == namespace and pod in (ep.pod, ep.key.partition("/")[2]):
                if not ep.addresses:
                    raise CtlError(f"pod {namespace}/{pod} has no address") from None
                return ep, ep.addresses[0].network_address
        raise CtlError(f"no pod {namespace}/{pod} (and not an IP address)") from None
    owner = next((ep for ep in endpoints if any(address in n for n in ep.addresses)), None)
    return owner, address


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
    client = connect(opts.get("config"), allow_version_mismatch)
    listed = {kind: client.list(resolve(kind))[0] for kind in policy_inputs.KINDS}
    inputs = policy_inputs.Reader().read(listed, client.list(resolve("WorkloadEndpoint"))[0])
    src, src_ip = _resolve(opts["from"], inputs.endpoints)
    dst, dst_ip = _resolve(opts["to"], inputs.endpoints)
    if src_ip.version != dst_ip.version:
        raise CtlError("--from and --to are of different IP versions")
    packet = verdict.Packet(
        src_ip, dst_ip, protocol, port, icmp_type=8 if protocol in (1, 58) else None
    )
    steps = verdict.explain(inputs, src, dst, packet)
    # Pods by the name users gave them (the endpoint's own name is Calico's WEP name).
    shown = {ep.key: f"{ep.namespace}/{ep.pod}" for ep in (src, dst) if ep is not None and ep.pod}
    width = max([len(shown.get(s.endpoint, s.endpoint)) for s in steps] + [8])
    unenforced = _unenforced_by_step_name(listed)
    for step in steps:
        rule = f" rule {step.rule}" if step.rule is not None else ""
        fields = unenforced.get(step.by)
        caveat = f" (not enforced: {', '.join(fields)})" if fields else ""
        print(
            f"{step.direction:<8} {shown.get(step.endpoint, step.endpoint):<{width}} "
            f"{'ALLOW' if step.allowed else 'DENY':<5} by {step.by}{rule}{caveat}"
        )
    allowed = all(s.allowed for s in steps)
    print(f"verdict: {'ALLOW' if allowed else 'DENY'}")
    return 0


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
