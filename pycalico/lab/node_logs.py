"""`calico-lab logs NODE [--component felix|confd|bird|cni] [-f]`: a node's log, or one
component's part of it.

calico-node writes one log (`nodes/<node>/calico-node.log`): its own lines name their
component (`... INFO pycalico.felix ...`), and BIRD, its child, writes there too in BIRD's
own format (`... <INFO> ...`). The CNI plugin writes `nodes/<node>/cni.log`, the file
Calico's plugin keeps in /var/log/calico/cni/cni.log on a host.
"""

from __future__ import annotations

import os
import re
import time
from typing import TextIO

from pycalico.lab.state import LabError, LabState

FOLLOW_POLL = 0.2
_PYTHON_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ (pycalico\.[a-z_]+)")
_BIRD_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? <[A-Z]+> ")
# Each component's lines in calico-node's log, by the logger that writes them.
LOGGERS = {"felix": "pycalico.felix", "confd": "pycalico.confd", "cni": "pycalico.cni"}


def component_of(line: str, previous: str) -> str:
    """Which component wrote `line`: a logger's component, "bird", "other" for calico-node's
    remaining loggers; a line in no log format continues the entry before it (`previous`)."""
    found = _PYTHON_LINE.match(line)
    if found:
        logger = found.group(1)
        return next((c for c, name in LOGGERS.items() if name == logger), "other")
    if _BIRD_LINE.match(line):
        return "bird"
    return previous


def _path(state: LabState, node: str, component: str | None) -> str:
    name = "cni.log" if component == "cni" else "calico-node.log"
    return state.path("nodes", node, name)


def show(state: LabState, node: str, component: str | None, follow: bool, out: TextIO) -> int:
    if node not in state.nodes:
        raise LabError(f"no node {node!r} in lab {state.name} (nodes: {', '.join(state.nodes)})")
    path = _path(state, node, component)
    if not os.path.exists(path):
        if component == "cni":
            out.write(f"# no CNI call on {node} yet ({path})\n")
            if not follow:
                return 0
            while not os.path.exists(path):
                time.sleep(FOLLOW_POLL)
        else:
            raise LabError(f"{node} has no log yet ({path})")
    # The CNI's file is all CNI; calico-node's is filtered down to the component.
    wanted = None if component in (None, "cni") else component
    with open(path, encoding="utf-8", errors="replace") as f:
        previous = "other"
        try:
            while True:
                chunk = f.readlines()
                for line in chunk:
                    previous = component_of(line, previous)
                    if wanted is None or previous == wanted:
                        out.write(line)
                out.flush()
                if not follow:
                    return 0
                if not chunk:
                    time.sleep(FOLLOW_POLL)
        except KeyboardInterrupt:  # how `-f` ends
            return 0
