"""`calico-lab logs --component`: which component wrote each line of calico-node's log."""

from __future__ import annotations

from pycalico.lab.node_logs import component_of

LOG = [
    ("2026-12-07 12:15:18,231 INFO pycalico.datastore created datastore x", "other"),
    ("2026-12-07 12:15:19.382 <TRACE> kernel4: Initializing", "bird"),
    ("2026-12-07 12:15:19,410 INFO pycalico.confd BIRD started (pid 20368)", "confd"),
    ("2026-12-07 12:15:20,001 WARNING pycalico.felix dataplane apply failed", "felix"),
    ("Traceback (most recent call last):", "felix"),
    ('  File "x.py", line 1, in <module>', "felix"),
    ("2026-12-07 12:15:21,000 INFO pycalico.cni ADD container abc", "cni"),
    ("2026-12-07 12:15:22.027 <INFO> Mesh_192_168_56_11: State changed to up", "bird"),
]


def test_each_line_goes_to_the_component_that_wrote_it() -> None:
    previous = "other"
    seen = []
    for line, _ in LOG:
        previous = component_of(line, previous)
        seen.append(previous)
    assert seen == [component for _, component in LOG]


def test_a_continuation_line_at_the_start_belongs_to_no_component() -> None:
    assert component_of("  continuation", "other") == "other"
