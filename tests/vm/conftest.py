"""The VM suite's fixtures: the VM runner, and the multi-host cluster (`make test-hosts`),
or a skip saying why QEMU cannot run here.

Every run's boot + teardown time and total time, and where each cluster's time went, are
listed at the end of the session.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import pytest

from .cluster import Cluster, cluster
from .harness import VmRun, qemu_unusable, run_in_vm

_RUNS: list[tuple[str, VmRun]] = []
_CLUSTERS: list[tuple[str, Cluster, float]] = []


@pytest.fixture(scope="session")
def vm() -> Callable[..., VmRun]:
    reason = qemu_unusable()
    if reason is not None:
        pytest.skip(f"QEMU cannot run here: {reason}")
    return run_in_vm


@pytest.fixture(scope="module")
def hosts(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """Two guests on a private segment, etcd on host1, calico-node and podman on both; one
    cluster per test module, its checks run in the module's order."""
    reason = qemu_unusable()
    if reason is None and os.geteuid() != 0:
        reason = "its guests' segment (network namespaces, taps) needs root"
    if reason is not None:
        pytest.skip(f"QEMU cannot run here: {reason}")
    started = time.monotonic()
    with cluster() as c:
        try:
            yield c
        finally:
            c.step("checks")
            _CLUSTERS.append((request.module.__name__, c, time.monotonic() - started))


@pytest.fixture
def record_vm_run(request: pytest.FixtureRequest) -> Callable[[VmRun], None]:
    def record(run: VmRun) -> None:
        _RUNS.append((request.node.name, run))

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _CLUSTERS:
        terminalreporter.section("multi-host clusters (stock kernel under QEMU)")
        for module, c, seconds in _CLUSTERS:
            steps = ", ".join(f"{what} {took:.0f}s" for what, took in c.steps)
            terminalreporter.write_line(f"{module}: {seconds:.0f}s ({steps})")
            for host, boot in c.boot_times.items():
                terminalreporter.write_line(f"  {host}: {boot}")
    if not _RUNS:
        return
    terminalreporter.section("VM runs (stock kernel under QEMU)")
    for name, run in _RUNS:
        terminalreporter.write_line(
            f"{name}: boot + teardown {run.boot_teardown_seconds:.1f}s, "
            f"job {run.job_seconds:.1f}s, total {run.seconds:.1f}s"
        )
        # What the job itself reported last (a guest pytest's summary, say).
        last = next((line for line in reversed(run.output.splitlines()) if line.strip()), "")
        if last:
            terminalreporter.write_line(f"  guest: {last.strip()}")
