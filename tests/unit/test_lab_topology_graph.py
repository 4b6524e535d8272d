"""The lab as a Graphviz graph: what is drawn, with which ids, and BGP sessions by state."""

from __future__ import annotations

from pycalico.lab.topology_graph import (
    NodeBox,
    PodBox,
    Session,
    Topology,
    Tunnel,
    dot,
    quote,
    sessions_by_pair,
)


def topology() -> Topology:
    return Topology(
        lab="demo",
        headline='lab demo: "flat" underlay',
        bridges={"br0": "192.168.56.0/24"},
        router="tor",
        router_addresses={"br0": "192.168.56.1", "external": "203.0.113.254"},
        router_as=65001,
        external_ip="203.0.113.1",
        nodes=[
            NodeBox("node1", "192.168.56.10", 64512, "10.244.1.0", ("10.244.1.0/26",), "br0", True),
            NodeBox("node2", "192.168.56.11", 64512, "", (), "br0", False),
        ],
        pods=[PodBox("default/web", "node2", "10.244.2.7", "cali123")],
        sessions=[
            Session("node1", "tor", "Established"),
            Session("tor", "node1", "Established"),
            Session("node2", "tor", "Active"),
            Session("tor", "node2", "Established"),
        ],
        tunnels=[Tunnel("VXLAN", "node1", "node2", "VNI 4096"), Tunnel("VXLAN", "node2", "node1")],
    )


def lines_with(text: str, fragment: str) -> list[str]:
    return [line for line in text.splitlines() if fragment in line]


def test_quote_escapes_quotes_backslashes_and_newlines() -> None:
    assert quote('a "b"\\c\nd') == '"a \\"b\\"\\\\c\\nd"'


def test_every_node_and_pod_is_drawn_with_an_id() -> None:
    text = dot(topology())
    assert lines_with(text, '[id="node:node1"')[0].count("block 10.244.1.0/26") == 1
    assert "tunnel 10.244.1.0" in lines_with(text, '[id="node:node1"')[0]
    assert "NOT READY" in lines_with(text, '[id="node:node2"')[0]
    assert lines_with(text, '"pod:default/web" [id="pod:default/web"')
    assert lines_with(
        text, '"node:node2" -- "pod:default/web" [id="veth:default/web" label="cali123"'
    )
    assert lines_with(text, 'subgraph "cluster_node2"')


def test_a_session_is_drawn_once_in_the_worse_state_of_its_ends() -> None:
    assert sessions_by_pair(topology().sessions) == {
        ("node1", "tor"): "Established",
        ("node2", "tor"): "Active",
    }
    text = dot(topology())
    [up] = lines_with(text, 'id="bgp:node1--tor"')
    [down] = lines_with(text, 'id="bgp:node2--tor"')
    assert 'color="darkgreen"' in up and 'label="BGP Established"' in up
    assert 'color="red"' in down and 'label="BGP Active"' in down
    assert up.startswith('  "node:node1" -- "tor"')


def test_a_tunnel_is_drawn_once_dashed() -> None:
    [tunnel] = lines_with(dot(topology()), 'id="tunnel:node1--node2"')
    assert 'style="dashed"' in tunnel and 'label="VXLAN VNI 4096"' in tunnel


def test_the_underlay_and_the_headline() -> None:
    text = dot(topology())
    assert text.startswith('graph "lab demo" {')
    assert 'label="lab demo: \\"flat\\" underlay"' in text
    assert lines_with(text, '"tor" [id="tor" label="tor\\nAS 65001" shape="diamond"]')
    assert lines_with(text, '"tor" -- "external" [id="link:tor--external" label="203.0.113.254"]')
    assert lines_with(text, '"node:node1" -- "bridge:br0"')
