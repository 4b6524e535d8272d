"""The lab's flow aggregator: calico-goldmane in the router's namespace (Goldmane's and
whisker-backend's role, one per cluster as in Calico).

Felix on every node reaches its collector at the router's address on the first underlay
subnet (`COLLECTOR`, what FelixConfiguration's `flowLogsGoldmaneServer` names); its API and
console listen on the router's loopback only, as whisker-backend is reached only through a
port-forward: `calico-lab console` forwards a host port there (console_front.py) and
`calico-lab flows` asks it from inside that namespace.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

from pycalico.lab.namespaces import ns_name
from pycalico.lab.processes import alive
from pycalico.lab.state import LabError, LabState

COLLECTOR_HOST = "192.168.56.1"  # the router on the first underlay subnet (cluster.SUBNETS)
COLLECTOR_PORT = 7443  # Goldmane's Service port
COLLECTOR = f"{COLLECTOR_HOST}:{COLLECTOR_PORT}"
API = ("127.0.0.1", 8080)  # whisker-backend's port, in the router's namespace
PID_KEY = "goldmane"
READY_SECONDS = 15.0


def netns(state: LabState) -> str:
    return ns_name(state.name, "router")


def start(state: LabState) -> None:
    """Start calico-goldmane and wait until its API answers."""
    binary = os.path.join(os.path.dirname(sys.executable), "calico-goldmane")
    with open(state.path("goldmane.log"), "ab") as log:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", netns(state), binary,
             "--collector", COLLECTOR, "--listen", f"{API[0]}:{API[1]}"],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )  # fmt: skip
    state.pids[PID_KEY] = proc.pid
    state.save()
    deadline = time.monotonic() + READY_SECONDS
    while not answers(state):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise LabError(f"calico-goldmane did not start; see {state.path('goldmane.log')}")
        time.sleep(0.1)


def connect(state: LabState, timeout: float = 5.0) -> socket.socket:
    """A connection to the aggregator's API, made inside the router's namespace (the socket
    stays there, whichever thread uses it)."""
    from pycalico.netns import in_netns

    return in_netns(f"/run/netns/{netns(state)}", lambda: socket.create_connection(API, timeout))


def answers(state: LabState) -> bool:
    try:
        connect(state, timeout=1.0).close()
    except OSError:
        return False
    return True


def require(state: LabState) -> None:
    """A LabError saying why, unless the lab's aggregator runs."""
    pid = state.pids.get(PID_KEY)
    if pid is None:
        raise LabError(
            f"lab {state.name} has no flow aggregator (it was made before labs had one): "
            f"calico-lab down --name {state.name}, then up again"
        )
    if not alive(pid):
        raise LabError(
            f"the flow aggregator of lab {state.name} is not running; "
            f"see {state.path('goldmane.log')}"
        )
