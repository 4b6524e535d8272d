"""calico-node with CALICO_GOLDMANE_COLLECTOR runs the flow aggregator as a supervised child:
its API answers, a killed child is started again, and it ends with calico-node."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.node_namespace import bare_namespace, node_namespace, sh

pytestmark = pytest.mark.integration

BIN = os.path.dirname(sys.executable)
API_PORT = 8080
STARTED = re.compile(r"calico-goldmane started \(pid (\d+)\): collector 127\.0\.0\.1:7443")


def eventually(check: Callable[[], object], seconds: float = 30.0) -> object:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def flows_status(ns: str) -> int:
    """GET /flows on the aggregator's API, from inside the node's namespace."""
    code = (
        "import urllib.request\n"
        "try:\n"
        f"  print(urllib.request.urlopen('http://127.0.0.1:{API_PORT}/flows', timeout=2).status)\n"
        "except Exception as e:\n"
        "  print(getattr(e, 'code', 0))\n"
    )
    return int(sh(ns, sys.executable, "-c", code, check=False).strip() or 0)


def is_goldmane(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return b"calico-goldmane" in cmdline and state != "Z"


class Node:
    def __init__(self, tmp: Path, ns: str, **extra: str) -> None:
        self.ns = ns
        self.log = tmp / "node.log"
        self.env = {
            **os.environ,
            "DATASTORE_TYPE": "sqlite",
            "SQLITE_PATH": str(tmp / "store.db"),
            "NODENAME": "node1",
            "CALICO_NETWORKING_BACKEND": "none",
            "IP": "none",
            "CALICO_STATE_DIR": str(tmp / "lib"),
            "CALICO_RUN_DIR": str(tmp / "run"),
            "FELIX_HEALTHPORT": "9199",
            "FELIX_PROMETHEUSMETRICSPORT": "9191",
            **extra,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, os.path.join(BIN, "calico-node")],
                env=self.env,
                stdout=log,
                stderr=log,
            )

    def children_started(self) -> list[int]:
        return [int(pid) for pid in STARTED.findall(self.log.read_text(errors="replace"))]

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=30)
        self.proc = None
        return code


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    with node_namespace("fp") as namespace:
        n = Node(
            tmp_path,
            namespace.ns,
            CALICO_GOLDMANE_COLLECTOR="127.0.0.1:7443",
            CALICO_GOLDMANE_API=f"127.0.0.1:{API_PORT}",
        )
        try:
            yield n
        finally:
            n.stop(signal.SIGKILL)
            for pid in n.children_started():
                if is_goldmane(pid):
                    os.kill(pid, signal.SIGKILL)


def test_calico_node_runs_the_aggregator_and_starts_it_again_when_it_dies(node: Node) -> None:
    node.start()
    eventually(lambda: flows_status(node.ns) == 200)
    [first] = node.children_started()
    assert is_goldmane(first)

    os.kill(first, signal.SIGKILL)
    eventually(lambda: len(node.children_started()) == 2)
    second = node.children_started()[1]
    assert second != first and is_goldmane(second)
    eventually(lambda: flows_status(node.ns) == 200)
    assert f"calico-goldmane (pid {first}) exited with status -9" in node.log.read_text()

    assert node.stop() == 0
    assert not is_goldmane(second)
    assert f"calico-goldmane (pid {second}) stopped" in node.log.read_text()


def test_a_killed_calico_node_takes_its_aggregator_with_it(node: Node) -> None:
    node.start()
    eventually(lambda: flows_status(node.ns) == 200)
    [child] = node.children_started()
    node.stop(signal.SIGKILL)
    eventually(lambda: not is_goldmane(child), seconds=10)


def test_a_bad_aggregator_address_is_one_line_of_error_and_changes_nothing(
    tmp_path: Path,
) -> None:
    with bare_namespace("fp") as ns:
        n = Node(tmp_path, ns, CALICO_GOLDMANE_COLLECTOR="goldmane:7443")
        n.start()
        assert n.proc is not None and n.proc.wait(timeout=30) == 1
    assert n.log.read_text() == (
        "calico-node: CALICO_GOLDMANE_COLLECTOR=goldmane:7443 is not HOST:PORT "
        "(an IP address, [IPv6] in brackets, and a port 1-65535)\n"
    )
    assert not (tmp_path / "store.db").exists() and not (tmp_path / "lib").exists()
