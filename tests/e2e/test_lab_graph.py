"""`calico-lab graph`: the picture of a 3-node lab holds every node, pod and BGP session."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from pycalico.lab.state import LabState
from tests.support.lab_driver import lab, lab_run, wait_for

pytestmark = pytest.mark.e2e

SVG = "{http://www.w3.org/2000/svg}"


def svg_ids(path: Path) -> dict[str, set[str]]:
    """The ids Graphviz kept in the SVG, by class (node, edge, cluster)."""
    found: dict[str, set[str]] = {}
    for g in ET.parse(path).getroot().iter(f"{SVG}g"):
        kind, ident = g.get("class"), g.get("id")
        if kind and ident:
            found.setdefault(kind, set()).add(ident)
    return found


def test_the_graph_of_a_three_node_bgp_lab_has_every_node_pod_and_session(
    make_lab: Callable[..., str], tmp_path: Path
) -> None:
    name = make_lab("--nodes", "3", "--encap", "none")
    for n in (1, 2, 3):
        lab("pod", "add", f"p{n}", "--node", f"node{n}", "--name", name)
    lab("pod", "add", "extra", "--node", "node2", "--name", name)
    wait_for(
        "every mesh session to be Established",
        lambda: all(
            lab("exec", f"node{n}", "--name", name, "--", "birdc", "show", "p").count("Established")
            == 2
            for n in (1, 2, 3)
        ),
    )
    picture = tmp_path / "lab.svg"
    assert lab("graph", "--name", name, "-o", str(picture)) == f"wrote {picture}\n"
    ids = svg_ids(picture)
    nodes = {f"node:node{n}" for n in (1, 2, 3)}
    pods = {f"pod:default/{p}" for p in ("p1", "p2", "p3", "extra")}
    assert nodes | pods | {"router", "external", "bridge:br0"} <= ids["node"]
    sessions = {f"bgp:node{a}--node{b}" for a, b in itertools.combinations((1, 2, 3), 2)}
    assert sessions <= ids["edge"]
    assert {f"veth:{p.removeprefix('pod:')}" for p in pods} <= ids["edge"]
    state = LabState.load(name)
    text = picture.read_text()
    for cidr in state.node_ips.values():
        assert cidr.split("/")[0] in text
    for pod in state.pods.values():
        assert pod.ip in text
    assert "BGP Established" in text and "AS 64512" in text

    dot_file = tmp_path / "lab.dot"
    lab("graph", "--name", name, "-o", str(dot_file))
    assert dot_file.read_text() == lab("graph", "--name", name)
    assert dot_file.read_text().count('id="bgp:') == 3


def test_a_vxlan_lab_draws_its_tunnels_and_a_bad_output_name_is_refused(
    make_lab: Callable[..., str], tmp_path: Path
) -> None:
    name = make_lab("--nodes", "2")
    text = lab("graph", "--name", name)
    assert 'id="tunnel:node1--node2" label="VXLAN VNI 4096"' in text
    assert "bgp:" not in text
    bad = lab_run("graph", "--name", name, "-o", str(tmp_path / "lab.jpeg"))
    assert bad.returncode == 1 and "must end in .svg, .png or .dot" in bad.stderr
    assert list(tmp_path.iterdir()) == []
    png = tmp_path / "lab.png"
    lab("graph", "--name", name, "-o", str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
