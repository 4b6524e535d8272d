"""Flow logs in a kernel: Felix's rendered table with flow logs on logs real connections to
NFLOG, and the collector turns them, with conntrack's counters, into records (served by the
local reporter on its unix socket too)."""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from pycalico.felix.calc.settings import Settings
from pycalico.felix.collector import flow_view
from pycalico.felix.collector.collector import FlowCollector, FlowDirs
from pycalico.felix.dataplane.nftables import NftablesManager
from pycalico.felix.rules import policy as nft
from pycalico.flows.record import Action, PolicyKind, Reporter
from pycalico.netns import in_netns
from pycalico.policy import calc
from tests.integration.test_felix_policy import (
    PROFILE,
    TIERS,
    WEB_FROM_CLIENT,
    connects,
    endpoint,
    node_with_pods,
    sh,
)

pytestmark = pytest.mark.integration


def wait_for(what: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not what():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.2)


def exchange(ns: str, ip: str, port: int) -> None:
    """A connection that carries data both ways (the echo server answers)."""
    code = (
        "import socket\n"
        f"s=socket.create_connection(('{ip}',{port}),timeout=5)\n"
        "s.sendall(b'hello\\n');s.recv(100);s.close()\n"
    )
    sh(ns, sys.executable, "-c", code)


def get_unix(path: str, target: str) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(path)
        sock.sendall(f"GET {target} HTTP/1.0\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    loaded: dict[str, Any] = json.loads(data.split(b"\r\n\r\n", 1)[1])
    return loaded


@dataclass
class FelixNode:
    collector: FlowCollector
    client_ns: str  # the client pod's; the web pod allows port 80 from it, not 81
    web_ns: str
    web_ip: str
    state_dir: str
    closed: bool = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.collector.close()


@contextlib.contextmanager
def felix_node(settings: Settings) -> Iterator[FelixNode]:
    """A node namespace with two pods, Felix's rules with flow logs on, and a started
    collector (closed again at the end, if the test did not)."""
    with (
        node_with_pods(2) as (node, pods),
        contextlib.closing(NftablesManager()) as manager,
        tempfile.TemporaryDirectory() as state_dir,
    ):
        (client_ns, client_if, client_ip), (web_ns, web_if, web_ip) = pods
        client, web = (
            endpoint(client_if, client_ip, app="client"),
            endpoint(web_if, web_ip, app="web"),
        )
        endpoints = [client, web]
        inputs = calc.Inputs(endpoints, [WEB_FROM_CLIENT], {"kns.default": PROFILE}, TIERS)
        state = calc.calculate("node1", inputs)
        renderer = nft.PolicyRenderer()
        path = f"/run/netns/{node}"
        in_netns(path, lambda: manager.write(renderer.render(state, flow_logs=True)))
        view = flow_view.build("node1", endpoints, {}, [], state)

        def start() -> FlowCollector:
            made = FlowCollector("node1", FlowDirs(state_dir, state_dir), renderer.prefixes)
            made.update(settings, lambda: (view, None), False)
            return made.start()

        made = FelixNode(in_netns(path, start), client_ns, web_ns, web_ip, state_dir)
        try:
            yield made
        finally:
            made.close()


def test_connections_through_felix_rules_become_records_with_their_rules_and_bytes() -> None:
    settings = Settings(flow_logs_local_reporter="Enabled", flow_logs_flush_interval=3600.0)
    with felix_node(settings) as node:
        client_ns, web_ip, collector = node.client_ns, node.web_ip, node.collector
        wait_for(lambda: connects(client_ns, web_ip, 80))  # the echo server may be starting
        exchange(client_ns, web_ip, 80)
        assert not connects(client_ns, web_ip, 81)  # the policy selects web: end of tier
        # Two dumps after the connections: the second began after both had ended.
        seen = collector.dumps
        wait_for(lambda: collector.dumps >= seen + 2)
        records = collector.flush(time.time())
        served = get_unix(f"{node.state_dir}/flows/flows.sock", "/flows")
    allowed = [f for f in records if f.key.dest_port == 80]
    by_reporter = {f.key.reporter: f for f in allowed}
    assert set(by_reporter) == {Reporter.SRC, Reporter.DST}
    for flow in allowed:
        assert flow.key.action == Action.ALLOW and flow.bytes_out > 0 and flow.bytes_in > 0
    src, dst = by_reporter[Reporter.SRC], by_reporter[Reporter.DST]
    assert src.key.policies.enforced[0].kind == PolicyKind.PROFILE  # the client's egress
    hit = dst.key.policies.enforced[0]
    assert (hit.kind, hit.name, hit.rule_index) == (PolicyKind.CALICO_NETWORK_POLICY, "web", 0)
    denied = [f for f in records if f.key.dest_port == 81 and f.key.reporter == Reporter.DST]
    assert [f.key.action for f in denied] == [Action.DENY]
    [end] = denied[0].key.policies.enforced
    assert end.kind == PolicyKind.END_OF_TIER and end.trigger is not None
    assert end.trigger.name == "web" and denied[0].packets_in >= 1
    assert {(i["dest_port"], i["reporter"], i["action"]) for i in served["items"]} == {
        (f.key.dest_port, f.key.reporter.value, f.key.action.value) for f in records
    }


# Long enough for the polling the collector did before to show (every thread woke up every
# second): a window to observe that nothing happens in, not a timing asserted.
QUIET = 3.0


def listening(ns: str, port: int) -> bool:
    """Seen from inside the pod, so that no packet meets the node's rules (and NFLOG)."""
    return bool(sh(ns, "ss", "-Htln", f"sport = :{port}").stdout.strip())


def connections_to(node: FelixNode, port: int) -> int:
    """Connections started to `port`, as the local reporter serves them (the destination's
    records: both ends are local, each is reported twice)."""
    served = get_unix(f"{node.state_dir}/flows/flows.sock", "/flows")
    return sum(
        item["num_connections_started"]
        for item in served["items"]
        if item["dest_port"] == port and item["reporter"] == Reporter.DST.value
    )


def test_an_idle_collector_sleeps_until_a_connection_is_logged() -> None:
    settings = Settings(flow_logs_local_reporter="Enabled", flow_logs_flush_interval=3600.0)
    with felix_node(settings) as node:
        collector = node.collector
        wait_for(lambda: collector.dormant)
        time.sleep(QUIET)
        assert (collector.reads, collector.turns, collector.dumps) == (0, 0, 0)
        wait_for(lambda: listening(node.web_ns, 80))
        exchange(node.client_ns, node.web_ip, 80)
        wait_for(lambda: collector.dumps >= 1)
        assert collector.reads >= 1 and not collector.dormant


def test_a_collector_reports_the_ended_connections_before_it_sleeps_again() -> None:
    settings = Settings(flow_logs_local_reporter="Enabled", flow_logs_flush_interval=2.0)
    with felix_node(settings) as node:
        collector = node.collector
        wait_for(lambda: collector.dormant and listening(node.web_ns, 80))
        exchange(node.client_ns, node.web_ip, 80)  # the first connection logged
        wait_for(lambda: collector.dumps >= 1 and collector.dormant)
        assert connections_to(node, 80) == 1  # flushed before it slept
        turns, dumps = collector.turns, collector.dumps
        time.sleep(QUIET)
        assert (collector.turns, collector.dumps) == (turns, dumps)
        exchange(node.client_ns, node.web_ip, 80)
        wait_for(lambda: collector.dumps > dumps and collector.dormant)
        assert connections_to(node, 80) == 2


def test_close_ends_a_collector_whose_threads_wait_with_no_timeout() -> None:
    settings = Settings(flow_logs_local_reporter="Enabled", flow_logs_flush_interval=3600.0)
    with felix_node(settings) as node:
        wait_for(lambda: node.collector.dormant)
        closer = threading.Thread(target=node.close, daemon=True)
        closer.start()
        closer.join(timeout=30)
        assert not closer.is_alive()
