"""`calicoctl node status` against two real BIRD 2 processes peering across a veth.

Each "node" is a run directory holding `bird.ctl`, `bird.pid` and a `calico-node.pid` that
names a stand-in process the test starts (`sleep`): the command decides what runs from
those pid files alone, as it does in the lab where nodes share one PID namespace.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.node_namespace import node_namespace, sh

pytestmark = pytest.mark.integration

CALICOCTL = os.path.join(os.path.dirname(sys.executable), "calicoctl")
ADDRESS_A, ADDRESS_B = "192.0.2.11", "192.0.2.12"

BIRD_CONFIG = """\
router id {me};
timeformat protocol iso short;
protocol device {{ scan time 2; }}
protocol bgp Mesh_{peer_name} {{
  local {me} as 64512;
  neighbor {peer} as 64512;
  connect delay time 1;
  connect retry time 1;
  error wait time 1, 5;
  ipv4 {{ import none; export none; }};
}}
"""


@dataclass
class BirdNode:
    ns: str
    address: str
    peer: str
    run_dir: Path
    processes: list[subprocess.Popen[bytes]]

    def start_bird(self) -> subprocess.Popen[bytes]:
        config = self.run_dir / "bird.conf"
        config.write_text(
            BIRD_CONFIG.format(me=self.address, peer=self.peer, peer_name=_name(self.peer))
        )
        # In the foreground (-f), so the process started here is BIRD itself.
        proc = subprocess.Popen(
            [
                "ip", "netns", "exec", self.ns, "bird", "-f",
                "-c", str(config),
                "-s", str(self.run_dir / "bird.ctl"),
                "-P", str(self.run_dir / "bird.pid"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.processes.append(proc)
        return proc

    def status(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CALICOCTL, "node", "status"],
            env={**os.environ, "CALICO_RUN_DIR": str(self.run_dir)},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )


def _name(ip: str) -> str:
    return ip.replace(".", "_")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def nodes() -> Iterator[tuple[BirdNode, BirdNode]]:
    processes: list[subprocess.Popen[bytes]] = []
    with (
        node_namespace("bgpa", f"{ADDRESS_A}/24") as pair,
        tempfile.TemporaryDirectory(prefix="ns-a-", dir="/tmp") as dir_a,
        tempfile.TemporaryDirectory(prefix="ns-b-", dir="/tmp") as dir_b,
    ):
        try:
            # The helper's peer namespace, the other end of the veth, is node B.
            sh(pair.peer, "ip", "addr", "add", f"{ADDRESS_B}/24", "dev", "eth0")
            a = BirdNode(pair.ns, ADDRESS_A, ADDRESS_B, Path(dir_a), processes)
            b = BirdNode(pair.peer, ADDRESS_B, ADDRESS_A, Path(dir_b), processes)
            for node in (a, b):
                calico_node = subprocess.Popen(["sleep", "600"])
                processes.append(calico_node)
                (node.run_dir / "calico-node.pid").write_text(f"{calico_node.pid}\n")
            yield a, b
        finally:
            for proc in processes:
                _stop(proc)


def _row(output: str, address: str) -> list[str]:
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells and cells[0] == address:
            return cells
    raise AssertionError(f"no row for {address} in:\n{output}")


def _wait_for(node: BirdNode, address: str, predicate: str, seconds: float = 60) -> list[str]:
    deadline = time.monotonic() + seconds
    last = ""
    while time.monotonic() < deadline:
        result = node.status()
        last = result.stdout + result.stderr
        if result.returncode == 0 and address in result.stdout:
            row = _row(result.stdout, address)
            if (row[4] == "Established") == (predicate == "established"):
                return row
        time.sleep(0.5)
    raise AssertionError(f"{address} never became {predicate}; last output:\n{last}")


def test_status_shows_the_mesh_peer_established_then_down_when_the_peer_stops(
    nodes: tuple[BirdNode, BirdNode],
) -> None:
    a, b = nodes
    a.start_bird()
    bird_b = b.start_bird()

    row = _wait_for(a, ADDRESS_B, "established")
    assert row[1:3] == ["node-to-node mesh", "up"]
    assert len(row[3]) == 8 and row[3].count(":") == 2  # iso short: HH:MM:SS today
    assert _wait_for(b, ADDRESS_A, "established")[2] == "up"

    result = a.status()
    assert result.stdout.startswith("Calico process is running.\n\nIPv4 BGP status\n+---")
    assert result.stdout.endswith("\nIPv6 BGP status\nNo IPv6 peers found.\n\n")

    _stop(bird_b)
    row = _wait_for(a, ADDRESS_B, "down")
    assert row[2] == "start" and row[4] != "Established"
    # B's BIRD is gone, so B's status says so rather than querying a dead socket.
    assert b.status().stdout == (
        "Calico process is running.\n\nThe BGP backend process (BIRD) is not running.\n\n"
    )
