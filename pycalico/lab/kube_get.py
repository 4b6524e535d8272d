"""`calico-lab get pods|nodes [-n NS | -A] [-o wide]`: kubectl's tables for the lab.

A lab pod is a network namespace with no container, so it is always 1/1 Running with no
restarts; its age counts from `pod add`. A node is Ready when its calico-node says so (it
has no kubelet); its VERSION is calico-node's and its CONTAINER-RUNTIME `netns`, since the
lab's pods are bare network namespaces.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

from pycalico.lab.state import LabState, Pod

NONE = "<none>"


def human_duration(seconds: float) -> str:
    """An age as kubectl prints it (apimachinery's duration.HumanDuration)."""
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        rest = whole % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y{days}d" if days else f"{years}y"
    return f"{hours // 24 // 365}y"


def pods_table(
    pods: Sequence[Pod], namespace: str, all_namespaces: bool, wide: bool, now: float
) -> tuple[str, str]:
    """(table, message for stderr) as `kubectl get pods` prints them (pure)."""
    chosen = [
        p
        for p in sorted(pods, key=lambda p: p.name)
        if all_namespaces or p.name.partition("/")[0] == namespace
    ]
    if not chosen:
        where = "" if all_namespaces else f" in {namespace} namespace"
        return "", f"No resources found{where}.\n"
    head = ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    if wide:
        head += ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
    rows = [(["NAMESPACE"] if all_namespaces else []) + head]
    for pod in chosen:
        ns, _, name = pod.name.partition("/")
        row = [name, "1/1", "Running", "0", human_duration(now - pod.created)]
        if wide:
            row += [pod.ip or NONE, pod.node, NONE, NONE]
        rows.append(([ns] if all_namespaces else []) + row)
    return _table(rows), ""


@dataclass(frozen=True)
class NodeRow:
    name: str
    ready: bool
    ip: str
    created: float


def nodes_table(
    nodes: Sequence[NodeRow], wide: bool, now: float, version: str, os_image: str, kernel: str
) -> str:
    """`kubectl get nodes [-o wide]` (pure)."""
    head = ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    if wide:
        head += ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"]
    rows = [head]
    for node in nodes:
        row = [
            node.name,
            "Ready" if node.ready else "NotReady",
            NONE,
            human_duration(now - node.created),
            version,
        ]
        if wide:
            row += [node.ip, NONE, os_image, kernel, "netns"]
        rows.append(row)
    return _table(rows)


def _table(rows: list[list[str]]) -> str:
    """kubectl's columns: three spaces apart at least (its tabwriter's padding)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "".join(
        "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        + "\n"
        for row in rows
    )


def _os_image() -> str:
    try:
        with open("/etc/os-release", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.strip().partition("=")
                if key == "PRETTY_NAME":
                    return value.strip('"')
    except OSError:
        pass
    return "Linux"


def get(state: LabState, kind: str, namespace: str, all_namespaces: bool, wide: bool) -> str:
    import sys

    from pycalico import __version__
    from pycalico.lab.lab_status import readiness
    from pycalico.lab.processes import alive

    now = time.time()
    if kind in ("pods", "pod", "po"):
        table, message = pods_table(list(state.pods.values()), namespace, all_namespaces, wide, now)
        sys.stderr.write(message)
        return table
    rows = []
    for node in state.nodes:
        pid = state.pids.get(f"calico-node:{node}")
        ready = bool(pid) and alive(pid) and not readiness(state, node)
        rows.append(NodeRow(node, ready, state.node_ips[node].split("/")[0], state.created))
    return nodes_table(rows, wide, now, f"v{__version__}", _os_image(), os.uname().release)
