"""The Goldmane flow record: its JSON form, merging, and refusing what is not a record."""

from __future__ import annotations

import json

import pytest

from pycalico.flows.record import (
    Action,
    Flow,
    FlowKey,
    PolicyHit,
    PolicyTrace,
    RecordError,
    labels_of,
)
from tests.support.flow_records import ALLOW_WEB, DENY_TIER_END, STAGED_DENY, flow, flow_key


def test_a_flow_survives_its_json_form_with_every_field_and_a_nested_trigger() -> None:
    original = flow(
        policies=PolicyTrace(enforced=(DENY_TIER_END,), pending=(STAGED_DENY, ALLOW_WEB)),
        dest_service_name="web",
        dest_service_namespace="shop",
        dest_service_port_name="http",
        dest_service_port=8080,
        num_connections_live=3,
    )
    text = json.dumps(original.to_json())
    assert Flow.from_json(json.loads(text)) == original


def test_json_uses_goldmane_proto_field_names_and_enum_names() -> None:
    data = flow(policies=PolicyTrace(enforced=(DENY_TIER_END,)), action=Action.DENY).to_json()
    assert set(data) == {
        "key", "start_time", "end_time", "source_labels", "dest_labels", "packets_in",
        "packets_out", "bytes_in", "bytes_out", "num_connections_started",
        "num_connections_completed", "num_connections_live",
    }  # fmt: skip
    key = data["key"]
    assert key["action"] == "Deny"
    assert key["reporter"] == "Dst"
    assert key["source_type"] == "WorkloadEndpoint"
    hit = key["policies"]["enforced_policies"][0]
    assert hit["kind"] == "EndOfTier"
    assert hit["rule_index"] == -1
    assert hit["trigger"]["kind"] == "NetworkPolicy"
    assert key["policies"]["pending_policies"] == []


def test_labels_are_sorted_key_value_strings() -> None:
    data = flow(source_labels=labels_of({"b": "2", "a": "1"})).to_json()
    assert data["source_labels"] == ["a=1", "b=2"]


def test_merging_sums_counters_spans_times_and_intersects_labels() -> None:
    a = flow(start=100, end_time=115, source_labels=frozenset({"app=x", "pod=1"}))
    b = flow(
        start=130,
        end_time=145,
        source_labels=frozenset({"app=x", "pod=2"}),
        packets_in=1,
        bytes_out=5,
        num_connections_live=2,
    )
    merged = a.merged(b)
    assert (merged.start_time, merged.end_time) == (100, 145)
    assert merged.source_labels == frozenset({"app=x"})
    assert merged.packets_in == a.packets_in + 1
    assert merged.bytes_out == a.bytes_out + 5
    assert merged.num_connections_started == 2
    assert merged.num_connections_live == 2
    assert (a.packets_in, a.start_time) == (4, 100)  # the inputs are unchanged


def test_flows_of_different_keys_are_never_merged() -> None:
    with pytest.raises(RecordError, match="different keys"):
        flow().merged(flow(dest_port=443))


def test_keys_differing_only_in_the_policy_trace_are_different_keys() -> None:
    assert flow_key() != flow_key(
        policies=PolicyTrace(enforced=(ALLOW_WEB,), pending=(STAGED_DENY,))
    )
    assert len({flow_key(), flow_key()}) == 1


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(start_time="soon"), "start_time must be an integer"),
        (lambda d: d.update(start_time=True), "start_time must be an integer"),
        (lambda d: d.update(packets_in=-1), "packets_in must not be negative"),
        (lambda d: d.update(end_time=1), "end_time 1 is before start_time"),
        (lambda d: d["key"].update(action="Drop"), "action must be one of"),
        (lambda d: d["key"].update(reporter=2), "reporter must be one of"),
        (lambda d: d["key"].update(dest_port="80"), "dest_port must be an integer"),
        (lambda d: d.update(key=[]), "key must be an object"),
        (lambda d: d.update(source_labels="app=x"), "source_labels must be a list"),
        (lambda d: d["key"]["policies"].update(enforced_policies=[7]), "policy hit must be"),
        (
            lambda d: d["key"]["policies"]["enforced_policies"].append({"kind": "Firewall"}),
            "kind must be one of",
        ),
    ],
)
def test_a_malformed_record_is_refused_in_one_line(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    data = flow().to_json()
    mutate(data)
    with pytest.raises(RecordError, match=message) as info:
        Flow.from_json(data)
    assert "\n" not in str(info.value)


def test_a_record_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(RecordError, match="flow must be an object, not list"):
        Flow.from_json([1, 2])


def test_missing_optional_fields_take_goldmane_defaults() -> None:
    parsed = Flow.from_json({"key": {"proto": "udp"}, "start_time": 5, "end_time": 5})
    assert parsed.key.proto == "udp"
    assert parsed.key.dest_service_name == "-"
    assert parsed.key.policies == PolicyTrace()
    assert parsed.packets_in == 0
    assert FlowKey.from_json({}).action == Action.UNSPECIFIED


def test_a_hit_without_trigger_reads_back_without_one() -> None:
    assert PolicyHit.from_json(ALLOW_WEB.to_json()).trigger is None
