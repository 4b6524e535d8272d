"""The lab's network namespaces and the veth links between them, made with `ip`.

Every namespace is named `<lab>-<role>` and recorded in the lab's state before it exists,
so that `down` removes whatever `up` got as far as making.
"""

from __future__ import annotations

import subprocess

from pycalico.lab.state import LabError, LabState


def sh(*cmd: str) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise LabError(f"`{' '.join(cmd)}` failed: {out.stderr.strip()}")
    return out.stdout


def in_ns(ns: str, *cmd: str) -> str:
    return sh("ip", "netns", "exec", ns, *cmd)


def ns_name(lab: str, role: str) -> str:
    return f"{lab}-{role}"


def add_ns(state: LabState, name: str) -> None:
    state.namespaces.append(name)
    state.save()  # recorded before it exists: `down` removes it even if `up` dies here
    sh("ip", "netns", "add", name)
    in_ns(name, "ip", "link", "set", "lo", "up")


def link(a_ns: str, a_if: str, b_ns: str, b_if: str) -> None:
    sh(
        "ip",
        "link",
        "add",
        a_if,
        "netns",
        a_ns,
        "type",
        "veth",
        "peer",
        "name",
        b_if,
        "netns",
        b_ns,
    )
    in_ns(a_ns, "ip", "link", "set", a_if, "up")
    in_ns(b_ns, "ip", "link", "set", b_if, "up")
