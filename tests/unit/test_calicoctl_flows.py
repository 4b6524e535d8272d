"""`calicoctl flows`: Hubble-style lines from whisker items, and its options refused in one
line (the server is asked in tests/contract/test_calicoctl_flows.py)."""

from __future__ import annotations

import time

import pytest

from pycalico.ctl import flow_lines
from pycalico.flows import whisker_json
from pycalico.flows.record import Action, EndpointType, PolicyHit, PolicyKind, PolicyTrace, Reporter
from tests.support.calicoctl_harness import InProcess
from tests.support.flow_records import ALLOW_WEB, DENY_TIER_END, STAGED_DENY, flow

START = 1_700_000_000  # 2023-11-14T22:13:20Z


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def line(**fields: object) -> str:
    return flow_lines.compact(whisker_json.flow_json(flow(start=START, **fields)))


def test_an_allowed_flow_names_the_rule_that_allowed_it() -> None:
    assert line() == (
        "Nov 14 22:13:20.000: shop/client-5d8f9-* -> shop/web-7c4b6-*:80 tcp INGRESS "
        "ALLOWED BY CalicoNetworkPolicy shop/allow-web rule 1"
    )


def test_a_flow_denied_at_a_tiers_end_names_the_policy_that_selected_it() -> None:
    text = line(action=Action.DENY, policies=PolicyTrace((DENY_TIER_END,)), reporter=Reporter.SRC)
    assert text.endswith(
        "EGRESS DENIED BY end of tier default (selected by NetworkPolicy shop/deny-all)"
    )


def test_passes_lead_to_the_hit_that_decided() -> None:
    passed = PolicyHit(
        PolicyKind.GLOBAL_NETWORK_POLICY, "to-app", "", "security", Action.PASS, 0, 3
    )
    text = line(policies=PolicyTrace((passed, ALLOW_WEB)))
    assert text.endswith("ALLOWED BY CalicoNetworkPolicy shop/allow-web rule 1")


def test_the_staged_verdict_follows_in_brackets() -> None:
    text = line(policies=PolicyTrace((ALLOW_WEB,), (STAGED_DENY,)))
    assert text.endswith(
        "ALLOWED BY CalicoNetworkPolicy shop/allow-web rule 1 "
        "[pending: DENIED BY StagedNetworkPolicy shop/lockdown rule 0]"
    )


def test_ends_without_a_namespace_show_their_name_alone() -> None:
    text = line(
        source_name="node-1",
        source_namespace="-",
        source_type=EndpointType.HOST,
        dest_name="pub",
        dest_namespace="-",
        dest_type=EndpointType.NETWORK,
        dest_port=443,
        policies=PolicyTrace(),
    )
    assert ": node-1 -> PUBLIC NETWORK:443 tcp INGRESS ALLOWED BY no policy" in text


def test_wide_adds_counters_and_labels() -> None:
    text = flow_lines.wide(whisker_json.flow_json(flow(start=START)))
    assert text.endswith(
        "(connections 1 started, 1 completed, 0 live; packets 4 in, 6 out; "
        "bytes 400 in, 600 out; labels app=client | team=a -> app=web)"
    )


def test_a_time_that_is_not_rfc3339_is_shown_as_it_came() -> None:
    assert flow_lines.stamp_milli("yesterday") == "yesterday"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "client"], "--from wants NS/POD"),
        (["--to", "/web"], "--to wants NS/POD"),
        (["--action", "drop"], "--action wants allow, deny or pass, not 'drop'"),
        (["--port", "http"], "--port wants a whole number, not 'http'"),
        (["--port", "70000"], "--port wants a port from 0 to 65535"),
        (["--policy", "/x"], "--policy wants NAME or NS/NAME"),
        (["--since", "yesterday"], "--since wants a duration"),
        (["--last", "-3"], "--last wants a whole number"),
        (["-o", "yaml"], "unknown output format 'yaml'"),
        (["--server", "127.0.0.1:8080"], "--server wants an http:// or https:// URL"),
        (["--follow", "--last", "5"], "with --follow use --since"),
        (["--colour"], "unrecognized arguments: --colour"),
    ],
)
def test_bad_options_are_one_line_and_exit_1(ctl: InProcess, args: list[str], message: str) -> None:
    result = ctl.run("flows", *args)
    assert result.rc == 1
    assert message in result.err
    assert result.err.count("\n") == 1
    assert result.out == ""


def test_help_prints_the_usage(ctl: InProcess) -> None:
    result = ctl.run("flows", "--help")
    assert result.rc == 0
    assert result.out.startswith("Usage:\n  calicoctl flows [--server=<url>]")
