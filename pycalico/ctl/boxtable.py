"""Tables drawn the way calicoctl's ipam commands draw them (olekukonko/tablewriter defaults).

Boxed with `+`, `-`, `|`; headers upper-cased and centred; cells that look like numbers
right-aligned, the rest left-aligned.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_NUMBER = re.compile(r"[-+]?\d*\.?\d+([eE][-+]?\d+)?")


def _cell(text: str, width: int) -> str:
    return text.rjust(width) if _NUMBER.fullmatch(text) else text.ljust(width)


def _centre(text: str, width: int) -> str:
    left = (width - len(text)) // 2
    return " " * left + text + " " * (width - len(text) - left)


def render(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    heads = [h.upper() for h in headers]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(heads)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    lines = [
        rule,
        "| " + " | ".join(_centre(h, w) for h, w in zip(heads, widths, strict=True)) + " |",
        rule,
    ]
    lines += [
        "| " + " | ".join(_cell(c, w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    lines.append(rule)
    return "\n".join(lines) + "\n"
