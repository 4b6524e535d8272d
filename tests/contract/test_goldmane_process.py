"""calico-goldmane as a process: it stops promptly on SIGTERM, and refuses a busy port."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest

from tests.support.flow_processes import REPO

pytestmark = pytest.mark.contract

# Well under the 15 s window it used to wait out before it looked at a stop signal.
STOP_BOUND = 10
# Started by a parent that waits for its own signals with sigwait: the mask survives exec.
BLOCKED_START = (
    "import os, signal, sys\n"
    "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'pycalico.flows.main', *sys.argv[1:]])\n"
)
ARGS = ["--collector", "127.0.0.1:0", "--listen", "127.0.0.1:0"]


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _start(procs: list[subprocess.Popen[str]], blocked: bool) -> tuple[str, str]:
    prefix = [sys.executable, "-c", BLOCKED_START] if blocked else [
        sys.executable, "-m", "pycalico.flows.main"
    ]  # fmt: skip
    proc = subprocess.Popen(
        [*prefix, *ARGS], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    procs.append(proc)
    assert proc.stdout is not None
    words = proc.stdout.readline().split()  # "calico-goldmane: collector H:P, API http://H:P"
    return words[2].rstrip(","), words[4].removeprefix("http://")


@pytest.mark.parametrize("blocked", [False, True], ids=["plain", "started-with-signals-blocked"])
@pytest.mark.parametrize("busy", [False, True], ids=["idle", "with-a-stream-and-a-sender"])
def test_sigterm_stops_it_long_before_the_next_window_tick(
    started: list[subprocess.Popen[str]], blocked: bool, busy: bool
) -> None:
    collector, api = _start(started, blocked)
    held = []
    if busy:
        host, port = collector.rsplit(":", 1)
        held.append(socket.create_connection((host, int(port))))
        stream = urllib.request.urlopen(f"http://{api}/flows?watch=true", timeout=STOP_BOUND)
        held.append(stream)
    proc = started[0]
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=STOP_BOUND)
    finally:
        for thing in held:
            thing.close()
    assert proc.returncode == 0
    assert "SIGTERM received, stopping" in err


def test_a_busy_api_port_is_one_line_of_error_and_no_hang() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "pycalico.flows.main",
             "--collector", "127.0.0.1:0", "--listen", f"127.0.0.1:{port}"],
            cwd=REPO, capture_output=True, text=True, timeout=STOP_BOUND,
        )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr == (
        f"calico-goldmane: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    )
