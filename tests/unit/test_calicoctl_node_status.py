"""`calicoctl node status` against a fake BIRD: exact output, and every way it can go wrong.

The fake BIRD is a Unix socket server in a private run directory that speaks BIRD's control
protocol (the `0001` hello, then canned `show protocols` output ending in `0000`). Pid files
name this test process (alive) or processes the test started (exited, or zombies).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pycalico.ctl import node_status
from pycalico.ctl.errors import CtlError
from tests.support.calicoctl_harness import Result

HELLO = "0001 BIRD 2.0.12 ready.\n"

# BIRD 2.0.12's reply, trailing spaces and all, with rows that are not Calico's BGP peers.
PROTOCOLS = (
    "2002-Name       Proto      Table      State  Since         Info\n"
    "1002-device1    Device     ---        up     09:20:58      \n"
    " kernel1    Kernel     master4    up     09:20:58      \n"
    " kernel2    Kernel     master6    up     09:20:58      \n"
    " static1    Static     master4    up     09:20:58      \n"
    " direct1    Direct     ---        up     09:20:58      \n"
    " Mesh_192_168_56_12 BGP        ---        up     09:21:05      Established   \n"
    " Mesh_192_168_56_13 BGP        ---        start  09:21:02      Active        "
    "Socket: Connection refused\n"
    " Node_fd00__2 BGP        ---        up     09:21:07      Established   \n"
    " Global_10_0_0_1_port_1179 BGP        ---        start  09:21:02      Connect       \n"
    " Node_static Static     master4    up     09:20:58      \n"
    " Peer_10_0_0_9 BGP        ---        up     09:21:07      Established   \n"
    " Mesh_fd00_1__3 BGP        ---        start  09:21:02      Passive       \n"
    "0000 \n"
)

NO_PEERS = (
    "2002-Name       Proto      Table      State  Since         Info\n"
    "1002-device1    Device     ---        up     09:20:58      \n"
    " kernel1    Kernel     master4    up     09:20:58      \n"
    "0000 \n"
)

EXPECTED = (
    "Calico process is running.\n"
    "\n"
    "IPv4 BGP status\n"
    "+---------------+-------------------+-------+----------+--------------------------------+\n"
    "| PEER ADDRESS  |     PEER TYPE     | STATE |  SINCE   |              INFO              |\n"
    "+---------------+-------------------+-------+----------+--------------------------------+\n"
    "| 192.168.56.12 | node-to-node mesh | up    | 09:21:05 | Established                    |\n"
    "| 192.168.56.13 | node-to-node mesh | start | 09:21:02 | Active Socket: Connection      |\n"
    "|               |                   |       |          | refused                        |\n"
    "| 10.0.0.1      | global            | start | 09:21:02 | Connect                        |\n"
    "+---------------+-------------------+-------+----------+--------------------------------+\n"
    "\n"
    "IPv6 BGP status\n"
    "+--------------+-------------------+-------+----------+-------------+\n"
    "| PEER ADDRESS |     PEER TYPE     | STATE |  SINCE   |    INFO     |\n"
    "+--------------+-------------------+-------+----------+-------------+\n"
    "| fd00::2      | node specific     | up    | 09:21:07 | Established |\n"
    "| fd00:1::3    | node-to-node mesh | start | 09:21:02 | Passive     |\n"
    "+--------------+-------------------+-------+----------+-------------+\n"
    "\n"
)


class FakeBird:
    """Answers every connection with the hello, then `reply` once a command has arrived."""

    def __init__(self, path: str, reply: str, hang: bool = False) -> None:
        self.commands: list[str] = []
        self._reply, self._hang = reply, hang
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(path)
        self._server.listen()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(HELLO.encode())
                command = conn.makefile("r").readline()
                self.commands.append(command)
                if self._hang:
                    self._stop.wait()
                    continue
                conn.sendall(self._reply.encode())

    def close(self) -> None:
        self._stop.set()
        self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        self._thread.join(timeout=5)


@pytest.fixture
def run_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    # Short and private: a Unix socket path must stay under 108 bytes.
    with tempfile.TemporaryDirectory(prefix="ns-", dir="/tmp") as directory:
        monkeypatch.setenv("CALICO_RUN_DIR", directory)
        monkeypatch.setattr(os, "geteuid", lambda: 0)
        yield Path(directory)


@pytest.fixture
def bird(run_dir: Path) -> Iterator[Callable[..., FakeBird]]:
    started: list[FakeBird] = []

    def start(reply: str = PROTOCOLS, hang: bool = False) -> FakeBird:
        fake = FakeBird(str(run_dir / "bird.ctl"), reply, hang)
        started.append(fake)
        (run_dir / "bird.pid").write_text(f"{os.getpid()}\n")
        return fake

    yield start
    for fake in started:
        fake.close()


def running_node(run_dir: Path) -> None:
    (run_dir / "calico-node.pid").write_text(f"{os.getpid()}\n")


def status(capsys: pytest.CaptureFixture[str], *args: str) -> Result:
    from pycalico.ctl.main import main

    rc = main(["node", "status", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return Result(rc, out, err)


@contextlib.contextmanager
def exited_process(zombie: bool) -> Iterator[int]:
    """The pid of a process that has exited: reaped (gone) or not yet (a zombie)."""
    proc = subprocess.Popen(["true"])
    try:
        if zombie:
            deadline = time.monotonic() + 10
            while Path(f"/proc/{proc.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
                assert time.monotonic() < deadline, "child never exited"
                time.sleep(0.01)
        else:
            proc.wait()
        yield proc.pid
    finally:
        proc.wait()


def test_prints_v4_and_v6_peer_tables_byte_for_byte_as_calicoctl(
    run_dir: Path, bird: Callable[..., FakeBird], capsys: pytest.CaptureFixture[str]
) -> None:
    running_node(run_dir)
    fake = bird()
    result = status(capsys)
    assert result == Result(0, EXPECTED, "")
    # One query per family, each the command calicoctl sends.
    assert fake.commands == ["show protocols\n", "show protocols\n"]


def test_without_peers_each_family_says_no_peers_found(
    run_dir: Path, bird: Callable[..., FakeBird], capsys: pytest.CaptureFixture[str]
) -> None:
    running_node(run_dir)
    bird(NO_PEERS)
    assert status(capsys) == Result(
        0,
        "Calico process is running.\n\nIPv4 BGP status\nNo IPv4 peers found.\n\n"
        "IPv6 BGP status\nNo IPv6 peers found.\n\n",
        "",
    )


def test_bird_1_lower_case_headings_are_accepted_too(
    run_dir: Path, bird: Callable[..., FakeBird], capsys: pytest.CaptureFixture[str]
) -> None:
    running_node(run_dir)
    bird(
        PROTOCOLS.replace(
            "Name       Proto      Table      State  Since         Info",
            "name     proto    table    state  since       info",
        )
    )
    assert status(capsys) == Result(0, EXPECTED, "")


def test_unknown_table_headings_are_an_error(
    run_dir: Path, bird: Callable[..., FakeBird], capsys: pytest.CaptureFixture[str]
) -> None:
    running_node(run_dir)
    bird(PROTOCOLS.replace("Since         Info", "Since"))
    result = status(capsys)
    assert result == Result(
        1,
        "Calico process is running.\n\nIPv4 BGP status\n",
        "Error executing command: unknown BIRD table output format\n",
    )


def test_an_unexpected_reply_line_is_an_error(
    run_dir: Path, bird: Callable[..., FakeBird], capsys: pytest.CaptureFixture[str]
) -> None:
    running_node(run_dir)
    bird("8003 Access denied\n")
    result = status(capsys)
    assert (result.rc, result.err) == (
        1,
        "Error executing command: unexpected output line from BIRD\n",
    )


def test_a_bird_that_never_answers_times_out(
    run_dir: Path,
    bird: Callable[..., FakeBird],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    running_node(run_dir)
    monkeypatch.setattr(node_status, "BIRD_TIMEOUT", 0.2)
    bird(hang=True)
    started = time.monotonic()
    result = status(capsys)
    assert (result.rc, result.err) == (1, "Error executing command: i/o timeout\n")
    assert time.monotonic() - started < 5


def test_bird_running_without_its_socket_reports_the_dial_error_per_family(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    running_node(run_dir)
    (run_dir / "bird.pid").write_text(f"{os.getpid()}\n")
    socket_path = run_dir / "bird.ctl"
    # As calicoctl, the error line has no newline of its own.
    assert status(capsys) == Result(
        0,
        "Calico process is running.\n\nIPv4 BGP status\n"
        "Error querying BIRD: unable to connect to BIRDv4 socket: "
        f"dial unix {socket_path}: connect: no such file or directory\n"
        "IPv6 BGP status\n"
        "Error querying BIRD: unable to connect to BIRDv6 socket: "
        f"dial unix {socket_path}: connect: no such file or directory\n",
        "",
    )


def test_a_socket_nobody_listens_on_is_connection_refused(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    running_node(run_dir)
    (run_dir / "bird.pid").write_text(f"{os.getpid()}\n")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(run_dir / "bird.ctl"))
    stale.close()  # bound, never listened: what a killed BIRD leaves behind
    out = status(capsys).out
    assert f"dial unix {run_dir / 'bird.ctl'}: connect: connection refused\n" in out


def test_bird_not_running_is_said_as_calico_says_it(
    run_dir: Path, bird: Callable[..., FakeBird], capsys: pytest.CaptureFixture[str]
) -> None:
    running_node(run_dir)
    fake = bird()
    (run_dir / "bird.pid").unlink()
    assert status(capsys) == Result(
        0,
        "Calico process is running.\n\nThe BGP backend process (BIRD) is not running.\n\n",
        "",
    )
    assert fake.commands == []  # the pid file decides; the socket is not even tried


@pytest.mark.parametrize("zombie", [False, True], ids=["exited", "zombie"])
def test_bird_pid_of_a_dead_process_means_bird_is_not_running(
    run_dir: Path, bird: Callable[..., FakeBird], capsys: pytest.CaptureFixture[str], zombie: bool
) -> None:
    running_node(run_dir)
    bird()
    with exited_process(zombie) as pid:
        (run_dir / "bird.pid").write_text(f"{pid}\n")
        out = status(capsys).out
    assert "The BGP backend process (BIRD) is not running." in out


def test_no_calico_node_pid_file_means_not_running(
    run_dir: Path, bird: Callable[..., FakeBird], capsys: pytest.CaptureFixture[str]
) -> None:
    bird()
    assert status(capsys) == Result(1, "", "Calico process is not running.\n")


@pytest.mark.parametrize("zombie", [False, True], ids=["exited", "zombie"])
def test_calico_node_pid_of_a_dead_process_means_not_running(
    run_dir: Path, capsys: pytest.CaptureFixture[str], zombie: bool
) -> None:
    with exited_process(zombie) as pid:
        (run_dir / "calico-node.pid").write_text(f"{pid}\n")
        assert status(capsys) == Result(1, "", "Calico process is not running.\n")


@pytest.mark.parametrize("content", ["", "not-a-pid\n", "-1\n", "0\n"])
def test_a_garbled_pid_file_means_not_running(
    run_dir: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    (run_dir / "calico-node.pid").write_text(content)
    assert status(capsys) == Result(1, "", "Calico process is not running.\n")


def test_the_default_run_directory_is_var_run_calico(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    monkeypatch.delenv("CALICO_RUN_DIR", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(node_status, "pid_file_alive", lambda path: seen.append(path) or False)
    with pytest.raises(CtlError, match="Calico process is not running"):
        node_status.run(["status"])
    assert seen == ["/var/run/calico/calico-node.pid"]


def test_needs_root(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert status(capsys) == Result(1, "Need super user privileges: Operation not permitted\n", "")


@pytest.mark.parametrize(
    "args", [("node",), ("node", "stats"), ("node", "status", "--bogus")], ids=str
)
def test_bad_node_command_lines_are_one_line_usage_errors(
    args: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    from pycalico.ctl.main import main

    assert main(list(args)) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"Invalid option: 'calicoctl {' '.join(args)}'")
    assert err.count("\n") == 1


def test_help_prints_the_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert status(capsys, "--help").out.startswith("Usage:\n  calicoctl node status")
