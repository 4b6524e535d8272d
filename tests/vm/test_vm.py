"""The VM suite: Debian's stock kernel under QEMU, and the IPIP e2e checks run inside it."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .harness import GUEST_MODULES, REPO, Share, VmJobFailed, VmRun

pytestmark = pytest.mark.vm

CHECKS = "tests/vm/ipip_checks.py"
# Under emulation the checks take about 3 minutes on a quiet 2-core machine; with other QEMU
# guests and test runs beside them they took 11.5 (690 s), so the guard leaves room for that.
CHECKS_TIMEOUT = 900.0


def test_the_vm_runs_a_command_on_the_stock_kernel_and_returns_its_output_and_exit_code(
    vm: Callable[..., VmRun], record_vm_run: Callable[[VmRun], None], tmp_path: Path
) -> None:
    # tmp_path is under /tmp, which the guest's own tmpfs hides: shared, it is there.
    (tmp_path / "from-host").write_text("host wrote\n")
    marker = f"/etc/pycalico-vm-{os.getpid()}"
    script = (
        "uname -r; ls -d /sys/class/net/*/device 2>&1; "
        f"touch {marker} && echo wrote; "
        "pwd; cat from-host; echo guest wrote > from-guest; "
        f"for m in {' '.join(GUEST_MODULES)}; do echo $m $(cat /sys/module/$m/initstate); done; "
        "exit 3"
    )
    run = vm(
        ["/bin/sh", "-c", script],
        timeout=120,
        cwd=str(tmp_path),
        extra_shares=[Share.same_path(tmp_path, writable=True)],
    )
    record_vm_run(run)
    release, devices, wrote, cwd, host_wrote, *modules = run.output.splitlines()
    assert run.rc == 3, run.output
    assert release != os.uname().release and release.endswith("-amd64")  # Debian's, not ours
    assert "No such file" in devices  # no network device at all
    assert wrote == "wrote" and not os.path.exists(marker)  # guest writes stay in the guest
    assert (cwd, host_wrote) == (str(tmp_path.resolve()), "host wrote")
    assert (tmp_path / "from-guest").read_text() == "guest wrote\n"  # ...except in a share
    assert modules == [f"{m} live" for m in GUEST_MODULES]
    with pytest.raises(VmJobFailed) as failed:
        run.check("the job failed")
    assert "exited 3" in str(failed.value) and "host wrote" in str(failed.value)


def test_a_job_whose_directory_the_guest_lacks_fails_saying_so(
    vm: Callable[..., VmRun], record_vm_run: Callable[[VmRun], None], tmp_path: Path
) -> None:
    # A checkout under /tmp, unshared, looked like this: the job gone in 0.1 s, silent.
    run = vm(["/bin/true"], timeout=120, cwd=str(tmp_path))
    record_vm_run(run)
    with pytest.raises(VmJobFailed) as failed:
        run.check("the job failed")
    assert f"can't cd to {tmp_path}" in str(failed.value)


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
    run.check("the IPIP checks failed inside the VM")
