"""The Prometheus text calico-node and calico-goldmane serve: names and types as Go's client
writes them, which is what Felix's and Goldmane's dashboards query."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector, CollectorRegistry

from pycalico.metrics import exposition


class _Fixed(Collector):
    def __init__(self, *families: Metric) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def _text(*families: Metric) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(*families))
    return exposition.text(registry).decode()


def test_a_go_counter_without_total_is_typed_under_its_own_name() -> None:
    counter = Metric("felix_int_dataplane_failures", "Failed applies.", "counter")
    counter.add_sample("felix_int_dataplane_failures", {}, 3)
    assert _text(counter) == (
        "# HELP felix_int_dataplane_failures Failed applies.\n"
        "# TYPE felix_int_dataplane_failures counter\n"
        "felix_int_dataplane_failures 3\n"
    )


def test_a_counter_named_with_total_keeps_it_in_type_and_sample() -> None:
    text = _text(CounterMetricFamily("goldmane_aggr_received_flows_total", "Received.", value=2))
    assert "# TYPE goldmane_aggr_received_flows_total counter\n" in text
    assert "goldmane_aggr_received_flows_total 2\n" in text
    assert "_created" not in text


def test_whole_numbers_have_no_fraction_and_others_keep_theirs() -> None:
    gauge = GaugeMetricFamily("g", "A gauge.", labels=["table"])
    gauge.add_metric(["IPv4:254"], 12.0)
    gauge.add_metric(["IPv6:254"], 0.25)
    text = _text(gauge)
    assert 'g{table="IPv4:254"} 12\n' in text
    assert 'g{table="IPv6:254"} 0.25\n' in text


def test_label_values_and_help_are_escaped() -> None:
    gauge = GaugeMetricFamily("felix_host", "Help with \\ and\nnewline.", labels=["host"])
    gauge.add_metric(['a"b\\c'], 1)
    text = _text(gauge)
    assert "# HELP felix_host Help with \\\\ and\\nnewline.\n" in text
    assert 'felix_host{host="a\\"b\\\\c"} 1\n' in text
    family = next(text_string_to_metric_families(text))
    assert family.samples[0].labels == {"host": 'a"b\\c'}


def test_prometheus_parses_every_family_with_its_type() -> None:
    counter = Metric("felix_resyncs_started", "Resyncs.", "counter")
    counter.add_sample("felix_resyncs_started", {}, 1)
    summary = Metric("felix_int_dataplane_apply_time_seconds", "Apply time.", "summary")
    summary.add_sample("felix_int_dataplane_apply_time_seconds", {"quantile": "0.5"}, 0.1)
    summary.add_sample("felix_int_dataplane_apply_time_seconds_sum", {}, 0.3)
    summary.add_sample("felix_int_dataplane_apply_time_seconds_count", {}, 3)
    parsed = {f.name: f.type for f in text_string_to_metric_families(_text(counter, summary))}
    assert parsed == {
        "felix_resyncs_started": "counter",
        "felix_int_dataplane_apply_time_seconds": "summary",
    }
