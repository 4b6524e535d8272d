"""Real processes on loopback for the flow stream's tests and benches: calico-goldmane, and a
sending process driven line by line (tests/support/flow_sender_driver.py).

Every process is started here and stopped by its PID; `close()` ends whatever is left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


class AggregatorProcess:
    """calico-goldmane on loopback; ports chosen by the kernel at the first start and kept
    across restarts, as a Service address is."""

    def __init__(self, window: int = 1, history: int = 3600, max_flows: int = 10_000) -> None:
        self.collector = "127.0.0.1:0"
        self.api = "127.0.0.1:0"
        self._args = [
            "--aggregation-window", str(window),
            "--history", str(history),
            "--max-flows-per-bucket", str(max_flows),
        ]  # fmt: skip
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> AggregatorProcess:
        argv = [sys.executable, "-m", "pycalico.flows.main", "--collector", self.collector,
                "--listen", self.api, *self._args]  # fmt: skip
        self.proc = subprocess.Popen(
            argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("calico-goldmane: collector "):
            self.proc.wait(timeout=10)
            raise RuntimeError(f"calico-goldmane did not start: {line}{self.proc.stderr.read()}")  # type: ignore[union-attr]
        # "calico-goldmane: collector HOST:PORT, API http://HOST:PORT"
        words = line.split()
        self.collector = words[2].rstrip(",")
        self.api = words[4].removeprefix("http://")
        return self

    def stop(self, sig: int = signal.SIGTERM) -> str:
        """Stop it (SIGKILL: as a crash); its stderr."""
        if self.proc is None:
            return ""
        self.proc.send_signal(sig)
        _, err = self.proc.communicate(timeout=30)
        self.proc = None
        return err

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def url(self, path: str, **params: Any) -> str:
        encoded = {k: json.dumps(v) if isinstance(v, dict) else str(v) for k, v in params.items()}
        query = urllib.parse.urlencode(encoded)
        return f"http://{self.api}{path}" + (f"?{query}" if query else "")

    def get(self, path: str, **params: Any) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(self.url(path, **params), timeout=10) as reply:
                body = reply.read().decode()
                status = reply.status
                kind = reply.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            body, status, kind = exc.read().decode(), exc.code, exc.headers.get("Content-Type", "")
        return status, json.loads(body) if kind.startswith("application/json") else body

    def flows(self, **params: Any) -> list[dict[str, Any]]:
        status, body = self.get("/flows", **params)
        assert status == 200, body
        return list(body["items"])

    def connections(self) -> int:
        return sum(item["num_connections_started"] for item in self.flows())

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGCONT)
            self.stop(signal.SIGKILL)


class SenderProcess:
    """A process holding a FlowSender, told what to do on its stdin."""

    def __init__(self, server: str, spool: Path | None, prefix: Sequence[str] = ()) -> None:
        """`prefix`: what to run it under (e.g. `nsenter --net=...` for a lab node)."""
        argv = [*prefix, sys.executable, "-m", "tests.support.flow_sender_driver",
                "--server", server]  # fmt: skip
        if spool is not None:
            argv += ["--spool", str(spool)]
        self.proc = subprocess.Popen(
            argv,
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        self._stderr: str | None = None

    def command(self, line: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise RuntimeError(f"the sender died: {self.proc.stderr.read()}")  # type: ignore[union-attr]
        return answer.strip()

    def send(self, count: int, first_port: int = 1) -> None:
        assert self.command(f"send {count} {first_port}") == f"queued {count}"

    def flush(self, timeout: float = 60) -> bool:
        return self.command(f"flush {timeout}") == "flushed"

    def stats(self) -> dict[str, Any]:
        return dict(json.loads(self.command("stats")))

    def kill(self) -> None:
        self.proc.kill()
        self._finish()

    def close(self) -> str:
        """End it (if it still runs); its stderr."""
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self._finish()

    def _finish(self) -> str:
        if self._stderr is None:
            self.proc.wait(timeout=30)
            for pipe in (self.proc.stdin, self.proc.stdout):
                if pipe is not None and not pipe.closed:
                    pipe.close()
            assert self.proc.stderr is not None
            self._stderr = self.proc.stderr.read()
            self.proc.stderr.close()
        return self._stderr


def wait_for(condition: Any, timeout: float = 60.0, every: float = 0.1) -> Any:
    """Poll until `condition()` is truthy; its last value (falsy on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)
