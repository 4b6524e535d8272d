"""`calicoctl flows` (the console script) against a real calico-goldmane on loopback."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from pycalico.flows.record import Action, PolicyTrace, Reporter
from pycalico.flows.sender import FlowSender
from tests.support.calicoctl_harness import CALICOCTL
from tests.support.flow_processes import AggregatorProcess
from tests.support.flow_records import DENY_TIER_END, STAGED_DENY, flow

pytestmark = pytest.mark.contract


def send(agg: AggregatorProcess, *records: object) -> None:
    sender = FlowSender(agg.collector, retry_first=0.2).start()
    try:
        for record in records:
            sender.send(record)  # type: ignore[arg-type]
        assert sender.flush(30)
    finally:
        sender.close()


@pytest.fixture(scope="module")
def aggregator() -> Iterator[AggregatorProcess]:
    agg = AggregatorProcess().start()
    now = int(time.time())
    send(
        agg,
        flow(start=now - 120, dest_name="web-7c4b6-*", dest_port=80),
        flow(start=now, dest_name="web-7c4b6-*", dest_port=80, reporter=Reporter.SRC),
        flow(
            start=now,
            dest_name="db-0",
            dest_port=5432,
            action=Action.DENY,
            policies=PolicyTrace(enforced=(DENY_TIER_END,)),
        ),
        flow(start=now, source_namespace="bank", source_name="teller-*", dest_port=443,
             policies=PolicyTrace(pending=(STAGED_DENY,))),
    )  # fmt: skip
    try:
        yield agg
    finally:
        agg.close()


def calicoctl(agg: AggregatorProcess | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "TZ": "UTC"}
    if agg is not None:
        env["CALICO_FLOWS_SERVER"] = f"http://{agg.api}"
    return subprocess.run(
        [CALICOCTL, "flows", *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_every_flow_is_one_line_oldest_first(aggregator: AggregatorProcess) -> None:
    result = calicoctl(aggregator)
    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    assert "-> shop/web-7c4b6-*:80 tcp INGRESS ALLOWED BY CalicoNetworkPolicy" in lines[0]


def test_deny_filter_names_the_tier_end_and_its_policy(aggregator: AggregatorProcess) -> None:
    result = calicoctl(aggregator, "--action", "deny")
    assert result.stdout.splitlines() == [
        result.stdout.splitlines()[0].split(": ", 1)[0]
        + ": shop/client-5d8f9-* -> shop/db-0:5432 tcp INGRESS DENIED BY end of tier default "
        "(selected by NetworkPolicy shop/deny-all)"
    ]


@pytest.mark.parametrize(
    ("args", "ports"),
    [
        (["--to", "shop/web-7c4b6-x2z4k"], [80, 80, 443]),  # a pod of the workload
        (["--to", "shop/db-0"], [5432]),
        (["--to", "shop/"], [80, 80, 443, 5432]),
        (["--from", "bank/teller-abc"], [443]),
        (["--port", "443", "--port", "5432"], [443, 5432]),
        (["--policy", "deny-all"], [5432]),
        (["--policy", "shop/lockdown"], [443]),  # staged policies count
        (["--since", "60s"], [80, 443, 5432]),
        (["--last", "1"], None),
    ],
)
def test_filters(aggregator: AggregatorProcess, args: list[str], ports: list[int] | None) -> None:
    result = calicoctl(aggregator, *args, "-o", "json")
    assert result.returncode == 0, result.stderr
    items = [json.loads(line) for line in result.stdout.splitlines()]
    if ports is None:
        assert len(items) == 1
    else:
        assert sorted(i["dest_port"] for i in items) == ports


def test_wide_shows_counters(aggregator: AggregatorProcess) -> None:
    result = calicoctl(aggregator, "-o", "wide", "--port", "5432")
    assert "(connections 1 started, 1 completed, 0 live; packets 4 in, 6 out;" in result.stdout


def follow(server: str, *args: str) -> subprocess.Popen[str]:
    """`calicoctl flows --follow` started as a terminal starts a foreground command: with
    SIGINT at its default. A command started by `cmd &` from a script or a subshell (as a
    suite run in the background is) inherits SIGINT ignored, and Python, like Go's calicoctl,
    keeps it ignored, so a test that sends SIGINT must not depend on how it was started."""
    env = {"PATH": os.environ["PATH"], "TZ": "UTC", "CALICO_FLOWS_SERVER": server}
    return subprocess.Popen(
        ["env", "--default-signal=INT", CALICOCTL, "flows", "--follow", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def stop(proc: subprocess.Popen[str], sig: int) -> tuple[str, str]:
    """Send `sig` and wait for the end; a command still running a minute later is killed
    (by its PID) so that a failing test leaves nothing behind. Its stdout and stderr."""
    proc.send_signal(sig)
    try:
        return proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise


@pytest.fixture
def silent_stream() -> Iterator[socket.socket]:
    """A listening socket on loopback; the test accepts and answers by hand."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(60)
        yield server


def test_follow_prints_flows_as_they_come(aggregator: AggregatorProcess) -> None:
    proc = follow(f"http://{aggregator.api}", "--since", "1h", "--port", "6000")
    try:
        # Whether it arrives before the stream starts (backlog) or after (an event), the
        # flow is printed once.
        send(aggregator, flow(start=int(time.time()), dest_port=6000, dest_name="late-*"))
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "no line within 30 s"
        assert "-> shop/late-*:6000 tcp INGRESS ALLOWED" in proc.stdout.readline()
    finally:
        _, err = stop(proc, signal.SIGINT)
    assert proc.returncode == 130
    assert err == "interrupted\n"


@pytest.mark.parametrize(
    ("sig", "returncode", "stderr"),
    [(signal.SIGINT, 130, "interrupted\n"), (signal.SIGTERM, -signal.SIGTERM, "")],
)
def test_a_signal_ends_follow_while_the_stream_sends_nothing(
    silent_stream: socket.socket, sig: int, returncode: int, stderr: str
) -> None:
    host, port = silent_stream.getsockname()
    proc = follow(f"http://{host}:{port}")
    try:
        conn, _ = silent_stream.accept()
    except TimeoutError:
        stop(proc, signal.SIGKILL)
        raise
    with conn:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(4096)
            assert chunk, "calicoctl closed the connection before its request was whole"
            request += chunk
        assert request.startswith(b"GET /flows?")
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
        # calicoctl is now blocked reading a stream that sends nothing more.
        out, err = stop(proc, sig)
    assert (proc.returncode, out, err) == (returncode, "", stderr)


def test_an_unreachable_aggregator_is_one_line() -> None:
    agg = AggregatorProcess().start()
    api = agg.api
    agg.stop()
    result = subprocess.run(
        [CALICOCTL, "flows", "--server", f"http://{api}"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == (
        f"cannot reach the flow aggregator at http://{api}: Connection refused\n"
    )


def test_a_refused_query_shows_the_servers_reason(aggregator: AggregatorProcess) -> None:
    bad = subprocess.run(
        [CALICOCTL, "flows", "--server", f"http://{aggregator.api}/nothing"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 1
    assert bad.stderr == (
        f"the flow aggregator at http://{aggregator.api}/nothing refused the query: "
        "no such path: /nothing/flows\n"
    )
