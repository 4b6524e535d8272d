"""Go durations (metav1.Duration): parsed as time.ParseDuration, stored as Duration.String().

Calico stores what Go marshals, so `90s` is kept as `1m30s` and `0` as `0s`; doing the same
keeps pycalico's stored objects identical to Calico's.
"""

from __future__ import annotations

from typing import Any

from pycalico.api.schema import type_name

_NS_PER_UNIT = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 MICRO SIGN
    "μs": 1_000,  # U+03BC GREEK SMALL LETTER MU
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_INVALID_DURATION = "invalid duration (use Go syntax such as 90s, 1m30s, 500ms)"


def _digits_end(text: str, start: int) -> int:
    end = start
    while end < len(text) and "0" <= text[end] <= "9":
        end += 1
    return end


def parse_go_duration(text: str) -> int:
    """Nanoseconds in `text`, read exactly as Go's time.ParseDuration reads it."""
    rest = text
    negative = False
    if rest and rest[0] in "+-":
        negative = rest[0] == "-"
        rest = rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise ValueError(_INVALID_DURATION)
    limit = 1 << 63
    total = 0
    while rest:
        int_end = _digits_end(rest, 0)
        whole = rest[:int_end]
        pos = int_end
        fraction = ""
        if pos < len(rest) and rest[pos] == ".":
            frac_end = _digits_end(rest, pos + 1)
            fraction = rest[pos + 1 : frac_end]
            pos = frac_end
        if not whole and not fraction:
            raise ValueError(_INVALID_DURATION)
        unit_end = pos
        while unit_end < len(rest) and rest[unit_end] != "." and not "0" <= rest[unit_end] <= "9":
            unit_end += 1
        unit = _NS_PER_UNIT.get(rest[pos:unit_end])
        if unit is None:
            raise ValueError(_INVALID_DURATION)
        value = int(whole or "0")
        if value > limit // unit:
            raise ValueError(_INVALID_DURATION)
        value *= unit
        # Go keeps the first fraction digits that fit a uint64 and scales them with float64
        # arithmetic; doing the same keeps rounding identical (e.g. for "1.0000000001s").
        digits, scale = 0, 1.0
        for char in fraction:
            if digits > (limit - 1) // 10 or digits * 10 + int(char) > limit:
                break
            digits = digits * 10 + int(char)
            scale *= 10
        if digits:
            value += int(float(digits) * (float(unit) / scale))
        total += value
        if total > limit:
            raise ValueError(_INVALID_DURATION)
        rest = rest[unit_end:]
    if not negative and total > limit - 1:
        raise ValueError(_INVALID_DURATION)
    return -total if negative else total


def _with_fraction(value: int, digits: int) -> str:
    whole, frac = divmod(value, 10**digits)
    if not frac:
        return str(whole)
    return f"{whole}.{str(frac).rjust(digits, '0').rstrip('0')}"


def _format_go_duration(ns: int) -> str:
    """The string Go's time.Duration.String() gives, which is what metav1.Duration stores."""
    if ns == 0:
        return "0s"
    sign, size = ("-", -ns) if ns < 0 else ("", ns)
    if size < 1_000:
        return f"{sign}{size}ns"
    if size < 1_000_000:
        return f"{sign}{_with_fraction(size, 3)}µs"
    if size < 1_000_000_000:
        return f"{sign}{_with_fraction(size, 6)}ms"
    seconds, frac = divmod(size, 1_000_000_000)
    minutes, seconds = divmod(seconds, 60)
    text = f"{_with_fraction(seconds * 1_000_000_000 + frac, 9)}s"
    if minutes:
        hours, minutes = divmod(minutes, 60)
        text = f"{minutes}m{text}"
        if hours:
            text = f"{hours}h{text}"
    return sign + text


def go_duration(value: Any) -> str:
    """A metav1.Duration, stored the way Go marshals it: `90s` becomes `1m30s`, `0` `0s`."""
    if not isinstance(value, str):
        raise ValueError(f"must be a duration string, not a {type_name(value)}")
    return _format_go_duration(parse_go_duration(value))
