"""Flow logs' NFLOG rules in Felix's table: present exactly while flow logs are enabled, one
before each verdict the reference names, with prefixes the collector can read back. The
whole tables are golden files (golden/felix/flow_logs_on.nft and flow_logs_off.nft,
checked by test_felix_host_endpoints.py); these tests state what the two must differ by."""

from __future__ import annotations

import re

from pycalico.felix.calc.desired import Calculator
from pycalico.felix.calc.settings import resolve
from pycalico.flows import nflog_prefix
from pycalico.flows.nflog_prefix import Direction, RuleLog, TierEnd
from pycalico.flows.record import Action, PolicyKind
from tests.support.felix_case import desired, host_links, load, snapshot

_NFLOG = re.compile(r' log prefix "[^"]*" group [12]')
_PASS_END = re.compile(r'^(meta mark & 0x20000 == 0 )?comment "End of tier [^"]*\. Pass"$')


def _chains(case: str, felix: dict[str, str] | None = None) -> dict[str, tuple[str, ...]]:
    loaded = load(case)
    if felix is not None:
        loaded["felix"] = felix
    return desired(loaded).ruleset.chains


def test_flow_logs_on_differs_from_off_only_by_nflog_statements() -> None:
    on, off = _chains("flow_logs_on"), _chains("flow_logs_off")
    assert on.keys() == off.keys()
    for name, lines in on.items():
        stripped = [_NFLOG.sub("", " " + line).strip() for line in lines]
        # A Pass tier's end, and a tier of staged policies only, exist only to log (the
        # packet carries on either way).
        kept = [line for line in stripped if not _PASS_END.match(line)]
        assert kept == list(off[name]), name


def test_the_local_reporter_alone_turns_the_nflog_rules_on() -> None:
    chains = _chains("flow_logs_off", {"flowLogsLocalReporter": "Enabled"})
    assert any(_NFLOG.search(line) for lines in chains.values() for line in lines)


def test_a_tier_of_staged_policies_only_is_its_pass_alone_and_only_with_flow_logs() -> None:
    on, off = _chains("flow_logs_on"), _chains("flow_logs_off")
    audit = [line for line in on["filter-cali-tw-caliweb1"] if "audit" in line]
    assert audit == ['log prefix "PPI|audit" group 1 comment "End of tier audit. Pass"']
    assert not any("audit" in line for line in off["filter-cali-tw-caliweb1"])


def test_only_filter_policy_profile_and_endpoint_chains_log() -> None:
    chains = _chains("flow_logs_on")
    logging = {name for name, lines in chains.items() if any(_NFLOG.search(ln) for ln in lines)}
    assert logging
    assert all(re.match(r"filter-cali-(pi|po|pri|pro|tw|fw)-", name) for name in logging)
    assert not any(name.startswith("raw-") for name in logging)  # doNotTrack: none


def test_ingress_logs_to_group_1_and_egress_to_group_2() -> None:
    chains = _chains("flow_logs_on")
    for lines in chains.values():
        for line in lines:
            found = re.search(r' log prefix "(...)[^"]*" group (\d)', line)
            if found:
                assert found.group(2) == ("1" if found.group(1)[2] == "I" else "2"), line


def test_every_prefix_rendered_reads_back_hashed_or_not() -> None:
    loaded = load("flow_logs_on")
    calculator = Calculator(loaded["node"])
    settings = resolve({}, loaded["felix"], {})
    wanted = calculator.calculate(
        snapshot(loaded["resources"]), settings, host_links(loaded["interfaces"])
    )
    prefixes = {
        m.group(1)
        for lines in wanted.ruleset.chains.values()
        for line in lines
        if (m := re.search(r' log prefix "([^"]*)" group', " " + line))
    }
    table = calculator.renderer.prefixes
    read = {p: table.read(p) for p in prefixes}
    hashed = [p for p in prefixes if nflog_prefix.is_hashed(p)]
    assert hashed
    long_name = "soft.a-rather-long-policy-name-that-makes-the-prefix-hashed"
    assert RuleLog(
        Action.DENY, nflog_prefix.Owner.POLICY, Direction.EGRESS, 1,
        PolicyKind.GLOBAL_NETWORK_POLICY, "", long_name,
    ) in read.values()  # fmt: skip
    assert TierEnd(Action.PASS, Direction.EGRESS, "soft") in read.values()
    assert TierEnd(Action.PASS, Direction.INGRESS, "audit") in read.values()  # staged only
    assert read['API1|knp/shop/allow-http'] == RuleLog(
        Action.ALLOW, nflog_prefix.Owner.POLICY, Direction.INGRESS, 1,
        PolicyKind.NETWORK_POLICY, "shop", "allow-http",
    )  # fmt: skip
