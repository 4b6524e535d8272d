"""Prometheus's text format (0.0.4) from a prometheus_client registry, named as Go's client
names things.

prometheus_client's own writer gives every counter a `_total` suffix in its TYPE line.
Felix's counters are Go counters without that suffix (`felix_int_dataplane_failures`,
`felix_resyncs_started`), and dashboards query those names; so a counter family is typed
under the name its samples carry: `name_total` where they have the suffix (Goldmane's
counters, the process collector's), `name` where they do not. OpenMetrics-only samples
(`_created`) are left out, as Go's client has none.
"""

from __future__ import annotations

from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_TYPES = {"unknown": "untyped", "info": "gauge", "stateset": "gauge", "gaugehistogram": "histogram"}


def _label_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _value(value: float) -> str:
    """As Go's strconv 'g' writes it: whole numbers without a fraction (`4`, not `4.0`)."""
    if value == value and abs(value) < 1e15 and float(value).is_integer():
        return str(int(value))
    return str(floatToGoString(value))


def _help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def text(registry: Collector) -> bytes:
    lines: list[str] = []
    for family in registry.collect():
        name = family.name
        if family.type == "counter" and any(s.name == name + "_total" for s in family.samples):
            name += "_total"
        lines.append(f"# HELP {name} {_help(family.documentation)}")
        lines.append(f"# TYPE {name} {_TYPES.get(family.type, family.type)}")
        for sample in family.samples:
            if sample.name == family.name + "_created":
                continue
            labels = ",".join(
                f'{key}="{_label_value(value)}"' for key, value in sorted(sample.labels.items())
            )
            where = f"{{{labels}}}" if labels else ""
            lines.append(f"{sample.name}{where} {_value(sample.value)}")
    return ("\n".join(lines) + "\n").encode() if lines else b""
