"""A 3-member etcd cluster for a lab: one namespace per member, on the lab's first subnet."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request

from pycalico.lab.namespaces import add_ns, in_ns, link, ns_name
from pycalico.lab.processes import stop_pids
from pycalico.lab.state import LabError, LabState
from pycalico.lab.underlay_plan import ETCD_MEMBERS, etcd_member_ip

READY_TIMEOUT = 30.0


def endpoints() -> str:
    return ",".join(f"http://{etcd_member_ip(i)}:2379" for i in range(ETCD_MEMBERS))


def _member(index: int) -> str:
    return f"etcd{index + 1}"


def start(state: LabState) -> None:
    net = ns_name(state.name, "net")
    for i in range(ETCD_MEMBERS):
        name = _member(i)
        ns = ns_name(state.name, name)
        add_ns(state, ns)
        link(ns, "eth0", net, f"e{i + 1}")
        in_ns(net, "ip", "link", "set", f"e{i + 1}", "master", "br0")
        in_ns(ns, "ip", "addr", "add", f"{etcd_member_ip(i)}/24", "dev", "eth0")
        in_ns(ns, "ip", "route", "add", "default", "via", "192.168.56.1")
        os.makedirs(state.path("etcd", name), exist_ok=True)
        _launch(state, i)


def _launch(state: LabState, index: int) -> None:
    """Run member `index` in its namespace; on a data directory it already filled, etcd
    ignores the initial-cluster flags and rejoins as the member it was."""
    name, ip = _member(index), etcd_member_ip(index)
    initial = ",".join(f"{_member(i)}=http://{etcd_member_ip(i)}:2380" for i in range(ETCD_MEMBERS))
    with open(state.path("etcd", f"{name}.log"), "ab") as log:
        proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                ns_name(state.name, name),
                "etcd",
                "--name",
                name,
                "--data-dir",
                state.path("etcd", name),
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
    # `ip netns exec` execs etcd in place, so this is etcd's own pid.
    state.pids[f"etcd:{name}"] = proc.pid
    state.save()


def stop_all(state: LabState) -> None:
    """Stop every member (TERM, then KILL) by the pid the lab recorded: etcd is down.

    The pids leave the record too, so that `down` never signals a number the system may
    have handed to another process meanwhile.
    """
    names = [f"etcd:{_member(i)}" for i in range(ETCD_MEMBERS)]
    stop_pids([state.pids[name] for name in names if name in state.pids])
    for name in names:
        state.pids.pop(name, None)
    state.save()


def running(state: LabState) -> bool:
    """Whether any member the lab started is still running."""
    from pycalico.lab.processes import alive

    return any(
        alive(state.pids[f"etcd:{_member(i)}"])
        for i in range(ETCD_MEMBERS)
        if f"etcd:{_member(i)}" in state.pids
    )


def start_all(state: LabState) -> None:
    """Start every member again on its data and wait until the cluster serves."""
    for i in range(ETCD_MEMBERS):
        _launch(state, i)
    wait_ready(state)


def wait_ready(state: LabState) -> None:
    from pycalico.netns import in_netns

    def healthy(ip: str) -> bool:
        try:
            with urllib.request.urlopen(f"http://{ip}:2379/health", timeout=1) as response:
                return b'"true"' in response.read()
        except OSError:
            return False

    deadline = time.monotonic() + READY_TIMEOUT
    for i in range(ETCD_MEMBERS):
        ns = f"/run/netns/{ns_name(state.name, _member(i))}"
        ip = etcd_member_ip(i)
        while not in_netns(ns, lambda: healthy(ip)):  # noqa: B023 - called right here
            if time.monotonic() > deadline:
                raise LabError(
                    f"etcd is not healthy after {READY_TIMEOUT:.0f}s; see {state.path('etcd')}"
                )
            time.sleep(0.1)
