"""`calicoctl ipam show | release | check | configure`."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from pycalico.ctl import ipam_check
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
    parser.add_argument("--from-report", action="append", default=[])
    parser.add_argument("--force", action="store_true")
    opts = parser.parse_args(list(args))
    # configure writes the IPAMConfig, and calicoctl's writes may create the store.
    client = connect(opts.config, allow_version_mismatch, create=opts.subcommand == "configure")
    from pycalico.ipam.allocator import Allocator

    alloc = Allocator(client.backend)
    if opts.subcommand == "show":
        return _show(client, alloc, opts)
    if opts.subcommand == "release":
        if opts.from_report:
            return ipam_check.release_from_reports(client, alloc, opts.from_report, opts.force)
        return _release(alloc, opts)
    if opts.subcommand == "configure":
        return _configure(client, opts)
    return ipam_check.check(client, alloc, opts.show_problem_ips or opts.show_all_ips, opts.output)


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
