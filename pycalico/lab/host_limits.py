"""Host-wide limits a big lab can run into, checked before `up` builds anything.

Every calico-node of an SQLite lab holds one inotify instance (its datastore watches sleep
on it, pycalico/datastore/dir_changes.py), and so does calico-kube-controllers. The kernel
allows each user fs.inotify.max_user_instances of them (128 by default), counted across
every process of the user, so a lab of a hundred nodes next to other labs runs out; a
calico-node that gets none falls back to polling the datastore, which costs CPU on every
node all the time. `up` refuses instead, saying which sysctl to raise.
"""

from __future__ import annotations

import os

MAX_INSTANCES = "/proc/sys/fs/inotify/max_user_instances"
# calico-kube-controllers, and a calicoctl or CNI plugin that may watch while the lab runs.
SPARE_INSTANCES = 2


def inotify_needed(nodes: int, datastore: str) -> int:
    """The inotify instances a lab holds (etcd watches are HTTP streams: none)."""
    return nodes + SPARE_INSTANCES if datastore == "sqlite" else 0


def inotify_shortfall(nodes: int, datastore: str, in_use: int, limit: int) -> str:
    """Why a lab of `nodes` nodes would not get its inotify instances, or ""."""
    needed = inotify_needed(nodes, datastore)
    if in_use + needed <= limit:
        return ""
    suggested = 1 << (in_use + needed).bit_length()
    return (
        f"{nodes} nodes need {needed} inotify instances (one per calico-node for its "
        f"datastore watches) and {in_use} of fs.inotify.max_user_instances={limit} are in "
        f"use: raise it (sysctl -w fs.inotify.max_user_instances={suggested})"
    )


def inotify_limit() -> int:
    with open(MAX_INSTANCES, encoding="ascii") as f:
        return int(f.read())


def inotify_in_use(uid: int = 0) -> int:
    """The inotify instances `uid`'s processes hold now."""
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        fd_dir = f"/proc/{pid}/fd"
        try:
            if os.stat(f"/proc/{pid}").st_uid != uid:
                continue
            fds = os.listdir(fd_dir)
        except OSError:
            continue  # gone meanwhile
        for fd in fds:
            try:
                if os.readlink(f"{fd_dir}/{fd}") == "anon_inode:inotify":
                    count += 1
            except OSError:
                continue
    return count
