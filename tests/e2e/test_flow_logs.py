"""Flow logs in the lab (issue 20's checks): what Felix observes on every node reaches the
lab's calico-goldmane as Goldmane records — a denied connection as Deny by the tier's end
with its trigger, reported by the destination; an allowed one as Allow with bytes from both
reporters; a staged deny as a pending Deny while traffic flows; and after a restart of the
aggregator or of a calico-node, every connection started since is recorded once, and one
that spans the restart keeps its counters."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest

from pycalico.lab import cluster, goldmane
from pycalico.lab.state import LabState
from tests.support.lab_driver import (
    calicoctl,
    lab,
    lab_run,
    ping_stream,
    pod_ip,
    received,
    wait_for,
)

pytestmark = pytest.mark.e2e

FLUSH_SECONDS = 15  # the lab's flowLogsFlushInterval
RECORD_WAIT = FLUSH_SECONDS * 2 + 30
PINGS = 60  # 30 s of echo requests, every 0.5 s

DB_FROM_WEB = """apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: db-from-web, namespace: default}
spec:
  selector: app == 'db'
  types: [Ingress]
  ingress:
  - action: Allow
    protocol: TCP
    source: {selector: app == 'web'}
"""
STAGED_WEB_LOCKDOWN = """apiVersion: projectcalico.org/v3
kind: StagedNetworkPolicy
metadata: {name: web-lockdown, namespace: default}
spec:
  selector: app == 'web'
  types: [Ingress]
  ingress:
  - action: Deny
"""


def flows(name: str) -> list[dict[str, Any]]:
    out = lab("flows", "--name", name, "-o", "json")
    return [json.loads(line) for line in out.splitlines() if line]


def matching(name: str, **wanted: Any) -> list[dict[str, Any]]:
    return [f for f in flows(name) if all(f.get(k) == v for k, v in wanted.items())]


def curl(name: str, pod: str, url: str) -> int:
    return lab_run("exec", pod, "--name", name, "--", "curl", "-sS", "-m", "2", url).returncode


def started(name: str, port: int, reporter: str) -> int:
    return sum(
        f["num_connections_started"] for f in matching(name, dest_port=port, reporter=reporter)
    )


def icmp(name: str, reporter: str, counter: str) -> int:
    return sum(f[counter] for f in matching(name, protocol="icmp", reporter=reporter))


def lab_with_pods(make_lab: Callable[..., str]) -> str:
    name = make_lab("--nodes", "2")
    lab("pod", "add", "client", "--node", "node1", "--labels", "app=client", "--name", name)
    lab("pod", "add", "web", "--node", "node2", "--labels", "app=web", "--serve",
        "80,8080,8081,8082", "--name", name)  # fmt: skip
    lab("pod", "add", "db", "--node", "node2", "--labels", "app=db", "--serve", "5432",
        "--name", name)  # fmt: skip
    return name


def test_denied_allowed_and_pending_verdicts_reach_the_aggregator(
    make_lab: Callable[..., str],
) -> None:
    name = lab_with_pods(make_lab)
    calicoctl(name, "apply", "-f", "-", stdin=DB_FROM_WEB)
    calicoctl(name, "apply", "-f", "-", stdin=STAGED_WEB_LOCKDOWN)
    web, db = pod_ip(name, "web"), pod_ip(name, "db")
    assert curl(name, "client", f"http://{db}:5432/") == 28  # dropped: curl timed out
    assert curl(name, "client", f"http://{web}:80/") == 0  # flows, staged deny or not

    def denied() -> list[dict[str, Any]]:
        return matching(name, dest_port=5432, action="Deny")

    wait_for("the denied connection's record", lambda: bool(denied()), RECORD_WAIT)
    [record] = denied()
    assert record["reporter"] == "Dst" and record["source_name"] == "client"
    [hit] = record["policies"]["enforced"]
    assert (hit["kind"], hit["tier"], hit["rule_index"]) == ("EndOfTier", "default", -1)
    assert (hit["trigger"]["kind"], hit["trigger"]["name"]) == (
        "CalicoNetworkPolicy", "db-from-web",
    )  # fmt: skip

    def allowed(reporter: str) -> list[dict[str, Any]]:
        return matching(name, dest_port=80, action="Allow", reporter=reporter)

    def counted(reporter: str) -> tuple[int, int]:
        """Bytes in and out over the records (a connection's bytes may come in the
        interval after its start)."""
        records = allowed(reporter)
        return sum(f["bytes_in"] for f in records), sum(f["bytes_out"] for f in records)

    for reporter in ("Src", "Dst"):
        wait_for(f"the allowed one's bytes from {reporter}",
                 lambda r=reporter: min(counted(r)) > 0, RECORD_WAIT)  # fmt: skip
        assert {(f["source_name"], f["dest_name"]) for f in allowed(reporter)} == {
            ("client", "web")
        }
    pending = allowed("Dst")[0]["policies"]["pending"]
    assert [(h["kind"], h["name"], h["action"]) for h in pending] == [
        ("StagedNetworkPolicy", "web-lockdown", "Deny")
    ]
    assert allowed("Src")[0]["policies"]["pending"][-1]["action"] == "Allow"  # no staged egress


def test_after_a_restart_every_new_connection_is_recorded_once(
    make_lab: Callable[..., str],
) -> None:
    name = lab_with_pods(make_lab)
    web = pod_ip(name, "web")
    assert curl(name, "client", f"http://{web}:80/") == 0
    wait_for("a first record", lambda: started(name, 80, "Dst") == 1, RECORD_WAIT)

    state = LabState.load(name)
    aggregator = state.pids[goldmane.PID_KEY]
    os.kill(aggregator, signal.SIGTERM)
    wait_for("calico-goldmane to stop", lambda: not os.path.exists(f"/proc/{aggregator}"), 30)
    goldmane.start(state)
    for _ in range(3):
        assert curl(name, "client", f"http://{web}:8080/") == 0

    def after_aggregator() -> bool:
        return started(name, 8080, "Src") == 3 and started(name, 8080, "Dst") == 3

    wait_for("the connections since the aggregator's restart", after_aggregator, RECORD_WAIT)
    # Felix resent what the new aggregator lacked: the first connection is back, once.
    wait_for("the resent record", lambda: started(name, 80, "Dst") == 1, RECORD_WAIT)

    # A ping stream spans node2's restart: its counters go on where they were.
    pings = ping_stream(name, "client", web, PINGS, 0.5)
    time.sleep(5)
    pid = state.pids["calico-node:node2"]
    os.kill(pid, signal.SIGTERM)
    wait_for("calico-node on node2 to stop", lambda: not os.path.exists(f"/proc/{pid}"), 60)
    cluster.start_node(state, "node2")
    wait_for("node2 ready", lambda: cluster.node_ready(state, "node2"), 60)
    for _ in range(4):
        assert curl(name, "client", f"http://{web}:8081/") == 0

    def after_node() -> bool:
        return started(name, 8081, "Src") == 4 and started(name, 8081, "Dst") == 4

    wait_for("the connections since node2's restart", after_node, RECORD_WAIT)
    replied, output = received(pings)
    assert replied == PINGS, output

    def echoes() -> tuple[int, int]:
        return icmp(name, "Src", "packets_out"), icmp(name, "Dst", "packets_in")

    wait_for("every echo request counted by both ends", lambda: echoes() == (PINGS, PINGS),
             RECORD_WAIT)  # fmt: skip
    time.sleep(FLUSH_SECONDS + 5)  # another flush on both nodes: nothing may come twice
    assert [started(name, port, r) for port in (80, 8080, 8081) for r in ("Src", "Dst")] == [
        1, 1, 3, 3, 4, 4,
    ]  # fmt: skip
    assert echoes() == (PINGS, PINGS)
