"""The VM harness's pure parts: what the guest is given of the host, and what a failed job's
error says (tests/vm boots the VM itself)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.vm.harness import (
    JOB_DIR,
    Share,
    VmError,
    VmJobFailed,
    VmRun,
    _mount_lines,
    checkout_shares,
    shares,
)


def a_run(rc: int, output: str, console: str = "") -> VmRun:
    return VmRun("python -m pytest x.py", "/tmp/clone", rc, output, console, 9.0, 0.1)


def test_a_failed_jobs_error_carries_its_exit_code_and_output() -> None:
    with pytest.raises(VmJobFailed) as failed:
        a_run(1, "collected 3 items\nMARKER-7f3a\n").check("the checks failed")
    message = str(failed.value)
    assert message.startswith("the checks failed: `python -m pytest x.py` (in /tmp/clone) exited 1")
    assert "MARKER-7f3a" in message


def test_a_job_that_printed_nothing_fails_with_the_consoles_end() -> None:
    run = a_run(2, "", console="[ 1.0] boot\nstage2: 5: cd: can't cd to /tmp/clone\n")
    with pytest.raises(VmJobFailed) as failed:
        run.check()
    assert "its output:\n(none)" in str(failed.value)
    assert "can't cd to /tmp/clone" in str(failed.value)


def test_a_job_that_exited_0_passes_its_check() -> None:
    run = a_run(0, "ok\n")
    assert run.check() is run


def test_a_checkout_under_tmp_with_its_venv_inside_is_one_share_at_its_own_path(
    tmp_path: Path,
) -> None:
    assert checkout_shares(tmp_path, str(tmp_path / ".venv"), "/usr") == [
        Share(tmp_path, str(tmp_path))
    ]


def test_a_venv_outside_the_checkout_and_a_base_python_the_guest_would_hide_are_shared(
    tmp_path: Path,
) -> None:
    repo, venv, base = tmp_path / "repo", tmp_path / "venv", Path("/run/python3.11")
    assert [s.guest for s in checkout_shares(repo, str(venv), str(base))] == [
        str(repo),
        str(venv),
        str(base),
    ]
    assert [s.guest for s in checkout_shares(repo, str(venv), "/usr")] == [str(repo), str(venv)]


def test_the_root_comes_first_then_every_share_before_those_inside_it(tmp_path: Path) -> None:
    inner = Share(tmp_path / "a", "/tmp/x/inner", writable=True)
    outer = Share(tmp_path / "b", "/tmp/x")
    plan = shares(tmp_path / "job", [inner, outer])
    assert plan[0] == Share(Path("/"), "/")
    assert Share(tmp_path / "job", JOB_DIR, writable=True) in plan
    assert plan.index(outer) < plan.index(inner)


@pytest.mark.parametrize("guest", ["/", "relative/path"])
def test_a_share_over_the_root_or_at_a_relative_path_is_refused(tmp_path: Path, guest: str) -> None:
    with pytest.raises(VmError, match="absolute and not /"):
        shares(tmp_path / "job", [Share(tmp_path, guest)])


def test_shares_under_tmp_and_run_are_mounted_over_the_guests_own_tmpfs(tmp_path: Path) -> None:
    # Mounted before the tmpfs, a checkout under /tmp was hidden from the job.
    lines = _mount_lines(shares(tmp_path / "job", [Share(tmp_path, "/tmp/clone")])).splitlines()

    def where(fragment: str) -> int:
        mounts = [i for i, line in enumerate(lines) if line.startswith("mount")]
        (index,) = [i for i in mounts if fragment in lines[i]]
        return index

    assert where("tmpfs /newroot/tmp") < where(" /newroot/tmp/clone ")
    assert where("tmpfs /newroot/run") < where(f" /newroot{JOB_DIR} ")
