"""What several benches do with a lab: iperf3 between two of its namespaces, and removing it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

LAB = os.path.join(os.path.dirname(sys.executable), "calico-lab")


def iperf(server_ns: str, client_ns: str, server_ip: str, seconds: int, streams: int = 1) -> float:
    """Gbit/s from client to server over `seconds` seconds (`streams` parallel TCP streams)."""
    server = subprocess.Popen(
        ["ip", "netns", "exec", server_ns, "iperf3", "-s", "-1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        out = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                client_ns,
                "iperf3",
                "-c",
                server_ip,
                "-t",
                str(seconds),
                "-P",
                str(streams),
                "-J",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return float(json.loads(out)["end"]["sum_received"]["bits_per_second"]) / 1e9
    finally:
        server.kill()
        server.wait()


def down(name: str) -> None:
    """Remove the lab; a Ctrl-C now must not leave it half removed."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by calico-lab too
    try:
        subprocess.run([LAB, "down", "--name", name], capture_output=True, check=False)
    finally:
        signal.signal(signal.SIGINT, previous)
