"""What a new bird.cfg changes against the one BIRD runs, in a few words for confd's INFO
log line (pure): the BGP sessions added and removed (by Calico's protocol names, such as
`Mesh_192_168_56_12`), and how many other lines changed."""

from __future__ import annotations

import difflib
import re

_BGP = re.compile(r"^\s*protocol bgp (\S+)")
LISTED = 3


def _sessions(text: str) -> set[str]:
    return {m.group(1) for line in text.splitlines() if (m := _BGP.match(line))}


def _names(names: set[str]) -> str:
    ordered = sorted(names)
    more = f" and {len(ordered) - LISTED} more" if len(ordered) > LISTED else ""
    return ", ".join(ordered[:LISTED]) + more


def summary(old: str, new: str) -> str:
    if not old:
        sessions = _sessions(new)
        return f"first config: {len(sessions)} BGP sessions" + (
            f" ({_names(sessions)})" if sessions else ""
        )
    parts = []
    before, after = _sessions(old), _sessions(new)
    if after - before:
        parts.append(f"BGP sessions added {_names(after - before)}")
    if before - after:
        parts.append(f"BGP sessions removed {_names(before - after)}")
    changed = sum(
        1
        for line in difflib.unified_diff(old.splitlines(), new.splitlines(), n=0, lineterm="")
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    )
    parts.append(f"{changed} lines changed")
    return "; ".join(parts)
