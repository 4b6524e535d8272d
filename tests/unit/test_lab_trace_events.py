"""Reading `nft -a monitor trace` output: events, one packet's run, its base chains."""

from __future__ import annotations

from pathlib import Path

from pycalico.lab.trace_events import Packet, first_packet, hooks, parse

GOLDEN = Path(__file__).parent / "golden" / "nft_trace"
TABLE = "calico-lab-trace-1"


def events(name: str) -> list:
    lines = (GOLDEN / name).read_text().splitlines()
    return [e for line in lines if (e := parse(line)) is not None]


def test_a_packet_event_gives_the_headers() -> None:
    first = events("masquerade.txt")[0]
    assert (first.table, first.chain, first.kind) == (TABLE, "pre", "packet")
    assert first.packet == {
        "iif": "caliacd53aa4120",
        "saddr": "10.244.16.65",
        "daddr": "203.0.113.1",
        "protocol": "tcp",
        "sport": "40003",
        "dport": "80",
        "tcp_flags": "syn",
        "ether_saddr": "5a:a2:1e:cf:7d:5d",
        "ether_daddr": "ee:ee:ee:ee:ee:ee",
    }


def test_a_rule_event_gives_the_rule_its_handle_and_verdict() -> None:
    masq = next(e for e in events("masquerade.txt") if "masquerade" in e.text)
    assert masq.chain == "nat-outgoing" and masq.handle == 72 and masq.verdict == "accept"
    assert masq.comment == "natOutgoing"
    jump = next(e for e in events("masquerade.txt") if e.verdict.startswith("goto"))
    assert jump.verdict == "goto filter-cali-fw-caliacd53aa4120"


def test_a_policy_event_gives_the_chains_own_verdict_without_the_mark() -> None:
    policy = [e for e in events("masquerade.txt") if e.kind == "policy"]
    assert [(e.chain, e.verdict) for e in policy] == [
        ("pre", "accept"),
        ("raw-prerouting", "accept"),
        ("filter-FORWARD", "accept"),
    ]


def test_lines_that_are_not_trace_events_are_skipped() -> None:
    assert parse("") is None and parse("add rule inet calico x") is None


def test_the_first_matching_packet_is_cut_into_base_chains() -> None:
    packet = Packet("10.244.16.65", "203.0.113.1", "tcp", 40003, 80)
    run = first_packet(events("masquerade.txt"), TABLE, packet.seen_in)
    chains = [(h.table, h.chain) for h in hooks(run)]
    assert chains == [
        (TABLE, "pre"),
        ("calico", "raw-prerouting"),
        ("calico", "filter-FORWARD"),
        ("calico", "nat-outgoing"),
        (TABLE, "post"),
    ]
    post = hooks(run)[-1]
    assert (post.packet["saddr"], post.packet["sport"]) == ("192.168.56.10", "20156")


def test_a_packet_that_does_not_match_is_not_taken_for_ours() -> None:
    other = Packet("10.244.16.65", "203.0.113.1", "tcp", 40004, 80)
    assert first_packet(events("masquerade.txt"), TABLE, other.seen_in) == []


def test_the_run_ends_where_the_next_packet_starts() -> None:
    twice = events("masquerade.txt") * 2
    packet = Packet("10.244.16.65", "203.0.113.1", "tcp", 40003, 80)
    assert len(first_packet(twice, TABLE, packet.seen_in)) == len(events("masquerade.txt"))


def test_after_nat_the_packet_is_matched_by_its_new_source() -> None:
    packet = Packet("10.244.16.65", "203.0.113.1", "tcp", 40003, 80)
    headers = {"saddr": "192.168.56.10", "daddr": "203.0.113.1", "sport": "20156", "dport": "80"}
    assert not packet.seen_in(headers)
    assert packet.seen_in(headers, "192.168.56.10", 20156)


def test_a_hook_that_drops_says_so() -> None:
    packet = Packet("10.244.16.65", "10.244.140.193", "tcp", 40010, 80)
    run = hooks(first_packet(events("ingress_denied.txt"), TABLE, packet.seen_in))
    assert [h.final for h in run] == ["accept", "accept", "drop"]


def test_icmp_is_matched_by_its_echo_id() -> None:
    packet = Packet("10.0.0.1", "10.0.0.2", "icmp", 7, 0)
    assert packet.seen_in({"saddr": "10.0.0.1", "daddr": "10.0.0.2", "icmp_id": "7"})
    assert not packet.seen_in({"saddr": "10.0.0.1", "daddr": "10.0.0.2", "icmp_id": "8"})
    assert packet.tuple_text() == "10.0.0.1 → 10.0.0.2 ICMP echo id 7"
