"""A 3-member etcd cluster for a lab: one namespace per member, on the lab's first subnet."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request

from pycalico.lab.cluster import _add_ns, _link, in_ns, ns_name
from pycalico.lab.state import LabError, LabState

MEMBERS = 3
FIRST_HOST = 201  # 192.168.56.201-203: out of the nodes' range
READY_TIMEOUT = 30.0


def member_ip(index: int) -> str:
    return f"192.168.56.{FIRST_HOST + index}"


def endpoints() -> str:
    return ",".join(f"http://{member_ip(i)}:2379" for i in range(MEMBERS))


def start(state: LabState) -> None:
    initial = ",".join(f"etcd{i + 1}=http://{member_ip(i)}:2380" for i in range(MEMBERS))
    net = ns_name(state.name, "net")
    for i in range(MEMBERS):
        name = f"etcd{i + 1}"
        ns = ns_name(state.name, name)
        _add_ns(state, ns)
        _link(ns, "eth0", net, f"e{i + 1}")
        in_ns(net, "ip", "link", "set", f"e{i + 1}", "master", "br0")
        in_ns(ns, "ip", "addr", "add", f"{member_ip(i)}/24", "dev", "eth0")
        in_ns(ns, "ip", "route", "add", "default", "via", "192.168.56.1")
        data = state.path("etcd", name)
        os.makedirs(data, exist_ok=True)
        ip = member_ip(i)
        with open(state.path("etcd", f"{name}.log"), "ab") as log:
            proc = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    ns,
                    "etcd",
                    "--name",
                    name,
                    "--data-dir",
                    data,
                    "--listen-client-urls",
                    f"http://{ip}:2379",
                    "--advertise-client-urls",
                    f"http://{ip}:2379",
                    "--listen-peer-urls",
                    f"http://{ip}:2380",
                    "--initial-advertise-peer-urls",
                    f"http://{ip}:2380",
                    "--initial-cluster",
                    initial,
                    "--initial-cluster-state",
                    "new",
                    "--initial-cluster-token",
                    f"calico-lab-{state.name}",
                ],
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        state.pids[f"etcd:{name}"] = proc.pid
        state.save()


def wait_ready(state: LabState) -> None:
    from pycalico.cni.dataplane import in_netns

    def healthy(ip: str) -> bool:
        try:
            with urllib.request.urlopen(f"http://{ip}:2379/health", timeout=1) as response:
                return b'"true"' in response.read()
        except OSError:
            return False

    deadline = time.monotonic() + READY_TIMEOUT
    for i in range(MEMBERS):
        ns = f"/run/netns/{ns_name(state.name, f'etcd{i + 1}')}"
        ip = member_ip(i)
        while not in_netns(ns, lambda: healthy(ip)):  # noqa: B023 - called right here
            if time.monotonic() > deadline:
                raise LabError(
                    f"etcd is not healthy after {READY_TIMEOUT:.0f}s; see {state.path('etcd')}"
                )
            time.sleep(0.1)
