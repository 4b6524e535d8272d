"""`calicoctl ipam show | release | check | configure`."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from typing import Any

from pycalico.ctl.arguments import ArgParser
from pycalico.ctl.errors import CtlError, UsageError
from pycalico.ctl.session import connect

SUBCOMMANDS = ("show", "release", "check", "configure")


def run(args: Sequence[str], allow_version_mismatch: bool) -> int:
    parser = ArgParser(prog="calicoctl ipam", add_help=False)
    parser.add_argument("subcommand", choices=SUBCOMMANDS)
    parser.add_argument("-c", "--config")
    parser.add_argument("--ip")
    parser.add_argument("--show-blocks", action="store_true")
    parser.add_argument("--show-borrowed", action="store_true")
    parser.add_argument("--show-configuration", action="store_true")
    parser.add_argument("--show-all-ips", action="store_true")
    parser.add_argument("--show-problem-ips", action="store_true")
    parser.add_argument("-o", "--output")
    parser.add_argument("--strictaffinity")
    parser.add_argument("--max-blocks-per-host", type=int)
    opts = parser.parse_args(list(args))
    client = connect(opts.config, allow_version_mismatch)
    from pycalico.ipam.allocator import Allocator

    alloc = Allocator(client.backend)
    if opts.subcommand == "show":
        return _show(client, alloc, opts)
    if opts.subcommand == "release":
        return _release(alloc, opts)
    if opts.subcommand == "configure":
        return _configure(client, opts)
    return _check(client, alloc, opts)


def _parse_ip(text: str | None) -> Any:
    if not text:
        raise UsageError("--ip=<IP> is required")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise CtlError(f"invalid IP address '{text}'") from None


def _pct(part: int, total: int) -> str:
    return f"{part:.5g} ({part * 100 / total:.0f}%)" if total else f"{part:.5g} (0%)"


def _show(client: Any, alloc: Any, opts: Any) -> int:
    from pycalico.api.registry import resolve
    from pycalico.ctl import boxtable

    if opts.ip:
        return _show_ip(alloc, _parse_ip(opts.ip))
    if opts.show_configuration:
        config = client.get(resolve("IPAMConfiguration"), "default") or {"spec": {}}
        spec = config["spec"]
        rows = [
            ["StrictAffinity", _go_bool(spec.get("strictAffinity", False))],
            ["AutoAllocateBlocks", _go_bool(spec.get("autoAllocateBlocks", True))],
            ["MaxBlocksPerHost", str(spec.get("maxBlocksPerHost", 0))],
        ]
        print(boxtable.render(["Property", "Value"], rows), end="")
        return 0
    pools, _ = client.list(resolve("IPPool"))
    blocks = alloc.blocks()
    if opts.show_borrowed:
        return _show_borrowed(blocks)
    rows: list[list[str]] = []
    placed: set[str] = set()
    for pool in pools:
        net = ipaddress.ip_network(pool["spec"]["cidr"])
        mine = [b for b in blocks if b.cidr.version == net.version and b.cidr.subnet_of(net)]
        placed |= {str(b.cidr) for b in mine}
        total = net.num_addresses
        used = sum(b.in_use() for b in mine)
        rows.append(
            ["IP Pool", str(net), f"{total:.5g}", _pct(used, total), _pct(total - used, total)]
        )
        if opts.show_blocks:
            rows += [_block_row(b) for b in sorted(mine, key=lambda b: int(b.cidr.network_address))]
    if opts.show_blocks:
        rows += [_block_row(b) for b in blocks if str(b.cidr) not in placed]
    print(
        boxtable.render(["Grouping", "CIDR", "IPs total", "IPs in use", "IPs free"], rows), end=""
    )
    return 0


def _block_row(block: Any) -> list[str]:
    total = block.cidr.num_addresses
    used = block.in_use()
    return ["Block", str(block.cidr), f"{total:.5g}", _pct(used, total), _pct(total - used, total)]


def _go_bool(value: bool) -> str:
    return "true" if value else "false"


def _show_ip(alloc: Any, ip: Any) -> int:
    for block in alloc.blocks(ip.version):
        if ip in block.cidr:
            attr = block.attributes_of(block.ordinal(ip))
            if attr is None:
                break
            print(f"IP {ip} is in use")
            if attr.handle_id:
                print(f"Handle ID: {attr.handle_id}")
            if attr.secondary:
                print("Attributes:")
                for key, value in sorted(attr.secondary.items()):
                    print(f"  {key}: {value}")
            else:
                print("No attributes defined")
            return 0
    print(f"{ip} is not assigned")
    return 0


def _show_borrowed(blocks: Sequence[Any]) -> int:
    from pycalico.ctl import boxtable

    rows = []
    for block in blocks:
        for ordinal in range(len(block.allocations)):
            attr = block.attributes_of(ordinal)
            node = attr.secondary.get("node") if attr else None
            if attr is not None and node and node != block.host:
                kind = attr.secondary.get("type", "pod")
                owner = attr.secondary.get("pod") or attr.handle_id or ""
                rows.append(
                    [
                        str(block.address(ordinal)),
                        node,
                        str(block.cidr),
                        block.host or "",
                        kind,
                        owner,
                    ]
                )
    print(
        boxtable.render(
            ["IP", "Borrowing-Node", "Block", "Block Owner", "Type", "Allocated-To"], rows
        ),
        end="",
    )
    return 0


def _release(alloc: Any, opts: Any) -> int:
    ip = _parse_ip(opts.ip)
    if alloc.release_ips([ip]):
        raise CtlError(f"IP address {ip} is not assigned")
    print(f"Successfully released IP address {ip}")
    return 0


def _configure(client: Any, opts: Any) -> int:
    from pycalico.api.registry import resolve
    from pycalico.api.resource import normalize

    if opts.strictaffinity not in ("true", "false"):
        raise UsageError("--strictaffinity=<true|false> is required")
    kind = resolve("IPAMConfiguration")
    current = client.get(kind, "default")
    spec = dict(current["spec"]) if current else {}
    spec["strictAffinity"] = opts.strictaffinity == "true"
    if opts.max_blocks_per_host is not None:
        spec["maxBlocksPerHost"] = opts.max_blocks_per_host
    try:
        resource = normalize(
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": "IPAMConfiguration",
                "metadata": {"name": "default"},
                "spec": spec,
            }
        )
    except ValueError as exc:
        raise CtlError(str(exc)) from None
    client.apply(kind, resource)
    print("Successfully set StrictAffinity to:", opts.strictaffinity)
    return 0


def _in_use_addresses(client: Any) -> tuple[dict[str, str], int, int]:
    """Address -> who uses it (workloads and node tunnels), and the two counts."""
    from pycalico.api.registry import resolve

    users: dict[str, str] = {}
    tunnels = workloads = 0
    nodes, _ = client.list(resolve("Node"))
    for node in nodes:
        spec = node["spec"]
        name = node["metadata"]["name"]
        for addr in (
            spec.get("bgp", {}).get("ipv4IPIPTunnelAddr"),
            spec.get("ipv4VXLANTunnelAddr"),
            spec.get("ipv6VXLANTunnelAddr"),
            spec.get("wireguard", {}).get("interfaceIPv4Address"),
            spec.get("wireguard", {}).get("interfaceIPv6Address"),
        ):
            if addr:
                users[str(ipaddress.ip_address(addr))] = f"node {name}"
                tunnels += 1
    weps, _ = client.list(resolve("WorkloadEndpoint"))
    for wep in weps:
        for net in wep["spec"].get("ipNetworks", []):
            users[str(ipaddress.ip_interface(net).ip)] = (
                f"workload {wep['metadata'].get('namespace')}/{wep['metadata']['name']}"
            )
            workloads += 1
    return users, tunnels, workloads


def _check(client: Any, alloc: Any, opts: Any) -> int:
    from pycalico.api.registry import resolve
    from pycalico.ipam import keys

    print("Checking IPAM for inconsistencies...\n")
    print("Loading all IPAM blocks...")
    blocks = alloc.blocks()
    print(f"Found {len(blocks)} IPAM blocks.")
    allocated: dict[str, Any] = {}
    handles_in_blocks: set[str] = set()
    for block in blocks:
        print(f" IPAM block {block.cidr} affinity={block.affinity or ''}:")
        for ordinal in range(len(block.allocations)):
            attr = block.attributes_of(ordinal)
            if attr is not None:
                allocated[str(block.address(ordinal))] = attr
                if attr.handle_id:
                    handles_in_blocks.add(attr.handle_id)
    print(f"IPAM blocks record {len(allocated)} allocations.\n")
    print("Loading all IPAM pools...")
    pools, _ = client.list(resolve("IPPool"))
    active = [
        ipaddress.ip_network(p["spec"]["cidr"]) for p in pools if not p["spec"].get("disabled")
    ]
    for net in active:
        print(f"  {net}")
    print(f"Found {len(active)} active IP pools.\n")
    print("Loading all nodes.")
    users, tunnels, workloads = _in_use_addresses(client)
    print(f"Found {tunnels} node tunnel IPs.\n")
    print("Loading all workload endpoints.")
    print(f"Found {workloads} workload IPs.")
    print(f"Workloads and nodes are using {len(users)} IPs.\n")

    problems: list[dict[str, Any]] = []
    print("Scanning for IPs that are allocated but not actually in use...")
    leaked = [ip for ip in allocated if ip not in users]
    for ip in leaked:
        attrs = allocated[ip]
        problems.append(
            {"ip": ip, "problem": "leaked", "handle": attrs.handle_id, "attrs": attrs.secondary}
        )
        if opts.show_problem_ips or opts.show_all_ips:
            print(f"  {ip} leaked; attrs {json.dumps(attrs.secondary, sort_keys=True)}")
    print(f"Found {len(leaked)} IPs that are allocated in IPAM but not actually in use.")
    print("Scanning for IPs that are in use by a workload or node but not allocated in IPAM...")
    outside = [ip for ip in users if not any(ipaddress.ip_address(ip) in n for n in active)]
    missing = [ip for ip in users if ip not in allocated and ip not in outside]
    for ip in outside:
        problems.append({"ip": ip, "problem": "not in any active IP pool", "user": users[ip]})
        if opts.show_problem_ips or opts.show_all_ips:
            print(f"  {ip} in use by {users[ip]} is not in any active IP pool")
    for ip in missing:
        problems.append({"ip": ip, "problem": "no IPAM allocation", "user": users[ip]})
        if opts.show_problem_ips or opts.show_all_ips:
            print(f"  {ip} in use by {users[ip]} has no corresponding IPAM allocation")
    print(f"Found {len(outside)} in-use IPs that are not in active IP pools.")
    print(
        f"Found {len(missing)} in-use IPs that are in active IP pools but have no "
        "corresponding IPAM allocation.\n"
    )
    print("Scanning for IPAM handles with no matching IPs...")
    handle_ids = [
        kv.key[len(keys.HANDLE_PREFIX) :] for kv in client.backend.list(keys.HANDLE_PREFIX)[0]
    ]
    orphan_handles = [h for h in handle_ids if h not in handles_in_blocks]
    problems += [{"handle": h, "problem": "handle with no IPs"} for h in orphan_handles]
    print(
        f"Found {len(orphan_handles)} handles with no matching IPs (and "
        f"{len(handle_ids) - len(orphan_handles)} handles with matches)."
    )
    print("Scanning for IPs with missing handle...")
    missing_handles = sorted(handles_in_blocks - set(handle_ids))
    problems += [{"handle": h, "problem": "missing handle"} for h in missing_handles]
    print(
        f"Found {len(missing_handles)} handles mentioned in blocks with no matching handle "
        "resource."
    )
    print(f"Check complete; found {len(problems)} problems.")
    if opts.output:
        try:
            with open(opts.output, "w", encoding="utf-8") as f:
                json.dump({"problems": problems}, f, indent=2)
        except OSError as exc:
            raise CtlError(f"cannot write report {opts.output}: {exc.strerror}") from None
    return 0
