"""A flow in whisker-backend's answer shape."""

from __future__ import annotations

from pycalico.flows import whisker_json
from pycalico.flows.record import Action, EndpointType, PolicyTrace
from tests.support.flow_records import DENY_TIER_END, STAGED_DENY, flow


def test_an_item_has_whiskers_fields_and_display_values() -> None:
    item = whisker_json.flow_json(
        flow(
            start=1_700_000_000,
            end_time=1_700_000_015,
            source_namespace="-",
            source_name="node-1",
            source_type=EndpointType.HOST,
            dest_name="pvt",
            dest_namespace="-",
            dest_type=EndpointType.NETWORK,
            action=Action.DENY,
            policies=PolicyTrace((DENY_TIER_END,), (STAGED_DENY,)),
            source_labels=frozenset({"b=2", "a=1"}),
        )
    )
    assert item["start_time"] == "2023-11-14T22:13:20Z"
    assert item["end_time"] == "2023-11-14T22:13:35Z"
    assert (item["source_namespace"], item["dest_namespace"]) == ("Global", "Global")
    assert item["dest_name"] == "PRIVATE NETWORK"
    assert item["source_labels"] == "a=1 | b=2"
    assert (item["action"], item["reporter"], item["protocol"]) == ("Deny", "Dst", "tcp")
    enforced = item["policies"]["enforced"][0]
    assert enforced == {
        "kind": "EndOfTier",
        "name": "",
        "namespace": "",
        "tier": "default",
        "action": "Deny",
        "policy_index": 0,
        "rule_index": -1,
        "trigger": {
            "kind": "NetworkPolicy",
            "name": "deny-all",
            "namespace": "shop",
            "tier": "default",
            "action": "ActionUnspecified",
            "policy_index": 0,
            "rule_index": 0,
            "trigger": None,
        },
    }
    assert item["policies"]["pending"][0]["name"] == "lockdown"
    whisker_fields = {
        "start_time", "end_time", "action", "source_name", "source_namespace",
        "source_labels", "dest_name", "dest_namespace", "dest_labels", "protocol",
        "dest_port", "reporter", "policies", "packets_in", "packets_out", "bytes_in",
        "bytes_out",
    }  # fmt: skip
    assert whisker_fields <= set(item)


def test_a_list_answer_has_whiskers_envelope() -> None:
    assert whisker_json.list_json([], 0) == {"total": {"totalPages": 0}, "items": []}
