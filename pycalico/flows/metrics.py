"""calico-goldmane's Prometheus metrics: Goldmane's own names (reference flows.md §2), then
pycalico's counters of the record stream that Goldmane's gRPC stream has no need of."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pycalico.flows.aggregator import Aggregator


class GoldmaneMetrics(Collector):
    def __init__(self, aggregator: Aggregator) -> None:
        self._aggregator = aggregator

    def collect(self) -> Iterator[Metric]:
        stats = self._aggregator.stats()
        yield CounterMetricFamily(
            "goldmane_aggr_received_flows_total",
            "Total number of flows received by the aggregator.",
            value=stats.received,
        )
        yield CounterMetricFamily(
            "goldmane_aggr_dropped_flows_total",
            "Flows dropped: their bucket was full, or they fell outside the window.",
            value=stats.dropped,
        )
        yield GaugeMetricFamily(
            "goldmane_aggr_num_unique_flows",
            "Unique flows held in the aggregation window.",
            value=stats.unique_flows,
        )
        yield CounterMetricFamily(
            "pycalico_flows_duplicate_records_total",
            "Records a sender sent again that the aggregator held already.",
            value=stats.duplicates,
        )
        yield CounterMetricFamily(
            "pycalico_flows_rejected_records_total",
            "Records that were no flow (refused, with a warning).",
            value=stats.rejected,
        )
        yield GaugeMetricFamily(
            "pycalico_flows_senders", "Senders the aggregator has heard from.", value=stats.senders
        )
