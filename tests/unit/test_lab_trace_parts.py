"""The pure parts of `calico-lab trace`: its trace table, frame decoding, route text, policy
rule positions, the echo request it sends, and the report."""

from __future__ import annotations

import socket
import struct

from pycalico.lab.route_lookup import answer
from pycalico.lab.trace_events import Packet
from pycalico.lab.trace_policy import disagreements, index_of
from pycalico.lab.trace_report import Step, Trace, as_json, text
from pycalico.lab.trace_send import echo_request
from pycalico.lab.trace_tables import match, render
from pycalico.lab.trace_verdicts import Decision
from pycalico.lab.wire_capture import carried, decode
from pycalico.policy import verdict
from pycalico.policy.model import rule

TCP = Packet("10.244.1.5", "10.244.2.7", "tcp", 41000, 80)


def test_the_trace_table_marks_the_packet_first_and_sees_it_last() -> None:
    table = render("calico-lab-trace-7", match(TCP))
    assert table.startswith("table inet calico-lab-trace-7 {")
    assert (
        "chain pre { type filter hook prerouting priority -400; policy accept; "
        "ip daddr 10.244.2.7 tcp dport 80 meta nftrace set 1; }" in table
    )
    assert "chain out { type filter hook output priority -400;" in table
    assert (
        "chain post { type filter hook postrouting priority 400; policy accept; counter; }" in table
    )
    assert "chain in { type filter hook input priority 400; policy accept; counter; }" in table


def test_icmp_is_marked_by_echo_request() -> None:
    assert match(Packet("1.1.1.1", "2.2.2.2", "icmp", 9, 0)) == (
        "ip daddr 2.2.2.2 icmp type echo-request"
    )


def ipv4(src: str, dst: str, proto: int, body: bytes) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(body),
        1,
        0,
        64,
        proto,
        0,
        socket.inet_aton(src),
        socket.inet_aton(dst),
    )
    return header + body


def ether(payload: bytes, ethertype: int = 0x0800, src: str = "66:f9:37:c3:7e:94") -> bytes:
    mac = bytes(int(b, 16) for b in src.split(":"))
    return b"\xee" * 6 + mac + struct.pack("!H", ethertype) + payload


SYN = struct.pack("!HHIIBBHHH", 41000, 80, 0, 0, 0x50, 0x02, 64240, 0, 0)


def test_a_vxlan_frame_gives_outer_addresses_vni_and_the_inner_packet() -> None:
    inner = ether(ipv4("10.244.1.5", "10.244.2.7", 6, SYN))
    vxlan = struct.pack("!II", 0x08000000, 4096 << 8)
    udp = struct.pack("!HHHH", 53000, 4789, 8 + len(vxlan) + len(inner), 0) + vxlan + inner
    frame = decode(ether(ipv4("192.168.56.10", "192.168.56.11", 17, udp)))
    assert frame is not None
    ip = frame["ip"]
    assert (ip["src"], ip["dst"], ip["dport"], ip["vni"]) == (
        "192.168.56.10",
        "192.168.56.11",
        4789,
        4096,
    )
    assert carried(ip) == {
        "src": "10.244.1.5",
        "dst": "10.244.2.7",
        "protocol": "tcp",
        "ttl": 64,
        "sport": 41000,
        "dport": 80,
        "tcp_flags": 2,
    }


def test_an_ipip_frame_carries_its_inner_packet() -> None:
    frame = decode(
        ether(ipv4("192.168.56.10", "192.168.56.11", 4, ipv4("10.244.1.5", "10.244.2.7", 6, SYN)))
    )
    assert frame is not None and frame["ip"]["protocol"] == "ipip"
    assert carried(frame["ip"])["dst"] == "10.244.2.7"


def test_a_plain_icmp_echo_and_an_arp_reply() -> None:
    icmp = decode(ether(ipv4("10.244.1.5", "203.0.113.1", 1, echo_request(77))))
    assert icmp is not None and (icmp["ip"]["icmp_type"], icmp["ip"]["icmp_id"]) == (8, 77)
    arp = (
        struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2)
        + b"\xee" * 6
        + socket.inet_aton("169.254.1.1")
        + b"\x01" * 6
        + socket.inet_aton("10.244.1.5")
    )
    reply = decode(ether(arp, 0x0806, "ee:ee:ee:ee:ee:ee"))
    assert reply is not None and reply["arp"] == {
        "op": "reply",
        "sender_mac": "ee:ee:ee:ee:ee:ee",
        "sender_ip": "169.254.1.1",
        "target_ip": "10.244.1.5",
    }


def test_the_echo_request_has_a_valid_checksum() -> None:
    data = echo_request(4242)
    assert struct.unpack("!H", data[4:6])[0] == 4242
    words = struct.unpack(f"!{len(data) // 2}H", data)
    total = sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    assert total == 0xFFFF


def test_routes_read_as_ip_route_prints_them() -> None:
    vxlan = answer(
        {
            "type": "unicast",
            "dst": "10.244.2.0/26",
            "gateway": "10.244.2.0",
            "dev": "vxlan.calico",
            "table": "main",
            "protocol": "boot",
            "scope": "global",
            "flags": ["onlink"],
        }
    )
    assert vxlan.text() == "10.244.2.0/26 via 10.244.2.0 dev vxlan.calico onlink"
    bird = answer(
        {
            "type": "unicast",
            "dst": "10.244.2.0/26",
            "gateway": "192.168.56.11",
            "dev": "eth0",
            "protocol": "bird",
            "scope": "global",
            "flags": [],
        }
    )
    assert bird.text() == "10.244.2.0/26 via 192.168.56.11 dev eth0 proto bird"
    local = answer(
        {
            "type": "local",
            "dst": "10.244.2.7",
            "dev": "eth0",
            "table": "local",
            "protocol": "kernel",
            "scope": "host",
            "flags": [],
        }
    )
    assert local.text() == "local 10.244.2.7 dev eth0 table local proto kernel scope host"


def test_a_policy_rule_index_follows_from_the_nft_rules_each_rule_renders_to() -> None:
    rules = (
        rule({"action": "Allow", "protocol": "UDP"}, "default"),
        rule(
            {"action": "Deny", "protocol": "TCP", "destination": {"ports": [80, "http"]}}, "default"
        ),
        rule({"action": "Allow"}, "default"),
    )
    # Each rule is one nft rule per address family; the named port adds a second IPv4 rule
    # (IPv4 has sets, IPv6 none yet).
    expected = [0, 0, 1, 1, 1, 2, 2, None]
    assert [index_of(p, rules, (4,)) for p in range(8)] == expected


def test_the_report_numbers_the_steps_and_ends_with_the_outcome() -> None:
    found = Trace(
        "default/a (10.244.1.5)",
        "default/b (10.244.2.7)",
        "10.244.1.5:41000 → 10.244.2.7:80 TCP SYN",
        [
            Step(
                "node1",
                "route",
                "to 10.244.2.7: 10.244.2.0/26 via 10.244.2.0 dev vxlan.calico onlink",
            )
        ],
        "delivered",
        "to default/b; connection established",
        ["a note"],
    )
    lines = text(found).splitlines()
    assert lines[0] == (
        "trace default/a (10.244.1.5) → default/b (10.244.2.7): "
        "10.244.1.5:41000 → 10.244.2.7:80 TCP SYN"
    )
    assert lines[1].split()[:3] == ["1", "node1", "route"]
    assert lines[2:] == ["outcome: delivered: to default/b; connection established", "note: a note"]
    assert '"outcome": "delivered"' in as_json(found)


def test_where_policy_explain_and_the_kernel_disagree_the_trace_says_so() -> None:
    kernel = [Decision("ingress", "cali1", False, "policy default/default/deny-b", 1)]
    agree = [explained("ingress", False, "policy default/default/deny-b", 1)]
    assert disagreements(kernel, agree) == []
    differ = [explained("ingress", True, "profile kns.default", 0)]
    assert disagreements(kernel, differ) == [
        "calicoctl policy explain says ingress ALLOW by profile kns.default rule 0, but the "
        "kernel denied it by policy default/default/deny-b rule 1: the trace is what happened"
    ]


def test_an_established_flow_is_not_compared_with_policy() -> None:
    kernel = [Decision("ingress", "cali1", True, "an established connection (conntrack)")]
    assert disagreements(kernel, [explained("ingress", False, "no profile allowed it", None)]) == []


def explained(direction: str, allowed: bool, by: str, index: int | None) -> verdict.Step:
    return verdict.Step("default/b", direction, allowed, by, index)
