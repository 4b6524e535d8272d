"""The lab page's answers: `calico-lab graph`, a pod's policies and `calico-lab trace`,
each computed as the command computes it, for the page that `calico-lab console` serves
under /lab/ (console_front.py).

    GET  /lab/                  the page (pycalico/lab/page: plain HTML, CSS and JS)
    GET  /lab/api/lab           the lab's nodes and pods, from its record
    GET  /lab/api/graph         the Graphviz SVG of `calico-lab graph`, pods clickable
    GET  /lab/api/policies?pod=NS/POD
                                the policies selecting the pod, ingress and egress, by tier
                                and order, then its profiles (the plan explain walks)
    POST /lab/api/trace         {"from", "to", "proto", "port"}: `calico-lab trace -o json`

The lab's record is read again for every request, so pods made while the console runs are
there. Traces run one at a time: each puts a trace table named after this process into every
namespace on the path, and two at once would share it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from pycalico.lab import page_requests, page_views
from pycalico.lab.state import LabState

JSON = "application/json"
SVG = "image/svg+xml"


def _files() -> dict[str, tuple[bytes, str]]:
    files = resources.files("pycalico.lab") / "page"
    return {
        "/lab/": ((files / "index.html").read_bytes(), "text/html; charset=utf-8"),
        "/lab/lab.js": ((files / "lab.js").read_bytes(), "text/javascript; charset=utf-8"),
        "/lab/lab.css": ((files / "lab.css").read_bytes(), "text/css; charset=utf-8"),
    }


FILES = _files()


@dataclass
class LabPage:
    lab: str
    _trace_lock: threading.Lock = field(default_factory=threading.Lock)

    def state(self) -> LabState:
        return LabState.load(self.lab)

    def summary(self) -> dict[str, Any]:
        return page_views.summary(self.state())

    def graph(self) -> str:
        from pycalico.lab import lab_graph, svg_pods

        svg = lab_graph.layout(lab_graph.graph(self.state()), "svg")
        return svg_pods.annotate(svg.decode())

    def policies(self, query: str) -> dict[str, Any]:
        from pycalico.lab.trace_policy import load_inputs

        state = self.state()
        key = page_requests.policies_query(query, state.pods, state.name)
        return page_views.pod_policies(load_inputs(state), key)

    def trace(self, body: bytes) -> str:
        from pycalico.lab import packet_trace, trace_report

        state = self.state()
        request = page_requests.trace_request(body, state.pods, state.name)
        with self._trace_lock:
            found = packet_trace.trace(
                state, request.source, request.destination, request.protocol, request.port
            )
        return trace_report.as_json(found)
