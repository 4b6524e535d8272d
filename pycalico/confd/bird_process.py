"""The BIRD 2 daemon of one node: validate a config, start it, reload it, stop it.

BIRD runs in the foreground as calico-node's child, with its control socket and pid file
in calico-node's run directory (`bird.ctl`, `bird.pid`: `calicoctl node status` finds it
there). If calico-node dies (even kill -9), BIRD keeps running and keeps the routes; the
next calico-node adopts it from the pid file instead of starting a second one, so a
calico-node restart never drops a BGP session. A BIRD that dies is started again with
`-R` (graceful restart recovery), so the kernel routes it left stay until it has
re-learned them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import IO

log = logging.getLogger("pycalico.confd")

BIRD = "/usr/sbin/bird"
BIRDC = "/usr/sbin/birdc"


class BirdError(RuntimeError):
    pass


def _is_bird(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return False
    name, _, rest = stat.partition("(")[2].rpartition(")")
    return name == "bird" and rest.split()[0] != "Z"


@dataclass
class BirdProcess:
    config: str  # the rendered bird.cfg
    run_dir: str
    log_file: IO[bytes] | None = None
    _child: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def socket(self) -> str:
        return os.path.join(self.run_dir, "bird.ctl")

    @property
    def pid_file(self) -> str:
        return os.path.join(self.run_dir, "bird.pid")

    def pid(self) -> int | None:
        """BIRD's pid if it runs (ours or adopted), else None."""
        if self._child is not None and self._child.poll() is not None:
            self._child = None
        try:
            with open(self.pid_file, encoding="ascii") as f:
                pid = int(f.read().strip() or 0)
        except (OSError, ValueError):
            return None
        return pid if pid and _is_bird(pid) else None

    @staticmethod
    def validate(path: str) -> str:
        """BIRD's complaint about the config at `path`, or "" if BIRD accepts it."""
        out = subprocess.run([BIRD, "-p", "-c", path], capture_output=True, text=True, check=False)
        return "" if out.returncode == 0 else (out.stderr or out.stdout).strip()

    def ensure_running(self, recovering: bool) -> bool:
        """Start BIRD unless it runs; True if it was started now."""
        if self.pid() is not None:
            return False
        os.makedirs(self.run_dir, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket)
        cmd = [BIRD, "-f", "-c", self.config, "-s", self.socket, "-P", self.pid_file]
        if recovering:
            cmd.insert(2, "-R")
        self._child = subprocess.Popen(
            cmd, stdout=self.log_file, stderr=self.log_file, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self._child.poll() is not None:
                raise BirdError(f"bird exited at start with status {self._child.returncode}")
            if os.path.exists(self.socket) and self.pid() is not None:
                log.info("BIRD started (pid %d)", self._child.pid)
                return True
            time.sleep(0.02)
        raise BirdError("bird did not open its control socket within 5s")

    def reload(self) -> None:
        """Make the running BIRD read its config file again."""
        out = subprocess.run(
            [BIRDC, "-s", self.socket, "configure"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        text = out.stdout + out.stderr
        if out.returncode != 0 or "rror" in text:
            raise BirdError(f"birdc configure failed: {text.strip().splitlines()[-1:]}")

    def stop(self) -> None:
        pid = self.pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _is_bird(pid):
            if self._child is not None:
                self._child.poll()
            time.sleep(0.02)
        if _is_bird(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self._child is not None:
            self._child.wait(timeout=5)
            self._child = None
