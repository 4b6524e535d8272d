"""What becomes of BIRD when calico-node (bird backend) gets SIGTERM.

Started by systemd as a unit's process (SYSTEMD_EXEC_PID names its own pid), the unit's
KillMode decides: calico-node.service has `KillMode=process`, so `systemctl restart` signals
calico-node alone, BIRD keeps its sessions and the next calico-node adopts it. Run any
other way (the lab, by hand, even from a shell that inherited a service's environment),
calico-node is BIRD's only keeper and stops it on the way out.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.node_namespace import node_namespace

pytestmark = pytest.mark.integration

CALICO_NODE = os.path.join(os.path.dirname(sys.executable), "calico-node")
SYSTEMD_VARS = ("INVOCATION_ID", "SYSTEMD_EXEC_PID")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


def is_bird(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "bird"
    except OSError:
        return False


def eventually(what: str, check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s")
        time.sleep(0.1)


class Node:
    """calico-node with the bird backend in namespace `ns`, on an SQLite store in `tmp`."""

    def __init__(self, ns: str, tmp: Path, under_systemd: bool) -> None:
        self.ns, self.tmp = ns, tmp
        self.run_dir = tmp / "run"
        self.under_systemd = under_systemd
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(SYSTEMD_VARS)},
            "DATASTORE_TYPE": "sqlite",
            "SQLITE_PATH": str(tmp / "store.db"),
            "NODENAME": "node1",
            "IP_AUTODETECTION_METHOD": "interface=eth0",
            "CALICO_NETWORKING_BACKEND": "bird",
            "CALICO_IPV4POOL_CIDR": "10.70.0.0/16",
            "CALICO_STATE_DIR": str(tmp / "lib"),
            "CALICO_RUN_DIR": str(self.run_dir),
            "CALICO_CONFD_DIR": str(tmp / "confd"),
        }
        if not under_systemd:  # what a shell started by some service inherits
            self.env |= {"INVOCATION_ID": "0123456789abcdef", "SYSTEMD_EXEC_PID": "1"}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.tmp / "calico-node.log", "ab") as log:
            # systemd sets SYSTEMD_EXEC_PID to the pid it starts, which every exec keeps.
            exec_pid = 'SYSTEMD_EXEC_PID=$$ INVOCATION_ID=0123456789abcdef exec "$@"'
            prefix = ["sh", "-c", exec_pid, "sh"] if self.under_systemd else []
            self.proc = subprocess.Popen(
                [*prefix, "ip", "netns", "exec", self.ns, CALICO_NODE],
                env=self.env,
                stdout=log,
                stderr=log,
            )
        eventually("calico-node's BIRD running", lambda: self.bird_pid() is not None, START_TIMEOUT)

    def bird_pid(self) -> int | None:
        """The running BIRD its pid file names (calico-node must not have exited)."""
        if self.proc is not None and self.proc.poll() is not None:
            log = (self.tmp / "calico-node.log").read_text()[-2000:]
            raise AssertionError(f"calico-node exited: {log}")
        pid = self.recorded_bird()
        return pid if pid is not None and is_bird(pid) else None

    def recorded_bird(self) -> int | None:
        try:
            return int((self.run_dir / "bird.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def terminate(self) -> int:
        """SIGTERM, as systemd stops the unit; calico-node's exit status."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        status = self.proc.wait(timeout=STOP_TIMEOUT)
        self.proc = None
        return status


@contextlib.contextmanager
def node(tmp: Path, under_systemd: bool) -> Iterator[Node]:
    with node_namespace("pcbird") as namespace:
        n = Node(namespace.ns, tmp, under_systemd)
        try:
            n.start()
            yield n
        finally:
            if n.proc is not None and n.proc.poll() is None:
                n.proc.kill()
                n.proc.wait()
            bird = n.recorded_bird()  # the one BIRD this test's node ran (or adopted)
            if bird is not None and is_bird(bird):
                os.kill(bird, signal.SIGKILL)


def test_under_systemd_a_sigterm_leaves_bird_running_for_the_next_calico_node_to_adopt(
    tmp_path: Path,
) -> None:
    with node(tmp_path, under_systemd=True) as n:
        bird = n.bird_pid()
        assert n.terminate() == 0
        assert bird is not None and is_bird(bird)  # still running, sessions and routes kept
        n.start()
        assert n.bird_pid() == bird  # adopted, not a second BIRD


def test_run_any_other_way_a_sigterm_stops_bird_with_calico_node(tmp_path: Path) -> None:
    with node(tmp_path, under_systemd=False) as n:
        bird = n.bird_pid()
        assert bird is not None
        assert n.terminate() == 0
        eventually("BIRD to stop", lambda: not is_bird(bird), STOP_TIMEOUT)
