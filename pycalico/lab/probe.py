"""`calico-lab probe`: the pod × pod (and pod → external) connectivity matrix, with real packets.

One probe process runs inside each source pod and tries every destination; for TCP and
UDP the lab's echo servers answer with the source address they saw, which shows NAT.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Sequence

from pycalico.lab.cluster import EXTERNAL_IP
from pycalico.lab.state import LabState

TIMEOUT = 1.0


def try_one(ip: str, proto: str, port: int) -> str:
    """What the destination saw as our address ("ok" for ICMP), or "" if unreachable."""
    if proto == "icmp":
        out = subprocess.run(["ping", "-c1", "-W1", ip], capture_output=True, check=False)
        return "ok" if out.returncode == 0 else ""
    try:
        if proto == "tcp":
            with socket.create_connection((ip, port), timeout=TIMEOUT) as conn:
                return conn.recv(64).decode().strip() or "ok"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(TIMEOUT)
            sock.sendto(b"probe", (ip, port))
            return sock.recv(64).decode().strip() or "ok"
    except OSError:
        return ""


def matrix(state: LabState, proto: str, port: int) -> dict[str, dict[str, str]]:
    targets = {key: pod.ip for key, pod in sorted(state.pods.items())}
    targets["external"] = EXTERNAL_IP
    runs = {}
    for key, pod in sorted(state.pods.items()):
        ips = [ip for k, ip in targets.items() if k != key]
        # Every source pod probes at the same time, each in its own process.
        runs[key] = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                pod.netns,
                sys.executable,
                "-m",
                "pycalico.lab.probe",
                proto,
                str(port),
                *ips,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
    results: dict[str, dict[str, str]] = {}
    for key, run in runs.items():
        out, _ = run.communicate()
        seen = json.loads(out) if run.returncode == 0 and out.strip() else {}
        results[key] = {k: seen.get(ip, "") for k, ip in targets.items() if k != key}
    return results


def render(results: dict[str, dict[str, str]]) -> str:
    columns = sorted(
        {t for row in results.values() for t in row}, key=lambda t: (t == "external", t)
    )
    rows = [["FROM \\ TO", *columns]]
    for source, row in results.items():
        cells = []
        for target in columns:
            if target == source:
                cells.append("-")
            elif not row.get(target):
                cells.append("FAIL")
            elif target == "external" and row[target] not in ("ok",):
                cells.append(f"ok (as {row[target]})")
            else:
                cells.append("ok")
        rows.append([source, *cells])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return (
        "\n".join(
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        )
        + "\n"
    )


def main(argv: Sequence[str]) -> int:
    from concurrent.futures import ThreadPoolExecutor

    proto, port, *ips = argv
    # All at once: a blocked destination costs one timeout, not one per destination.
    with ThreadPoolExecutor(max_workers=max(1, len(ips))) as pool:
        seen = list(pool.map(lambda ip: try_one(ip, proto, int(port)), ips))
    print(json.dumps(dict(zip(ips, seen, strict=True))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
