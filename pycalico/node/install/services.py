"""Telling systemd, and stopping the processes an installed node runs.

systemctl is used only for the host's real root, and only when systemd runs the host
(sd_booted's test: /run/systemd/system exists); with `--root` (a throwaway root) it is left
alone, as there is no service of that root to tell. Processes are found by calico-node's
pid files and checked by name before any signal, so a stale pid file never kills a
stranger.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable

from pycalico.node.install.errors import InstallError
from pycalico.node.install.layout import (
    BIRD_PID_FILE,
    NODE_PID_FILE,
    UNIT,
    UNIT_DIR,
    UNIT_NAME,
    under,
)

Log = Callable[[str], None]
NODE_STOP_SECONDS = 30.0  # calico-node stops confd and BIRD before it exits
BIRD_STOP_SECONDS = 5.0


def systemd_runs(root: str) -> bool:
    return root == "/" and os.path.isdir("/run/systemd/system")


def why_no_systemctl(root: str) -> str:
    if root != "/":
        return f"--root {root} is not this host's root"
    return "systemd does not run this host"


def systemctl(*args: str) -> None:
    out = subprocess.run(["systemctl", *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        reason = (out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1]
        raise InstallError(f"systemctl {' '.join(args)} failed: {reason}")


def unit_active() -> bool:
    out = subprocess.run(
        ["systemctl", "is-active", "--quiet", UNIT_NAME], capture_output=True, check=False
    )
    return out.returncode == 0


def remove_enable_links(root: str, log: Log) -> None:
    """What `systemctl disable` removes: the `*.wants/` and `*.requires/` links to the
    unit, which `systemctl enable` made after install."""
    unit_dir = under(root, UNIT_DIR)
    try:
        entries = sorted(os.listdir(unit_dir))
    except FileNotFoundError:
        return
    for entry in entries:
        if not entry.endswith((".wants", ".requires")):
            continue
        link = os.path.join(unit_dir, entry, UNIT_NAME)
        if os.path.islink(link) and os.readlink(link) in (UNIT, f"../{UNIT_NAME}"):
            os.unlink(link)
            log(f"removed {UNIT_DIR}/{entry}/{UNIT_NAME}")


def _pid(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as f:
            pid = int(f.read().strip() or 0)
    except (OSError, ValueError):
        return None
    return pid if pid > 0 and pid != os.getpid() else None


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return ""
    name, _, rest = stat.partition("(")[2].rpartition(")")
    return "" if rest.split()[:1] == ["Z"] else name


def is_calico_node(pid: int) -> bool:
    """calico-node runs as `python .../calico-node` (or the script itself): not the
    install/uninstall command, which never writes the pid file anyway."""
    args = _cmdline(pid)[:3]
    names = [os.path.basename(a) for a in args]
    return "calico-node" in names[:2] and not {"install", "uninstall"} & set(args)


def is_bird(pid: int) -> bool:
    return _comm(pid) == "bird"


def stop_by_pid_files(root: str, log: Log) -> None:
    """Stop a calico-node, then the BIRD it left (under systemd, or after a crash)."""
    for path, check, what, wait in (
        (NODE_PID_FILE, is_calico_node, "calico-node", NODE_STOP_SECONDS),
        (BIRD_PID_FILE, is_bird, "BIRD", BIRD_STOP_SECONDS),
    ):
        pid = _pid(under(root, path))
        if pid is None or not check(pid):
            continue
        log(f"stopping {what} (pid {pid}, from {path})")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and check(pid):
            time.sleep(0.05)
        if check(pid):
            log(f"{what} (pid {pid}) did not stop in {wait:.0f} s: killing it")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
