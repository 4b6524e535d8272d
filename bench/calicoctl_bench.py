"""calicoctl speed: cold `get ippools` and `apply` of 1000 resources.

Prints pycalico's figures next to a reference measured in the same run: the bare
interpreter start (`python -c pass`, the floor any Python CLI pays) and `ip -j link`
(a small compiled tool reading kernel state), so the numbers can be read on any machine.
Run: .venv/bin/python bench/calicoctl_bench.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

VENV_BIN = os.path.dirname(sys.executable)
CALICOCTL = os.path.join(VENV_BIN, "calicoctl")
RUNS = 20


def _time(cmd: list[str], env: dict[str, str], stdin: str | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(
        cmd,
        env=env,
        input=stdin,
        text=True,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return time.perf_counter() - start


def _median_ms(cmd: list[str], env: dict[str, str]) -> float:
    return statistics.median(_time(cmd, env) for _ in range(RUNS)) * 1000


def _pools_yaml(count: int) -> str:
    docs = []
    for i in range(count):
        docs.append(
            "apiVersion: projectcalico.org/v3\nkind: IPPool\n"
            f"metadata:\n  name: pool-{i}\n"
            f"spec:\n  cidr: 10.{i // 256}.{i % 256}.0/24\n  blockSize: 26\n  natOutgoing: true\n"
        )
    return "---\n".join(docs)


def _netsets_yaml(count: int) -> str:
    docs = []
    for i in range(count):
        docs.append(
            "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\n"
            f"metadata:\n  name: set-{i}\n  labels:\n    role: r{i % 7}\n"
            f"spec:\n  nets:\n  - 198.51.100.{i % 256}/32\n  - 203.0.113.0/24\n"
        )
    return "---\n".join(docs)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="pycalico-bench-") as tmp:
        env = {**os.environ, "DATASTORE_TYPE": "sqlite", "SQLITE_PATH": f"{tmp}/bench.db"}
        env.pop("CALICO_DATASTORE_TYPE", None)
        rows: list[tuple[str, str]] = []
        rows.append(
            (
                "python3 -c pass (interpreter floor)",
                f"{_median_ms([sys.executable, '-c', 'pass'], env):.1f} ms",
            )
        )
        rows.append(
            (
                "ip -j link show lo (compiled tool)",
                f"{_median_ms(['ip', '-j', 'link', 'show', 'lo'], env):.1f} ms",
            )
        )
        inputs = (("IPPool", _pools_yaml(1000)), ("GlobalNetworkSet", _netsets_yaml(1000)))
        for name, text in inputs:
            path = os.path.join(tmp, f"{name}.yaml")
            with open(path, "w") as f:
                f.write(text)
            elapsed = _time([CALICOCTL, "apply", "-f", path], env)
            rows.append((f"calicoctl apply -f (1000 {name}, new)", f"{elapsed * 1000:.0f} ms"))
            elapsed = _time([CALICOCTL, "apply", "-f", path], env)
            rows.append((f"calicoctl apply -f (1000 {name}, replace)", f"{elapsed * 1000:.0f} ms"))
        rows.append(
            (
                "calicoctl get ippools, cold, 1000 pools (median of 20)",
                f"{_median_ms([CALICOCTL, 'get', 'ippools'], env):.1f} ms",
            )
        )
        env["SQLITE_PATH"] = f"{tmp}/small.db"
        small = os.path.join(tmp, "small.yaml")
        with open(small, "w") as f:
            f.write(_pools_yaml(2))
        subprocess.run([CALICOCTL, "apply", "-f", small], env=env, check=True, capture_output=True)
        rows.append(
            (
                "calicoctl get ippools, cold, 2 pools (median of 20; target <= 150 ms)",
                f"{_median_ms([CALICOCTL, 'get', 'ippools'], env):.1f} ms",
            )
        )
    width = max(len(r[0]) for r in rows)
    print(f"{'measurement'.ljust(width)}  result")
    for label, value in rows:
        print(f"{label.ljust(width)}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
