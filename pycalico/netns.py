"""Entering a network namespace from one thread, and writing the namespace's sysctls.

setns() moves only the calling thread, so a process can do one piece of work in a pod's or
a node's namespace (the CNI wiring a pod, the lab asking a node, a test or bench reading
a node's kernel state) without forking and without moving anything else it runs.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from typing import TypeVar

CLONE_NEWNET = 0x40000000  # setns(2): the descriptor must name a network namespace
# Kernel numbers pyroute2 has no name for.
MAIN_TABLE = 254  # RT_TABLE_MAIN
PROTO_FELIX = 80  # Felix's route protocol: how Felix knows its routes, and BIRD leaves them
# Felix's VXLAN device: its routes are Felix's whatever their protocol.
VXLAN_DEVICE = "vxlan.calico"

T = TypeVar("T")

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int, what: str) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns {what}: {os.strerror(err)}")


def in_netns(netns: str, work: Callable[[], T]) -> T:
    """Run `work` with this thread inside the network namespace at `netns`, then come back.

    setns() moves only the calling thread, so the rest of the process stays where it is.
    Returning is checked: a thread that could not come back must not go on working for the
    host, so the process exits rather than continue in the wrong namespace.
    """
    target = os.open(netns, os.O_RDONLY)
    try:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            _setns(target, netns)
            try:
                return work()
            finally:
                try:
                    _setns(home, "back to the node's namespace")
                except OSError as exc:
                    os.write(2, f"fatal: {exc}\n".encode())
                    os._exit(70)
        finally:
            os.close(home)
    finally:
        os.close(target)


def write_sysctl(path: str, value: str) -> None:
    """Set the sysctl at `path` under /proc/sys/net (`ipv4/conf/eth0/forwarding`) in the
    calling thread's network namespace: /proc/sys/net shows the namespace of whoever
    opens it."""
    with open(f"/proc/sys/net/{path}", "w") as f:
        f.write(value)
