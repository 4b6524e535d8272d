"""The aggregator's state: records taken once, refused ones counted, queries and streams."""

from __future__ import annotations

import queue

import pytest

from pycalico.flows import query
from pycalico.flows.aggregator import Aggregator
from pycalico.flows.record import Action, PolicyTrace
from pycalico.flows.window import WindowSettings
from tests.support.flow_records import DENY_TIER_END, flow

BUCKET = 113_333_333 * 15


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def aggregator(now: float = BUCKET + 5, **settings: int) -> tuple[Aggregator, Clock]:
    clock = Clock(now)
    return Aggregator(WindowSettings(**settings), clock), clock


def test_a_resent_record_is_taken_once() -> None:
    agg, _ = aggregator()
    record = flow(start=BUCKET).to_json()
    assert agg.receive("felix-a", 1, record)
    assert agg.receive("felix-a", 1, record)
    items, _ = agg.list(query.ListQuery())
    assert [i["num_connections_started"] for i in items] == [1]
    assert (agg.collector.taken, agg.collector.duplicates) == (1, 1)
    assert agg.highest("felix-a") == 1


def test_two_senders_with_the_same_numbers_are_both_taken() -> None:
    agg, _ = aggregator()
    agg.receive("felix-a", 1, flow(start=BUCKET).to_json())
    agg.receive("felix-b", 1, flow(start=BUCKET).to_json())
    items, _ = agg.list(query.ListQuery())
    assert items[0]["num_connections_started"] == 2


def test_a_record_that_is_no_flow_is_refused_counted_and_not_read_again() -> None:
    agg, _ = aggregator()
    assert not agg.receive("felix-a", 1, {"start_time": "never"})
    assert agg.receive("felix-a", 1, {"start_time": "never"})  # the resend is a duplicate
    assert agg.collector.rejected == 1
    assert agg.list(query.ListQuery()) == ([], 0)


def test_listing_filters_sorts_and_pages() -> None:
    agg, _ = aggregator()
    for seq, port in enumerate((80, 443, 8080), start=1):
        agg.receive("felix-a", seq, flow(start=BUCKET, dest_port=port).to_json())
    denied = flow(start=BUCKET, action=Action.DENY, policies=PolicyTrace((DENY_TIER_END,)))
    agg.receive("felix-a", 4, denied.to_json())
    items, pages = agg.list(query.ListQuery(page=0, page_size=3))
    assert (len(items), pages) == (3, 2)
    deny_only = query.ListQuery(filter=query.Filter(actions=(Action.DENY,)))
    items, pages = agg.list(deny_only)
    assert [(i["action"], pages) for i in items] == [("Deny", 1)]


def test_a_listing_honours_the_time_bounds() -> None:
    agg, _ = aggregator(now=BUCKET + 5)
    agg.receive("felix-a", 1, flow(start=BUCKET - 60).to_json())
    agg.receive("felix-a", 2, flow(start=BUCKET, dest_port=443).to_json())
    items, _ = agg.list(query.ListQuery(start_time_gte=-30))
    assert [i["dest_port"] for i in items] == [443]
    items, _ = agg.list(query.ListQuery(start_time_lt=BUCKET))
    assert [i["dest_port"] for i in items] == [80]


def test_records_age_out_as_the_clock_moves() -> None:
    agg, clock = aggregator(history=2)
    agg.receive("felix-a", 1, flow(start=BUCKET).to_json())
    clock.now += 45
    assert agg.list(query.ListQuery()) == ([], 0)


def test_hints_list_values_of_matching_flows() -> None:
    agg, _ = aggregator()
    agg.receive("felix-a", 1, flow(start=BUCKET, dest_namespace="shop").to_json())
    agg.receive("felix-a", 2, flow(start=BUCKET, dest_namespace="bank", dest_port=1).to_json())
    items, pages = agg.hints(query.HintsQuery(query.HintType.DEST_NAMESPACE))
    assert (items, pages) == ([{"value": "bank"}, {"value": "shop"}], 1)
    only_80 = query.HintsQuery(query.HintType.DEST_NAMESPACE, filter=query.Filter(dest_ports=(80,)))
    assert agg.hints(only_80)[0] == [{"value": "shop"}]


def test_a_stream_gets_the_backlog_then_each_changed_aggregate_that_matches() -> None:
    agg, _ = aggregator()
    agg.receive("felix-a", 1, flow(start=BUCKET).to_json())
    # Not yet published when the stream starts: in its backlog, and not sent again.
    sub, backlog = agg.subscribe(query.ListQuery(filter=query.Filter(dest_ports=(80,))))
    assert [f.num_connections_started for f in backlog] == [1]
    assert agg.tick() == 1
    assert sub.events.empty()
    agg.receive("felix-a", 2, flow(start=BUCKET).to_json())
    agg.receive("felix-a", 3, flow(start=BUCKET).to_json())
    agg.receive("felix-a", 4, flow(start=BUCKET, dest_port=22).to_json())
    assert agg.tick() == 2
    event = sub.events.get_nowait()
    assert event is not None and event.num_connections_started == 3
    assert sub.events.empty()
    agg.unsubscribe(sub)
    agg.receive("felix-a", 5, flow(start=BUCKET).to_json())
    agg.tick()
    assert sub.events.empty()


def test_closing_streams_ends_each_with_none() -> None:
    agg, _ = aggregator()
    sub, _ = agg.subscribe(query.ListQuery())
    agg.close_streams()
    assert sub.events.get_nowait() is None
    with pytest.raises(queue.Empty):  # one end marker only
        sub.events.get_nowait()


def test_stats_count_received_dropped_unique_flows_and_duplicates() -> None:
    agg, _ = aggregator(max_flows_per_bucket=1)
    agg.receive("felix-a", 1, flow(start=BUCKET).to_json())
    agg.receive("felix-a", 2, flow(start=BUCKET, dest_port=1).to_json())
    agg.receive("felix-a", 2, flow(start=BUCKET, dest_port=1).to_json())
    stats = agg.stats()
    assert (stats.received, stats.dropped, stats.unique_flows) == (2, 1, 1)
    assert (stats.duplicates, stats.rejected, stats.senders) == (1, 0, 1)
