"""`calico-lab probe`: the pod × pod (and pod → external) connectivity matrix, with real packets.

One probe process runs inside each source pod and tries every destination; for TCP and
UDP the lab's echo servers answer with the source address they saw, which shows NAT. A probe
that gets no answer says why: `refused` (a TCP RST, or an ICMP error: nothing listens, or
the destination cannot be reached) or `timeout` (no answer at all: dropped somewhere).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from pycalico.lab.cluster import EXTERNAL_IP
from pycalico.lab.state import LabState

TIMEOUT = 1.0
REFUSED = "refused"
TIMED_OUT = "timeout"
# What the probe sends once connected: the echo server answers at once, not after the
# pause it leaves a client that might send an HTTP request.
HELLO = b"probe\n"


def attempt(ip: str, proto: str, port: int) -> tuple[str, str]:
    """(what the destination saw as our address, "ok" for ICMP; why not, when it did not
    answer: REFUSED or TIMED_OUT)."""
    if proto == "icmp":
        out = subprocess.run(
            ["ping", "-c1", "-W1", ip], capture_output=True, text=True, check=False
        )
        if out.returncode == 0:
            return "ok", ""
        return "", REFUSED if "nreachable" in out.stdout or "rohibited" in out.stdout else TIMED_OUT
    try:
        if proto == "tcp":
            with socket.create_connection((ip, port), timeout=TIMEOUT) as conn:
                conn.sendall(HELLO)
                return conn.recv(64).decode().strip() or "ok", ""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(TIMEOUT)
            # Connected, so that an ICMP error (port unreachable) is reported to us.
            sock.connect((ip, port))
            sock.send(b"probe")
            return sock.recv(64).decode().strip() or "ok", ""
    except TimeoutError:
        return "", TIMED_OUT
    except OSError:
        return "", REFUSED


def try_one(ip: str, proto: str, port: int) -> str:
    """What the destination saw as our address ("ok" for ICMP), or "" if unreachable."""
    return attempt(ip, proto, port)[0]


@dataclass
class Results:
    """Answers by source and destination ("" when none came), and why none came."""

    answers: dict[str, dict[str, str]]
    failures: dict[str, dict[str, str]] = field(default_factory=dict)


def matrix(state: LabState, proto: str, port: int) -> dict[str, dict[str, str]]:
    """Answers by source and destination ("" when none came)."""
    return run_matrix(state, proto, port).answers


def run_matrix(state: LabState, proto: str, port: int) -> Results:
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
    results = Results({})
    for key, run in runs.items():
        out, _ = run.communicate()
        seen = json.loads(out) if run.returncode == 0 and out.strip() else {}
        others = [(k, ip) for k, ip in targets.items() if k != key]
        results.answers[key] = {k: seen.get(ip, ["", ""])[0] for k, ip in others}
        results.failures[key] = {k: seen.get(ip, ["", "probe did not run"])[1] for k, ip in others}
    return results


def matrices(
    state: LabState, checks: Sequence[tuple[str, int]], udp_source_port: int = 0
) -> dict[tuple[str, int], dict[str, dict[str, str]]]:
    """`matrix` for several (proto, port) checks at once: one process per source pod tries
    every destination on every check concurrently, so blocked pairs cost one timeout in all.

    With `udp_source_port`, each source sends its UDP probes from `udp_source_port`,
    `udp_source_port + 1`, ... (one port per check and destination). A caller that gives
    every round fresh ports never reuses the 5-tuple of an earlier allowed probe, whose
    conntrack entry would let the new one through as established whatever policy says now.
    """
    script = (
        "import json, socket, sys\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "from pycalico.lab.probe import TIMEOUT, try_one\n"
        "def one(job):\n"
        "    proto, port, ip, sport = job\n"
        "    if proto != 'udp' or not sport:\n"
        "        return try_one(ip, proto, port)\n"
        "    try:\n"
        "        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:\n"
        "            sock.bind(('0.0.0.0', sport))\n"
        "            sock.settimeout(TIMEOUT)\n"
        "            sock.sendto(b'probe', (ip, port))\n"
        "            return sock.recv(64).decode().strip() or 'ok'\n"
        "    except OSError:\n"
        "        return ''\n"
        "jobs = json.loads(sys.argv[1])\n"
        "with ThreadPoolExecutor(max_workers=max(1, len(jobs))) as pool:\n"
        "    print(json.dumps(list(pool.map(one, jobs))))\n"
    )
    targets = {key: pod.ip for key, pod in sorted(state.pods.items())}
    targets["external"] = EXTERNAL_IP
    runs = {}
    for key, pod in sorted(state.pods.items()):
        jobs: list[tuple[str, int, str, int]] = []
        sport = udp_source_port
        for proto, port in checks:
            for target, ip in targets.items():
                if target != key:
                    udp = proto == "udp" and sport > 0
                    jobs.append((proto, port, ip, sport if udp else 0))
                    sport += 1 if udp else 0
        runs[key] = (
            jobs,
            subprocess.Popen(
                ["ip", "netns", "exec", pod.netns, sys.executable, "-c", script, json.dumps(jobs)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
    outputs = {key: (jobs, *run.communicate(), run.returncode) for key, (jobs, run) in runs.items()}
    results: dict[tuple[str, int], dict[str, dict[str, str]]] = {
        (proto, port): {} for proto, port in checks
    }
    for key, (jobs, out, err, code) in outputs.items():
        if code != 0:  # a probe that could not run must not pass for blocked traffic
            raise RuntimeError(f"the probe in {key} failed (exit {code}): {err.strip()}")
        seen = json.loads(out)
        by_ip = {(j[0], j[1], j[2]): answer for j, answer in zip(jobs, seen, strict=True)}
        for proto, port in checks:
            results[(proto, port)][key] = {
                k: by_ip.get((proto, port, ip), "") for k, ip in targets.items() if k != key
            }
    return results


def render(
    results: dict[str, dict[str, str]], failures: dict[str, dict[str, str]] | None = None
) -> str:
    """The matrix; a cell without an answer says why (`failures`), and a last line counts
    what failed, so that a matrix holds the word FAIL exactly when something did."""
    failures = failures or {}
    columns = sorted(
        {t for row in results.values() for t in row}, key=lambda t: (t == "external", t)
    )
    rows = [["FROM \\ TO", *columns]]
    failed: dict[str, int] = {}
    tried = 0
    for source, row in results.items():
        cells = []
        for target in columns:
            if target == source:
                cells.append("-")
                continue
            tried += 1
            if not row.get(target):
                why = failures.get(source, {}).get(target) or "no answer"
                failed[why.split(" ", 1)[0]] = failed.get(why.split(" ", 1)[0], 0) + 1
                cells.append(why)
            elif target == "external" and row[target] not in ("ok",):
                cells.append(f"ok (as {row[target]})")
            else:
                cells.append("ok")
        rows.append([source, *cells])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    table = "".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n" for r in rows
    )
    if failed:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(failed.items()))
        table += f"FAIL: {sum(failed.values())} of {tried} got no answer ({kinds})\n"
    return table


def main(argv: Sequence[str]) -> int:
    from concurrent.futures import ThreadPoolExecutor

    proto, port, *ips = argv
    # All at once: a blocked destination costs one timeout, not one per destination.
    with ThreadPoolExecutor(max_workers=max(1, len(ips))) as pool:
        seen = list(pool.map(lambda ip: attempt(ip, proto, int(port)), ips))
    print(json.dumps(dict(zip(ips, seen, strict=True))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
