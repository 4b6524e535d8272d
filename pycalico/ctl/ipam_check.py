"""`calicoctl ipam check` and its report, and `ipam release --from-report`.

The report has the shape of Calico's (`version`, `clusterGUID`, `datastoreLocked`,
`clusterInformationRevision`, `clusterType`, `allocations`, `leakedHandles`), so Calico's
check-then-release flow works as documented. pycalico adds `leakedAffinities`: block
affinities of nodes that have no Node resource. Calico's kube-controllers collect those
when a node goes; nothing does here, and a failed ADD with a node name that was later
refused could leave some, so check reports them and release removes them.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pycalico.ctl.errors import CtlError
from pycalico.ctl.session import CLIENT_VERSION, cluster_information


@dataclass
class _Findings:
    """What a check saw, as the report records it."""

    allocations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    leaked_handles: list[dict[str, Any]] = field(default_factory=list)
    leaked_affinities: list[dict[str, str]] = field(default_factory=list)


def _in_use_addresses(
    client: Any, nodes: list[dict[str, Any]]
) -> tuple[dict[str, str], int, int]:
    """Address -> who uses it (workloads and node tunnels), and the two counts."""
    from pycalico.api.registry import resolve

    users: dict[str, str] = {}
    tunnels = workloads = 0
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


def _node_names(client: Any) -> set[str]:
    from pycalico.api.registry import resolve

    return {n["metadata"]["name"] for n in client.list(resolve("Node"))[0]}


def _orphan_affinities(alloc: Any, nodes: set[str]) -> list[dict[str, str]]:
    """Block affinities (keys, or a block's own record) of nodes with no Node resource."""
    found = {(host, str(cidr)) for host, cidr in alloc.affinities() if host not in nodes}
    found |= {
        (block.host, str(block.cidr))
        for block in alloc.blocks()
        if block.host is not None and block.host not in nodes
    }
    return [{"node": host, "cidr": cidr} for host, cidr in sorted(found)]


def check(client: Any, alloc: Any, show_problem_ips: bool, output: str | None) -> int:
    from pycalico.api.registry import resolve
    from pycalico.ipam import keys

    print("Checking IPAM for inconsistencies...\n")
    print("Loading all IPAM blocks...")
    blocks = alloc.blocks()
    print(f"Found {len(blocks)} IPAM blocks.")
    found = _Findings()
    handles_in_blocks: set[str] = set()
    for block in blocks:
        print(f" IPAM block {block.cidr} affinity={block.affinity or ''}:")
        for ordinal in range(len(block.allocations)):
            attr = block.attributes_of(ordinal)
            if attr is None:
                continue
            ip = str(block.address(ordinal))
            node = attr.secondary.get("node") or block.host or ""
            record = {
                "ip": ip,
                "handle": attr.handle_id or None,
                "sequenceNumber": block.sequence_number_for_allocation.get(str(ordinal)),
                "pod": attr.secondary.get("pod"),
                "namespace": attr.secondary.get("namespace"),
                "node": node or None,
                "type": attr.secondary.get("type"),
                "creationTimestamp": attr.secondary.get("timestamp"),
                "inUse": False,
                "borrowed": node != (block.host or "") or None,
                "owners": None,
                "_attrs": attr.secondary,  # for --show-problem-ips; not in the report
            }
            found.allocations.setdefault(ip, []).append(record)
            if attr.handle_id:
                handles_in_blocks.add(attr.handle_id)
    print(f"IPAM blocks record {len(found.allocations)} allocations.\n")
    print("Loading all IPAM pools...")
    pools, _ = client.list(resolve("IPPool"))
    active = [
        ipaddress.ip_network(p["spec"]["cidr"]) for p in pools if not p["spec"].get("disabled")
    ]
    for net in active:
        print(f"  {net}")
    print(f"Found {len(active)} active IP pools.\n")
    print("Loading all nodes.")
    nodes, _ = client.list(resolve("Node"))
    users, tunnels, workloads = _in_use_addresses(client, nodes)
    print(f"Found {tunnels} node tunnel IPs.\n")
    print("Loading all workload endpoints.")
    print(f"Found {workloads} workload IPs.")
    print(f"Workloads and nodes are using {len(users)} IPs.\n")
    for ip, user in users.items():
        for record in found.allocations.get(ip, []):
            record["inUse"] = True
            record["owners"] = [user]

    problems = 0
    print("Scanning for IPs that are allocated but not actually in use...")
    leaked = [ip for ip in found.allocations if ip not in users]
    for ip in leaked:
        if show_problem_ips:
            for record in found.allocations[ip]:
                print(f"  {ip} leaked; attrs {json.dumps(record['_attrs'], sort_keys=True)}")
    problems += len(leaked)
    print(f"Found {len(leaked)} IPs that are allocated in IPAM but not actually in use.")
    print("Scanning for IPs that are in use by a workload or node but not allocated in IPAM...")
    outside = [ip for ip in users if not any(ipaddress.ip_address(ip) in n for n in active)]
    missing = [ip for ip in users if ip not in found.allocations and ip not in outside]
    if show_problem_ips:
        for ip in outside:
            print(f"  {ip} in use by {users[ip]} is not in any active IP pool")
        for ip in missing:
            print(f"  {ip} in use by {users[ip]} has no corresponding IPAM allocation")
    problems += len(outside) + len(missing)
    print(f"Found {len(outside)} in-use IPs that are not in active IP pools.")
    print(
        f"Found {len(missing)} in-use IPs that are in active IP pools but have no "
        "corresponding IPAM allocation.\n"
    )
    print("Scanning for IPAM handles with no matching IPs...")
    handles = {
        kv.key[len(keys.HANDLE_PREFIX) :]: kv.mod_revision
        for kv in client.backend.list(keys.HANDLE_PREFIX)[0]
    }
    found.leaked_handles = [
        {"ID": handle, "UID": None, "Revision": str(revision)}
        for handle, revision in handles.items()
        if handle not in handles_in_blocks
    ]
    problems += len(found.leaked_handles)
    print(
        f"Found {len(found.leaked_handles)} handles with no matching IPs (and "
        f"{len(handles) - len(found.leaked_handles)} handles with matches)."
    )
    print("Scanning for IPs with missing handle...")
    missing_handles = sorted(handles_in_blocks - handles.keys())
    if show_problem_ips:
        for handle in missing_handles:
            print(f"  {handle} is in use in a block but doesn't exist.")
    problems += len(missing_handles)
    print(
        f"Found {len(missing_handles)} handles mentioned in blocks with no matching handle "
        "resource."
    )
    print("Scanning for block affinities of nodes that do not exist...")
    found.leaked_affinities = _orphan_affinities(alloc, {n["metadata"]["name"] for n in nodes})
    if show_problem_ips:
        for affinity in found.leaked_affinities:
            cidr, node = affinity["cidr"], affinity["node"]
            print(f"  block {cidr} is affine to node {node!r}, which does not exist.")
    problems += len(found.leaked_affinities)
    print(f"Found {len(found.leaked_affinities)} block affinities of nodes with no Node resource.")
    print(f"Check complete; found {problems} problems.")
    if output:
        _write_report(client, found, output)
    return 0


def _write_report(client: Any, found: _Findings, path: str) -> None:
    info = cluster_information(client) or {"metadata": {}, "spec": {}}
    spec = info["spec"]
    allocations = {
        ip: [
            {
                k: v
                for k, v in record.items()
                if not k.startswith("_") and (v is not None or k == "owners")
            }
            for record in records
        ]
        for ip, records in found.allocations.items()
    }
    report = {
        "version": CLIENT_VERSION,
        "clusterGUID": spec.get("clusterGUID", ""),
        "datastoreLocked": spec.get("datastoreReady") is False,
        "clusterInformationRevision": info["metadata"].get("resourceVersion", ""),
        "clusterType": spec.get("clusterType", ""),
        "allocations": allocations,
        "leakedHandles": found.leaked_handles or None,
        "leakedAffinities": found.leaked_affinities or None,
    }
    try:
        with open(path, "w", encoding="utf-8") as f:
            json.dump({k: v for k, v in report.items() if v is not None}, f, indent=2)
    except OSError as exc:
        raise CtlError(f"cannot write report {path}: {exc.strerror}") from None


def _load_report(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            report = json.load(f)
    except OSError as exc:
        raise CtlError(f"cannot read report {path}: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError):
        raise CtlError(f"cannot read report {path}: not a JSON ipam check report") from None
    if not isinstance(report, dict) or not isinstance(report.get("allocations", {}), dict):
        raise CtlError(f"cannot read report {path}: not a JSON ipam check report")
    return report


def _leaked_handles(report: dict[str, Any]) -> dict[str, int | None]:
    """Handle ID -> the revision the report saw, if it says. Calico's reports list leaked
    handles as IDs, or (newer) as {"ID", "UID", "Revision"} records."""
    found: dict[str, int | None] = {}
    for entry in report.get("leakedHandles") or []:
        if isinstance(entry, dict):
            revision = str(entry.get("Revision") or "")
            found[str(entry.get("ID", ""))] = int(revision) if revision.isdigit() else None
        else:
            found[str(entry)] = None
    return found


def _leaked_in_all(
    reports: Sequence[dict[str, Any]],
) -> tuple[dict[str, Any], dict[str, int | None], set[tuple[str, str]]]:
    """What every report calls leaked: allocations not in use (by IP), handles, affinities.
    Several reports taken apart in time keep out what was only passing through."""
    ips: dict[str, Any] | None = None
    handles: dict[str, int | None] | None = None
    affinities: set[tuple[str, str]] | None = None
    for report in reports:
        these = {
            a["ip"]: a
            for records in report.get("allocations", {}).values()
            for a in records
            if isinstance(a, dict) and not a.get("inUse") and "ip" in a
        }
        ips = these if ips is None else {ip: a for ip, a in these.items() if ip in ips}
        named = _leaked_handles(report)
        handles = named if handles is None else {h: r for h, r in handles.items() if h in named}
        pairs = {
            (str(a.get("node", "")), str(a.get("cidr", "")))
            for a in report.get("leakedAffinities") or []
            if isinstance(a, dict)
        }
        affinities = pairs if affinities is None else affinities & pairs
    return ips or {}, handles or {}, affinities or set()


def release_from_reports(client: Any, alloc: Any, paths: Sequence[str], force: bool) -> int:
    from pycalico.datastore.backend import KeyNotFound, RevisionConflict
    from pycalico.ipam import keys

    info = cluster_information(client) or {"metadata": {}, "spec": {}}
    reports = [_load_report(p) for p in paths]
    for path, report in zip(paths, reports, strict=True):
        # A report of another cluster must never release anything, --force or not.
        if report.get("clusterGUID", "") != info["spec"].get("clusterGUID", ""):
            raise CtlError(
                f"Cluster does not match the provided report ({path}): mismatched cluster "
                "GUID. Refusing to release."
            )
        if report.get("version") != CLIENT_VERSION:
            if not force:
                raise CtlError(
                    f"The provided report ({path}) was produced using a different version "
                    f"({report.get('version')}) of calicoctl. Refusing to release."
                )
            print(
                "WARNING: Report was produced using a different version of calicoctl. "
                "Ignoring due to --force option"
            )
    current = info["metadata"].get("resourceVersion", "")
    if not any(r.get("clusterInformationRevision", "") == current for r in reports):
        raise CtlError(
            "The provided reports are all stale - at least one should be up-to-date. "
            "Please generate a new report while the data store is locked and try again."
        )
    if info["spec"].get("datastoreReady") is not False:
        if not force:
            raise CtlError(
                "Data store is not locked. Either lock the data store, or re-run with --force."
            )
        print("WARNING: Data store is not locked. Ignoring due to --force option")

    ips, handles, affinities = _leaked_in_all(reports)
    if ips:
        print(f"Releasing {len(ips)} old IPs")
        released = sum(
            alloc.release_if_unchanged(
                ipaddress.ip_address(ip), a.get("handle"), a.get("sequenceNumber")
            )
            for ip, a in ips.items()
        )
        if released < len(ips):
            print("Warning: report contained addresses which are no longer allocated")
        else:
            print(f"Released {len(ips)} IPs successfully")
    else:
        print("No addresses need to be released.")

    print(f"Deleting {len(handles)} handles...")
    print("Key: '.' = Deleted OK; 'x' = already gone.")
    marks, changed = "", 0
    for handle, revision in sorted(handles.items()):
        try:
            client.backend.delete(keys.handle_key(handle), revision)
            marks += "."
        except KeyNotFound:
            marks += "x"
        except RevisionConflict:
            changed += 1  # written since the report: not known to be leaked any more
    print(marks)
    if changed:
        print(f"Kept {changed} handles that changed since the report.")

    # A node that registered since the report keeps its blocks.
    orphans = {(a["node"], a["cidr"]) for a in _orphan_affinities(alloc, _node_names(client))}
    stale = sorted(affinities & orphans)
    print(f"Releasing {len(stale)} block affinities of nodes that do not exist")
    for node, cidr in stale:
        alloc.release_affinity(node, ipaddress.ip_network(cidr))
    print("You may now unlock the data store.")
    return 0
