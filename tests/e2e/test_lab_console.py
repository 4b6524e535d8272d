"""The lab's flow aggregator and its console: calico-goldmane in the router namespace, a
node's records reaching it, `calico-lab flows` and `calico-lab console` (a forwarded port,
opened in Debian's chromium)."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from selenium.webdriver.common.by import By

from pycalico.lab import goldmane
from pycalico.lab.processes import alive
from pycalico.lab.state import LabState
from tests.support.browser import chromium, screenshot, wait_until
from tests.support.flow_processes import SenderProcess
from tests.support.lab_driver import (
    LAB,
    calicoctl,
    down_leaving_nothing,
    lab,
    lab_run,
    pod_ip,
)

pytestmark = pytest.mark.e2e


@contextmanager
def console(name: str) -> Iterator[str]:
    """`calico-lab console --port 0` running; the URL it printed."""
    proc = subprocess.Popen(
        [LAB, "console", "--name", name, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "CALICO_LAB"},
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(4)]
        urls = [line.split()[-1] for line in lines if line.startswith("Flow console: ")]
        assert urls, "".join(lines) + proc.stderr.read()  # type: ignore[union-attr]
        yield urls[0]
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0  # SIGTERM ends the forward cleanly


def get(url: str) -> tuple[str, str]:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return reply.headers["Content-Type"], reply.read().decode()


def test_a_nodes_record_reaches_the_labs_aggregator_the_cli_and_the_console(
    make_lab: Callable[..., str],
) -> None:
    name = make_lab("--nodes", "1")
    # Felix's side of the stream, from node1's namespace to the collector Felix is given.
    sender = SenderProcess(
        goldmane.COLLECTOR, None, prefix=["nsenter", f"--net=/run/netns/{name}-node1"]
    )
    try:
        sender.send(1, 8443)
        assert sender.flush(30)
    finally:
        sender.close()
    printed = [json.loads(line) for line in lab("flows", "--name", name, "-o", "json").split("\n")
               if line]  # fmt: skip
    assert [(f["dest_name"], f["dest_port"]) for f in printed] == [("web-7c4b6-*", 8443)]

    with console(name) as url:
        kind, page = get(url)
        assert kind.startswith("text/html") and "/console/console.js" in page
        _, metrics = get(url + "metrics")
        assert "\ngoldmane_aggr_received_flows_total 1\n" in metrics
        with chromium() as browser:
            browser.get(url)
            wait_until(browser, lambda d: "8443" in d.find_element(By.ID, "flows").text, 60)
            screenshot(browser, "lab-console")

    state = LabState.load(name)
    pid = state.pids[goldmane.PID_KEY]
    down_leaving_nothing(name)
    assert not alive(pid)


def test_the_console_of_a_missing_lab_or_a_busy_port_is_one_line(
    make_lab: Callable[..., str],
) -> None:
    out = subprocess.run([LAB, "console", "--name", "nosuchlab"], capture_output=True, text=True)
    assert out.returncode == 1 and len(out.stderr.splitlines()) == 1
    name = make_lab("--nodes", "1")
    with console(name) as url:
        port = url.rstrip("/").rsplit(":", 1)[1]
        busy = subprocess.run(
            [LAB, "console", "--name", name, "--port", port], capture_output=True, text=True
        )
        assert busy.returncode == 1
        assert busy.stderr.strip() == (
            f"calico-lab: cannot listen on 127.0.0.1:{port}: Address already in use "
            "(choose one with --port)"
        )
    out = subprocess.run(
        [LAB, "flows", "--name", name, "--server", "http://x"], capture_output=True, text=True
    )
    assert out.returncode == 1 and "--server is not taken" in out.stderr


DENY_TO_DB = """apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: db-from-nobody, namespace: default}
spec:
  selector: app == 'db'
  types: [Ingress]
  ingress:
  - action: Deny
    source: {selector: app == 'client'}
"""
FLUSH_SECONDS = 15  # the flowLogsFlushInterval calico-lab up writes


def test_a_denied_connection_appears_in_the_console_with_its_policy_in_time(
    make_lab: Callable[..., str],
) -> None:
    """The issue's check: a connection the test makes, denied by a NetworkPolicy, is in the
    browser's table as Deny naming that policy within the flush interval plus 30 s."""
    name = make_lab("--nodes", "2")
    lab("pod", "add", "client", "--node", "node1", "--labels", "app=client", "--name", name)
    lab("pod", "add", "db", "--node", "node2", "--labels", "app=db", "--serve", "5432",
        "--name", name)  # fmt: skip
    calicoctl(name, "apply", "-f", "-", stdin=DENY_TO_DB)
    with console(name) as url, chromium() as browser:
        browser.get(url + "#actions=Deny")
        denied = lab_run("exec", "client", "--name", name, "--", "curl", "-sS", "-m", "2",
                         f"http://{pod_ip(name, 'db')}:5432/")  # fmt: skip
        assert denied.returncode == 28, denied.stderr  # curl: timed out
        wait_until(
            browser,
            lambda d: "NetworkPolicy default/db-from-nobody" in d.find_element(By.ID, "flows").text,
            FLUSH_SECONDS + 30,
        )
        screenshot(browser, "lab-console-denied")
