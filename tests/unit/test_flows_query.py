"""whisker-backend's queries: filters, sorting, pages, hints, and refusing bad queries."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest

from pycalico.flows import query
from pycalico.flows.query import Filter, HintType, MatchType, QueryError, SortBy, StringMatch
from pycalico.flows.record import Action, EndpointType, PolicyHit, PolicyKind, PolicyTrace, Reporter
from tests.support.flow_records import ALLOW_WEB, DENY_TIER_END, STAGED_DENY, flow


def matching(filters: object, *flows):  # type: ignore[no-untyped-def]
    parsed = query.parse_filter(json.dumps(filters))
    return [f for f in flows if parsed.matches(f)]


def test_an_empty_filter_matches_everything() -> None:
    assert query.parse_filter("") == Filter()
    assert query.parse_filter("{}").matches(flow())


def test_exact_and_fuzzy_name_matches() -> None:
    web, api = flow(dest_name="web-7c4b6-*"), flow(dest_name="api-1-*")
    assert matching({"dest_names": [{"value": "web-7c4b6-*", "type": "Exact"}]}, web, api) == [web]
    assert matching({"dest_names": [{"value": "web", "type": "Exact"}]}, web, api) == []
    assert matching({"dest_names": [{"value": "b-7c", "type": "Fuzzy"}]}, web, api) == [web]


def test_matches_of_one_key_combine_with_or_and_keys_with_and() -> None:
    a = flow(source_namespace="shop", dest_port=80)
    b = flow(source_namespace="bank", dest_port=80)
    c = flow(source_namespace="shop", dest_port=443)
    filters = {
        "source_namespaces": [{"value": "shop"}, {"value": "bank"}],
        "dest_ports": [{"value": 80}],
    }
    assert matching(filters, a, b, c) == [a, b]


def test_a_plain_string_is_an_exact_match() -> None:
    assert query.parse_filter('{"protocols": ["udp"]}').protocols == (StringMatch("udp"),)


def test_whiskers_display_names_select_the_stored_values() -> None:
    host_to_net = flow(source_namespace="-", source_type=EndpointType.HOST, dest_name="pub")
    assert matching({"source_namespaces": [{"value": "Global"}]}, host_to_net) == [host_to_net]
    assert matching({"dest_names": [{"value": "PUBLIC NETWORK"}]}, host_to_net) == [host_to_net]
    assert matching({"dest_names": [{"value": "pub"}]}, host_to_net) == [host_to_net]
    fuzzy = {"source_namespaces": [{"value": "Glo", "type": "Fuzzy"}]}
    assert matching(fuzzy, host_to_net) == []


def test_ports_match_by_number_in_whiskers_and_goldmanes_shapes() -> None:
    web = flow(dest_port=80)
    assert matching({"dest_ports": [{"port": 80}]}, web) == [web]
    assert matching({"dest_ports": [{"value": 81, "type": "Exact"}]}, web) == []


def test_actions_pending_actions_and_reporter() -> None:
    allowed = flow()
    denied = flow(action=Action.DENY, policies=PolicyTrace(enforced=(DENY_TIER_END,)))
    staged = flow(reporter=Reporter.SRC, policies=PolicyTrace((ALLOW_WEB,), (STAGED_DENY,)))
    assert matching({"actions": ["Deny"]}, allowed, denied, staged) == [denied]
    assert matching({"pending_actions": ["Deny"]}, allowed, denied, staged) == [staged]
    assert matching({"reporter": "Src"}, allowed, denied, staged) == [staged]
    assert matching({"reporter": "ReporterUnspecified"}, allowed) == [allowed]


def test_a_policy_match_finds_a_hit_or_the_trigger_of_a_tier_end() -> None:
    allowed = flow()
    denied = flow(action=Action.DENY, policies=PolicyTrace(enforced=(DENY_TIER_END,)))
    staged = flow(policies=PolicyTrace((ALLOW_WEB,), (STAGED_DENY,)))
    everything = (allowed, denied, staged)
    assert matching({"policies": [{"name": "deny-all"}]}, *everything) == [denied]
    assert matching({"policies": [{"kind": "EndOfTier"}]}, *everything) == [denied]
    assert matching({"policies": [{"name": "lockdown", "action": "Deny"}]}, *everything) == [staged]
    assert matching({"policies": [{"name": {"value": "allow", "type": "Fuzzy"}}]}, *everything) == [
        allowed,
        staged,
    ]
    assert matching({"policies": [{"namespace": "shop", "tier": "security"}]}, *everything) == []
    assert matching({"policies": [{"kind": "GlobalNetworkPolicy"}]}, *everything) == []


def test_the_pending_action_is_the_last_pending_hits() -> None:
    assert query.pending_action(flow()) == Action.UNSPECIFIED
    later_allow = PolicyHit(PolicyKind.PROFILE, "kns.shop", "", "", Action.ALLOW, 1, 0)
    trace = PolicyTrace((ALLOW_WEB,), (STAGED_DENY, later_allow))
    assert query.pending_action(flow(policies=trace)) == Action.ALLOW


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        ("[]", "filters must be a JSON object"),
        ('{"names": []}', "unknown key 'names'"),
        ('{"dest_names": {"value": "x"}}', "must be a JSON list"),
        ('{"dest_names": [{"value": 3}]}', "value must be a string"),
        ('{"dest_names": [{"value": "x", "type": "Regex"}]}', "unknown value 'Regex'"),
        ('{"dest_names": [{"value": "x", "kind": "Exact"}]}', "unknown key 'kind'"),
        ('{"dest_ports": [{"value": 70000}]}', "from 0 to 65535"),
        ('{"dest_ports": [{"value": "80"}]}', "from 0 to 65535"),
        ('{"dest_ports": [{"value": 80, "type": "Fuzzy"}]}', "match exactly"),
        ('{"actions": ["Drop"]}', r"filters.actions\[0\]: unknown value 'Drop'"),
        ('{"reporter": "Both"}', "unknown value 'Both'"),
        ('{"policies": [{"kind": "Firewall"}]}', "unknown value 'Firewall'"),
        ('{"policies": [{"rule": 1}]}', "unknown key 'rule'"),
    ],
)
def test_bad_filters_are_refused_in_one_line(text: str, message: str) -> None:
    with pytest.raises(QueryError, match=message) as info:
        query.parse_filter(text)
    assert "\n" not in str(info.value)


def test_sorting_by_time_is_newest_first_with_stable_ties() -> None:
    old, new = flow(start=100, dest_name="b"), flow(start=200, dest_name="a")
    tie = flow(start=200, dest_name="c")
    assert query.sort_flows([old, tie, new]) == [new, tie, old]


def test_sorting_by_a_field_is_ascending_with_newest_first_among_equals() -> None:
    a_old, a_new, b = (
        flow(start=1, dest_name="a"),
        flow(start=2, dest_name="a"),
        flow(start=3, dest_name="b"),
    )
    assert query.sort_flows([b, a_old, a_new], SortBy.DEST_NAME) == [a_new, a_old, b]
    host = flow(source_type=EndpointType.HOST)
    assert query.sort_flows([flow(), host], SortBy.SOURCE_TYPE)[0] is host


@pytest.mark.parametrize(
    ("page", "size", "expected", "pages"),
    [(0, 0, [0, 1, 2, 3, 4], 1), (0, 2, [0, 1], 3), (2, 2, [4], 3), (3, 2, [], 3)],
)
def test_pages_count_from_zero(page: int, size: int, expected: list[int], pages: int) -> None:
    assert query.page_of(list(range(5)), page, size) == (expected, pages)


def test_no_items_is_no_page() -> None:
    assert query.page_of([], 0, 0) == ([], 0)
    assert query.page_of([], 0, 10) == ([], 0)


def test_hints_are_distinct_display_values_sorted() -> None:
    flows = [
        flow(dest_name="web-*", dest_namespace="shop"),
        flow(dest_name="pvt", dest_namespace="-"),
        flow(dest_name="web-*", policies=PolicyTrace((DENY_TIER_END,), (STAGED_DENY,))),
    ]
    assert query.hints(flows, HintType.DEST_NAME) == ["PRIVATE NETWORK", "web-*"]
    assert query.hints(flows, HintType.DEST_NAMESPACE) == ["Global", "shop"]
    assert query.hints(flows, HintType.POLICY_NAME) == ["allow-web", "deny-all", "lockdown"]
    assert query.hints(flows, HintType.POLICY_KIND) == [
        "CalicoNetworkPolicy", "EndOfTier", "NetworkPolicy", "StagedNetworkPolicy",
    ]  # fmt: skip
    assert query.hints(flows, HintType.POLICY_TIER) == ["default"]
    assert query.hints(flows, HintType.POLICY_NAMESPACE) == ["shop"]


def test_a_list_query_reads_every_parameter() -> None:
    filters = json.dumps({"actions": ["Deny"]})
    params = parse_qs(
        "watch=true&startTimeGte=-300&startTimeLt=0&sortBy=DestName&page=2&pageSize=50"
        f"&filters={filters}"
    )
    parsed = query.parse_list_query(params)
    assert parsed == query.ListQuery(
        watch=True,
        start_time_gte=-300,
        start_time_lt=0,
        sort_by=SortBy.DEST_NAME,
        page=2,
        page_size=50,
        filter=Filter(actions=(Action.DENY,)),
    )
    assert query.parse_list_query({}) == query.ListQuery()


def test_a_hints_query_needs_its_type() -> None:
    assert query.parse_hints_query({"type": ["PolicyName"]}).type == HintType.POLICY_NAME
    with pytest.raises(QueryError, match="type is required"):
        query.parse_hints_query({})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"watch": ["yes"]}, "watch must be true or false"),
        ({"page": ["-1"]}, "page must not be negative"),
        ({"pageSize": ["ten"]}, "pageSize must be an integer"),
        ({"sortBy": ["Size"]}, "sortBy: unknown value 'Size'"),
        ({"sortBy": ["Time", "DestName"]}, "sortBy given 2 times"),
        ({"limit": ["5"]}, "unknown query parameter 'limit'"),
    ],
)
def test_bad_list_parameters_are_refused(params: dict[str, list[str]], message: str) -> None:
    with pytest.raises(QueryError, match=message):
        query.parse_list_query(params)


def test_match_type_names_are_whiskers() -> None:
    assert [m.value for m in MatchType] == ["Exact", "Fuzzy"]
