"""The VM suite's fixture: the VM runner, or a skip saying why QEMU cannot run here.

Every run's boot + teardown time and total time are listed at the end of the session.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .harness import VmRun, qemu_unusable, run_in_vm

_RUNS: list[tuple[str, VmRun]] = []


@pytest.fixture(scope="session")
def vm() -> Callable[..., VmRun]:
    reason = qemu_unusable()
    if reason is not None:
        pytest.skip(f"QEMU cannot run here: {reason}")
    return run_in_vm


@pytest.fixture
def record_vm_run(request: pytest.FixtureRequest) -> Callable[[VmRun], None]:
    def record(run: VmRun) -> None:
        _RUNS.append((request.node.name, run))

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
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
