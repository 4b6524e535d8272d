"""What Felix's rules did to a traced packet: the policy or profile, and the rule."""

from __future__ import annotations

from pathlib import Path

from pycalico.lab.trace_events import Packet, first_packet, hooks, parse
from pycalico.lab.trace_verdicts import decisions, endpoint_of, owner

GOLDEN = Path(__file__).parent / "golden" / "nft_trace"
TABLE = "calico-lab-trace-1"


def run(name: str, packet: Packet):
    lines = (GOLDEN / name).read_text().splitlines()
    found = [e for line in lines if (e := parse(line)) is not None]
    return hooks(first_packet(found, TABLE, packet.seen_in))


def rules(*events: tuple[str, str, int, str]):
    """A filter-FORWARD hook made of these rule events: (chain, rule, handle, verdict)."""
    head = 'trace id 1 inet calico filter-FORWARD packet: iif "cali1" ip saddr 1.1.1.1'
    lines = [head] + [
        f"trace id 1 inet calico {chain} rule {rule} # handle {handle} (verdict {verdict})"
        for chain, rule, handle, verdict in events
    ]
    return hooks([e for line in lines if (e := parse(line)) is not None])


ALLOW = "meta nfproto ipv4 meta mark set meta mark | 0x00010000 return"
PASS = "meta nfproto ipv4 meta mark set meta mark | 0x00020000 return"


def by_handle(positions: dict[int, int]):
    return lambda chain, handle: positions.get(handle)


def test_an_allow_by_a_profile_names_the_profile_and_its_rule() -> None:
    packet = Packet("10.244.16.65", "203.0.113.1", "tcp", 40003, 80)
    [decision] = decisions(run("masquerade.txt", packet), by_handle({48: 0}))
    assert (decision.direction, decision.interface, decision.allowed) == (
        "egress",
        "caliacd53aa4120",
        True,
    )
    assert (decision.by, decision.rule, decision.handle) == ("profile kns.default", 0, 48)
    assert decision.chain == "filter-cali-pro-kns.default"


def test_a_deny_rule_names_the_policy_and_its_rule() -> None:
    packet = Packet("10.244.16.65", "10.244.140.193", "tcp", 40010, 80)
    [decision] = decisions(run("ingress_denied.txt", packet), by_handle({49: 1}))
    assert (decision.direction, decision.interface) == ("ingress", "califf6fc35a693")
    assert (decision.allowed, decision.by, decision.rule) == (
        False,
        "policy default/default/deny-b",
        1,
    )
    assert decision.name == "default/default/deny-b[1]"


def test_the_end_of_a_tier_is_a_deny_by_the_tier() -> None:
    [decision] = decisions(
        rules(
            (
                "filter-cali-tw-cali1",
                "meta mark & 0x00020000 == 0x00000000 drop comment "
                '"End of tier default. Drop if no policies passed packet"',
                9,
                "drop",
            )
        ),
        by_handle({}),
    )
    assert (decision.direction, decision.allowed) == ("ingress", False)
    assert decision.by == "end of tier default: no policy allowed it"


def test_no_profile_accepting_is_the_final_drop() -> None:
    [decision] = decisions(
        rules(("filter-cali-fw-cali1", 'drop comment "Drop if no profiles matched"', 3, "drop")),
        by_handle({}),
    )
    assert (decision.direction, decision.by) == ("egress", "no profile allowed it")


def test_an_established_flow_is_allowed_by_conntrack() -> None:
    [decision] = decisions(
        rules(("filter-cali-tw-cali1", "ct state established,related accept", 2, "accept")),
        by_handle({}),
    )
    assert decision.allowed and decision.by == "an established connection (conntrack)"


def test_pass_and_log_are_noted_on_the_decision_that_follows() -> None:
    [decision] = decisions(
        rules(
            (
                "filter-cali-po-t1/p",
                'meta nfproto ipv4 log prefix "calico-packet: "',
                4,
                "continue",
            ),
            ("filter-cali-po-t1/p", PASS, 5, "return"),
            ("filter-cali-pro-kns.default", ALLOW, 6, "return"),
            (
                "filter-cali-fw-cali1",
                'meta mark & 0x00010000 == 0x00010000 return comment "Return if profile accepted"',
                7,
                "return",
            ),
        ),
        by_handle({4: 0, 5: 1, 6: 0}),
    )
    assert decision.allowed and decision.by == "profile kns.default"
    assert decision.notes == [
        "logged by policy t1/p rule 0",
        "passed to the next tier by policy t1/p rule 1",
    ]


def test_an_unprogrammed_interface_is_said() -> None:
    [decision] = decisions(
        rules(("filter-cali-to-wl-dispatch", 'drop comment "Unknown interface"', 8, "drop")),
        by_handle({}),
    )
    assert not decision.allowed and "not programmed" in decision.by


def test_chain_names() -> None:
    assert owner("filter-cali-pi-default/ns/web") == ("ingress", "policy", "default/ns/web")
    assert owner("filter-cali-pro-ksa.default.default") == (
        "egress",
        "profile",
        "ksa.default.default",
    )
    assert endpoint_of("filter-cali-fw-cali123") == ("egress", "cali123")
    assert owner("filter-FORWARD") is None and endpoint_of("nat-outgoing") is None
