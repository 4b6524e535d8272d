"""The lab's Graphviz SVG made ready for the lab page (pure).

topology_graph gives every drawn thing an `id` that Graphviz keeps on its `<g>`
(`pod:default/web`, `node:node1`); here each pod's group becomes a button the page can
click and each node's group names its node, so the page finds them by attribute rather
than by parsing ids. What comes back is the `<svg>` element alone (no XML declaration, no
DOCTYPE), to be put into the page as it is.
"""

from __future__ import annotations

from xml.dom import minidom
from xml.parsers.expat import ExpatError

POD_PREFIX = "pod:"
NODE_PREFIX = "node:"


class SvgError(ValueError):
    pass


def annotate(svg: str) -> str:
    """`svg` with `data-pod`, `class="node pod"`, role and tabindex on every pod's group and
    `data-node` on every node's group."""
    try:
        document = minidom.parseString(svg.encode())
    except ExpatError as exc:
        raise SvgError(f"Graphviz gave no readable SVG: {exc}") from None
    root = document.documentElement
    if root.tagName != "svg":
        raise SvgError(f"Graphviz gave <{root.tagName}>, not <svg>")
    for group in root.getElementsByTagName("g"):
        ident = group.getAttribute("id")
        if ident.startswith(POD_PREFIX):
            pod = ident[len(POD_PREFIX) :]
            _add_class(group, "pod")
            group.setAttribute("data-pod", pod)
            group.setAttribute("role", "button")
            group.setAttribute("tabindex", "0")
            group.setAttribute("aria-label", f"pod {pod}: show its policies")
        elif ident.startswith(NODE_PREFIX):
            _add_class(group, "lab-node")
            group.setAttribute("data-node", ident[len(NODE_PREFIX) :])
    root.setAttribute("class", "topology")
    return str(root.toxml())


def _add_class(element: minidom.Element, name: str) -> None:
    classes = element.getAttribute("class").split()
    if name not in classes:
        element.setAttribute("class", " ".join([*classes, name]))
