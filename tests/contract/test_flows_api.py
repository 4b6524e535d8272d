"""whisker-backend's HTTP API as calico-goldmane serves it, asked over loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

from pycalico.flows.record import Action, EndpointType, PolicyTrace, Reporter
from pycalico.flows.sender import FlowSender
from tests.support.flow_processes import REPO, AggregatorProcess
from tests.support.flow_records import DENY_TIER_END, STAGED_DENY, flow

pytestmark = pytest.mark.contract


@pytest.fixture(scope="module")
def aggregator() -> Iterator[AggregatorProcess]:
    """One aggregator holding four flows: web allowed (Dst and Src), db denied, and a
    host's connection to the internet with a staged deny pending."""
    agg = AggregatorProcess().start()
    now = int(time.time())
    sender = FlowSender(agg.collector, retry_first=0.2).start()
    try:
        for record in (
            flow(start=now, dest_name="web-7c4b6-*", dest_port=80),
            flow(start=now, dest_name="web-7c4b6-*", dest_port=80, reporter=Reporter.SRC),
            flow(
                start=now,
                dest_name="db-0",
                dest_port=5432,
                action=Action.DENY,
                policies=PolicyTrace(enforced=(DENY_TIER_END,)),
            ),
            flow(
                start=now,
                source_name="node-1",
                source_namespace="-",
                source_type=EndpointType.HOST,
                dest_name="pub",
                dest_namespace="-",
                dest_type=EndpointType.NETWORK,
                dest_port=443,
                policies=PolicyTrace(pending=(STAGED_DENY,)),
            ),
        ):
            sender.send(record)
        assert sender.flush(30)
    finally:
        sender.close()
    try:
        yield agg
    finally:
        agg.close()


def test_flows_answer_in_whiskers_shape(aggregator: AggregatorProcess) -> None:
    status, body = aggregator.get("/flows")
    assert status == 200
    assert body["total"] == {"totalPages": 1}
    assert len(body["items"]) == 4
    item = next(i for i in body["items"] if i["dest_port"] == 5432)
    assert item["action"] == "Deny"
    assert item["policies"]["enforced"][0]["trigger"]["name"] == "deny-all"
    assert item["start_time"].endswith("Z")


def test_filters_are_url_encoded_json(aggregator: AggregatorProcess) -> None:
    denied = aggregator.flows(filters={"actions": ["Deny"]})
    assert [i["dest_name"] for i in denied] == ["db-0"]
    fuzzy = aggregator.flows(filters={"dest_names": [{"value": "web", "type": "Fuzzy"}]})
    assert sorted(i["reporter"] for i in fuzzy) == ["Dst", "Src"]
    public = aggregator.flows(filters={"dest_names": [{"value": "PUBLIC NETWORK"}]})
    assert [(i["source_namespace"], i["dest_name"]) for i in public] == [
        ("Global", "PUBLIC NETWORK")
    ]
    pending = aggregator.flows(filters={"pending_actions": ["Deny"]})
    assert [i["dest_port"] for i in pending] == [443]
    by_policy = aggregator.flows(filters={"policies": [{"name": "deny-all"}]})
    assert [i["dest_port"] for i in by_policy] == [5432]


def test_pages_and_sorting(aggregator: AggregatorProcess) -> None:
    status, body = aggregator.get("/flows", sortBy="DestName", page=1, pageSize=3)
    assert status == 200
    assert body["total"]["totalPages"] == 2
    assert [i["dest_name"] for i in body["items"]] == ["web-7c4b6-*"]
    _, first = aggregator.get("/flows", sortBy="DestName", page=0, pageSize=3)
    assert [i["dest_name"] for i in first["items"]][:2] == [
        "db-0",
        "PUBLIC NETWORK",
    ]  # by the stored name, pub


def test_filter_hints_list_values(aggregator: AggregatorProcess) -> None:
    status, body = aggregator.get("/flows-filter-hints", type="DestName")
    assert status == 200
    assert body["items"] == [{"value": v} for v in ("PUBLIC NETWORK", "db-0", "web-7c4b6-*")]
    _, kinds = aggregator.get(
        "/flows-filter-hints", type="PolicyKind", filters={"actions": ["Deny"]}
    )
    assert kinds["items"] == [{"value": "EndOfTier"}, {"value": "NetworkPolicy"}]


@pytest.mark.parametrize(
    ("path", "params", "status", "message"),
    [
        ("/flows", {"filters": "{nope"}, 400, "filters: not JSON"),
        ("/flows", {"sortBy": "Size"}, 400, "sortBy: unknown value 'Size'"),
        ("/flows", {"page": "-1"}, 400, "page must not be negative"),
        ("/flows-filter-hints", {}, 400, "type is required"),
        ("/flows-filter-hints", {"type": "Colour"}, 400, "type: unknown value 'Colour'"),
        ("/nothing", {}, 404, "no such path: /nothing"),
    ],
)
def test_bad_requests_get_one_line_json_errors(
    aggregator: AggregatorProcess, path: str, params: dict[str, str], status: int, message: str
) -> None:
    got, body = aggregator.get(path, **params)
    assert got == status
    assert message in body["error"]
    assert "\n" not in body["error"]


def test_only_get_is_served(aggregator: AggregatorProcess) -> None:
    request = urllib.request.Request(aggregator.url("/flows"), data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 405


def test_metrics_carry_goldmanes_counter_names(aggregator: AggregatorProcess) -> None:
    status, text = aggregator.get("/metrics")
    assert status == 200
    assert "goldmane_aggr_received_flows_total 4\n" in text
    assert "goldmane_aggr_dropped_flows_total 0\n" in text


def test_a_watch_streams_the_backlog_then_new_flows(aggregator: AggregatorProcess) -> None:
    url = aggregator.url(
        "/flows", watch="true", filters={"dest_ports": [{"value": 9999}, {"value": 80}]}
    )
    with urllib.request.urlopen(url, timeout=30) as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        backlog = [read_event(stream), read_event(stream)]
        assert sorted(e["reporter"] for e in backlog) == ["Dst", "Src"]
        sender = FlowSender(aggregator.collector, retry_first=0.2).start()
        try:
            sender.send(flow(start=int(time.time()), dest_port=9999, dest_name="new-*"))
            sender.send(flow(start=int(time.time()), dest_port=1234))  # filtered out
            assert sender.flush(30)
        finally:
            sender.close()
        event = read_event(stream)
        assert (event["dest_port"], event["dest_name"]) == (9999, "new-*")


def read_event(stream) -> dict:  # type: ignore[no-untyped-def]
    """The next `data:` event, skipping keepalive comments."""
    while True:
        line = stream.readline()
        assert line, "the stream ended"
        if line.startswith(b"data: "):
            assert stream.readline() == b"\n"
            return dict(json.loads(line[len(b"data: ") :]))


def test_an_address_in_use_is_one_line_and_exit_1(aggregator: AggregatorProcess) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pycalico.flows.main", "--collector", aggregator.collector,
         "--listen", "127.0.0.1:0"],
        cwd=REPO, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == (
        f"calico-goldmane: cannot listen on {aggregator.collector}: Address already in use\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen", "8080"], "'8080' is not HOST:PORT"),
        (["--aggregation-window", "0"], "'0' is not a positive whole number"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments_are_one_line(args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pycalico.flows.main", *args],
        cwd=REPO, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1
    assert message in result.stderr
    assert result.stderr.count("\n") == 1


def test_the_console_page_and_its_two_files_are_served_from_the_package(
    aggregator: AggregatorProcess,
) -> None:
    for path, kind, marker in (
        ("/", "text/html", '<script src="/console/console.js"'),
        ("/console/console.js", "text/javascript", "EventSource"),
        ("/console/console.css", "text/css", ".badge.Deny"),
    ):
        with urllib.request.urlopen(aggregator.url(path), timeout=10) as reply:
            assert reply.headers["Content-Type"].startswith(kind)
            assert marker in reply.read().decode()
