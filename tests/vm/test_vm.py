"""The VM suite: Debian's stock kernel under QEMU, and the IPIP e2e checks run inside it."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .harness import GUEST_MODULES, VmRun

pytestmark = pytest.mark.vm

REPO = Path(__file__).resolve().parents[2]
CHECKS = "tests/vm/ipip_checks.py"
# Under emulation the checks take a few minutes; CI allows the whole VM suite 10.
CHECKS_TIMEOUT = 480.0


def test_the_vm_runs_a_command_on_the_stock_kernel_and_returns_its_output_and_exit_code(
    vm: Callable[..., VmRun], record_vm_run: Callable[[VmRun], None]
) -> None:
    marker = f"/etc/pycalico-vm-{os.getpid()}"
    script = (
        "uname -r; ls -d /sys/class/net/*/device 2>&1; "
        f"touch {marker} && echo wrote; "
        f"for m in {' '.join(GUEST_MODULES)}; do echo $m $(cat /sys/module/$m/initstate); done; "
        "exit 3"
    )
    run = vm(["/bin/sh", "-c", script], timeout=120)
    record_vm_run(run)
    release, devices, wrote, *modules = run.output.splitlines()
    assert run.rc == 3, run.output
    assert release != os.uname().release and release.endswith("-amd64")  # Debian's, not ours
    assert "No such file" in devices  # no network device at all
    assert wrote == "wrote" and not os.path.exists(marker)  # guest writes stay in the guest
    assert modules == [f"{m} live" for m in GUEST_MODULES]


def test_ipip_e2e_checks_pass_inside_the_vm(
    vm: Callable[..., VmRun], record_vm_run: Callable[[VmRun], None]
) -> None:
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-v",
        "-rP",
        "--durations=0",
        CHECKS,
    ]
    run = vm(cmd, timeout=CHECKS_TIMEOUT, cwd=str(REPO))
    record_vm_run(run)
    if run.rc != 0:
        pytest.fail(f"the IPIP checks failed inside the VM:\n{run.output}", pytrace=False)
