"""A registry of pycalico's collectors, with the process collector beside them: Felix and
Goldmane, being Go programs, export `process_*` (CPU, memory, open files, start time) by
default, and so do calico-node and calico-goldmane."""

from __future__ import annotations

from prometheus_client import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry


def new_registry(*collectors: Collector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    for collector in collectors:
        registry.register(collector)
    return registry
