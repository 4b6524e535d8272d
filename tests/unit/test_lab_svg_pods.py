"""The lab's Graphviz SVG made clickable for the lab page: every pod a button named by
`data-pod`, every node named by `data-node`, and the `<svg>` element alone.

golden/lab_page/two_nodes.svg is Graphviz 2.43's `dot -Tsvg` of topology_graph's DOT for a
two-node lab with pods `default/client` and `shop/web-0` (Graphviz writes the `-` of an id
as `&#45;`)."""

from __future__ import annotations

from pathlib import Path
from xml.dom import minidom

import pytest

from pycalico.lab.svg_pods import SvgError, annotate

SVG = (Path(__file__).parent / "golden" / "lab_page" / "two_nodes.svg").read_text()


def groups(svg: str, attribute: str) -> dict[str, minidom.Element]:
    root = minidom.parseString(svg).documentElement
    return {
        g.getAttribute(attribute): g
        for g in root.getElementsByTagName("g")
        if g.hasAttribute(attribute)
    }


def test_every_pod_becomes_a_button_named_by_its_key() -> None:
    pods = groups(annotate(SVG), "data-pod")
    assert sorted(pods) == ["default/client", "shop/web-0"]
    web = pods["shop/web-0"]
    assert web.getAttribute("id") == "pod:shop/web-0"
    assert web.getAttribute("class").split() == ["node", "pod"]
    assert web.getAttribute("role") == "button"
    assert web.getAttribute("tabindex") == "0"
    assert web.getAttribute("aria-label") == "pod shop/web-0: show its policies"


def test_every_node_is_named_and_nothing_else_is_marked() -> None:
    annotated = annotate(SVG)
    assert sorted(groups(annotated, "data-node")) == ["node1", "node2"]
    assert groups(annotated, "data-node")["node1"].getAttribute("class") == "node lab-node"
    assert "pod" not in groups(annotated, "id")["bridge:br0"].getAttribute("class").split()
    assert "data-pod" not in groups(annotated, "id")["veth:default/client"].attributes


def test_the_result_is_the_svg_element_alone_ready_for_a_page() -> None:
    annotated = annotate(SVG)
    assert annotated.startswith("<svg ")
    assert "<?xml" not in annotated and "<!DOCTYPE" not in annotated
    root = minidom.parseString(annotated).documentElement
    assert root.getAttribute("xmlns") == "http://www.w3.org/2000/svg"
    assert root.getAttribute("class") == "topology"
    # The drawing itself is kept: every node, edge and label Graphviz laid out.
    assert len(root.getElementsByTagName("text")) == len(
        minidom.parseString(SVG).documentElement.getElementsByTagName("text")
    )


def test_annotating_twice_adds_the_class_once() -> None:
    twice = annotate(annotate(SVG))
    assert groups(twice, "data-pod")["default/client"].getAttribute("class") == "node pod"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dot: syntax error", "Graphviz gave no readable SVG"),
        ("<html><body/></html>", "Graphviz gave <html>, not <svg>"),
    ],
)
def test_what_is_not_svg_is_refused_in_one_line(text: str, message: str) -> None:
    with pytest.raises(SvgError, match=message) as refused:
        annotate(text)
    assert "\n" not in str(refused.value)
