"""The one exception the selector package raises for text it cannot accept."""

from __future__ import annotations

# Enough of the offending text to recognise the spot without flooding a log line.
_EXCERPT_LENGTH = 24


class SelectorError(ValueError):
    """Selector text is invalid.

    `position` is the 0-based character offset of the problem in `selector`, and `reason`
    says what was expected there. The message is a single line, so it survives logs and
    API error bodies intact; the excerpt of the remaining text is shown as a Python
    literal, which escapes any newline it contains.
    """

    def __init__(self, reason: str, selector: str, position: int) -> None:
        message = f"{reason} at position {position}"
        rest = selector[position:]
        if rest:
            if len(rest) > _EXCERPT_LENGTH:
                rest = rest[:_EXCERPT_LENGTH] + "..."
            message += f": {rest!r}"
        super().__init__(message)
        self.reason = reason
        self.selector = selector
        self.position = position
