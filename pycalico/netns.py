"""Entering a network namespace from one thread, and writing the namespace's sysctls.

setns() moves only the calling thread, so a process can do one piece of work in a pod's or
a node's namespace (the CNI wiring a pod, the lab asking a node, a test or bench reading
a node's kernel state) without forking and without moving anything else it runs.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import stat
from collections.abc import Callable
from typing import TypeVar

CLONE_NEWNET = 0x40000000  # setns(2): the descriptor must name a network namespace
NSFS_MAGIC = 0x6E736673  # statfs(2) f_type of a namespace file
NS_GET_NSTYPE = 0xB703  # ioctl(2) on a namespace file: which kind of namespace it is
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


class NotANetworkNamespace(Exception):
    """The path names something, but not a network namespace."""


def _fs_type(fd: int) -> int:
    # struct statfs begins with f_type, a word; the rest of the buffer is room for the others.
    buf = (ctypes.c_long * 32)()
    if _libc.fstatfs(fd, buf) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(buf[0]) & 0xFFFFFFFF


def open_netns(path: str) -> int:
    """A descriptor of the network namespace at `path`, found out without blocking.

    FileNotFoundError when nothing is there; NotANetworkNamespace for anything else: the
    empty file left where a namespace was unmounted, a directory, another kind of namespace
    (setns would fail with EINVAL), a FIFO (a plain open() waits for a writer forever).
    Only regular files are opened, and non-blocking: nsfs files are regular, and opening a
    device can itself act (a tape rewinds, a watchdog arms). The CNI shims open CNI_NETNS
    the same way where the runtime is, and the agent checks what they pass with check_netns.
    """
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise NotANetworkNamespace(f"{path} is not a network namespace")
    # O_NONBLOCK: replaced by a FIFO since the stat, it still cannot block. Not O_PATH,
    # whose descriptors setns refuses.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        check_netns(fd, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_netns(fd: int, what: str) -> None:
    """NotANetworkNamespace unless the open descriptor `fd` is a network namespace (`what`
    names it in the error). Asks only the kernel's bookkeeping: nothing is read from `fd`,
    so whatever it is (a FIFO, a socket, a device), nothing blocks or acts."""
    if (
        not stat.S_ISREG(os.fstat(fd).st_mode)
        or _fs_type(fd) != NSFS_MAGIC
        or fcntl.ioctl(fd, NS_GET_NSTYPE) != CLONE_NEWNET
    ):
        raise NotANetworkNamespace(f"{what} is not a network namespace")


def in_netns(netns: str, work: Callable[[], T]) -> T:
    """Run `work` with this thread inside the network namespace at `netns`, then come back.
    `netns` is checked first (open_netns), so a path that is no namespace raises instead of
    blocking."""
    target = open_netns(netns)
    try:
        return enter(target, netns, work)
    finally:
        os.close(target)


def enter(target: int, what: str, work: Callable[[], T]) -> T:
    """Run `work` with this thread inside the network namespace `target` (a descriptor from
    open_netns; `what` names it in errors), then come back.

    setns() moves only the calling thread, so the rest of the process stays where it is.
    Returning is checked: a thread that could not come back must not go on working for the
    host, so the process exits rather than continue in the wrong namespace.
    """
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        _setns(target, what)
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


def write_sysctl(path: str, value: str) -> None:
    """Set the sysctl at `path` under /proc/sys/net (`ipv4/conf/eth0/forwarding`) in the
    calling thread's network namespace: /proc/sys/net shows the namespace of whoever
    opens it."""
    with open(f"/proc/sys/net/{path}", "w") as f:
        f.write(value)
