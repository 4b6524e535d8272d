"""Tables drawn the way calicoctl draws them (olekukonko/tablewriter v0.0.5 defaults).

Boxed with `+`, `-`, `|`; headers upper-cased and centred; cells that look like numbers
right-aligned, the rest left-aligned; a cell wider than 30 columns that contains spaces is
wrapped onto several lines (calicoctl node status shows `Active Socket: Connection` /
`refused` that way).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_NUMBER = re.compile(r"[-+]?\d*\.?\d+([eE][-+]?\d+)?")
WRAP_WIDTH = 30  # tablewriter's MaxColWidth
_OVERLONG_PENALTY = 100000  # tablewriter's defaultPenalty


def _cell(text: str, width: int) -> str:
    return text.rjust(width) if _NUMBER.fullmatch(text) else text.ljust(width)


def _centre(text: str, width: int) -> str:
    left = (width - len(text)) // 2
    return " " * left + text + " " * (width - len(text) - left)


def _wrap_words(text: str, limit: int) -> list[str]:
    """tablewriter's WrapString: break at single spaces into lines of at most `limit`
    (or the longest word), choosing the breaks that minimise the sum of squared slack."""
    words = text.split(" ")
    limit = max(limit, *(len(w) for w in words))
    count = len(words)

    def span(i: int, j: int) -> int:  # width of words i..j joined by spaces
        return sum(len(w) for w in words[i : j + 1]) + (j - i)

    cost = [0] * count
    next_break = [count] * count
    for i in range(count - 1, -1, -1):
        if span(i, count - 1) <= limit:
            continue
        cost[i] = 2**31 - 1
        for j in range(i + 1, count):
            slack = limit - span(i, j - 1)
            candidate = slack * slack + cost[j]
            if span(i, j - 1) > limit:
                candidate += _OVERLONG_PENALTY
            if candidate < cost[i]:
                cost[i], next_break[i] = candidate, j
    lines, i = [], 0
    while i < count:
        lines.append(" ".join(words[i : next_break[i]]))
        i = next_break[i]
    return lines


def _lines(text: str) -> tuple[list[str], int]:
    """A cell's lines and the column width it needs."""
    paragraphs = text.split("\n")
    width = min(max(len(p) for p in paragraphs), WRAP_WIDTH)
    lines: list[str] = []
    for index, paragraph in enumerate(paragraphs):
        if index:
            lines.append(" ")
        lines += _wrap_words(paragraph, width)
    return lines, max(width, *(len(line) for line in lines))


def render(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    heads = [h.upper() for h in headers]
    cells = [[_lines(c) for c in row] for row in rows]
    widths = [max([len(h)] + [r[i][1] for r in cells]) for i, h in enumerate(heads)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    out = [
        rule,
        "| " + " | ".join(_centre(h, w) for h, w in zip(heads, widths, strict=True)) + " |",
        rule,
    ]
    for row in cells:
        height = max(len(lines) for lines, _ in row)
        for n in range(height):
            texts = [lines[n] if n < len(lines) else "" for lines, _ in row]
            out.append(
                "| " + " | ".join(_cell(t, w) for t, w in zip(texts, widths, strict=True)) + " |"
            )
    out.append(rule)
    return "\n".join(out) + "\n"
