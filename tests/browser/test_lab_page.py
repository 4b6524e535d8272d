"""The lab page of `calico-lab console` in a real browser, against a real two-node lab:
the picture holds every node and pod, a click on a pod shows the policies selecting it,
a trace between two pods shows the packet delivered through both cali interfaces, and
bad input comes back as one line."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from pycalico.lab.pods import host_veth
from pycalico.lab.state import LabState
from tests.support.browser import screenshot, wait_until
from tests.support.lab_driver import console, down_leaving_nothing, lab

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

ALLOW_WEB = """\
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: allow-web, namespace: default}
spec:
  order: 100
  selector: app == 'web'
  types: [Ingress]
  ingress:
  - action: Allow
    protocol: TCP
    source: {selector: app == 'client'}
    destination: {ports: [80]}
"""


@dataclass
class Lab:
    name: str
    state: LabState
    urls: dict[str, str]

    @property
    def page(self) -> str:
        return self.urls["Lab page"]


@pytest.fixture(scope="module")
def lab_page() -> Iterator[Lab]:
    """A two-node lab (client on node1, web on node2 behind allow-web) and its console."""
    name = f"gp{uuid.uuid4().hex[:5]}"
    try:
        lab("up", "--name", name, "--nodes", "2")
        lab("pod", "add", "client", "--node", "node1", "--labels", "app=client", "--name", name)
        lab("pod", "add", "web", "--node", "node2", "--labels", "app=web", "--serve", "80",
            "--name", name)  # fmt: skip
        lab("apply", "-f", "-", "--name", name, stdin=ALLOW_WEB)
        with console(name) as urls:
            yield Lab(name, LabState.load(name), urls)
    finally:
        down_leaving_nothing(name)


def open_page(browser: Any, lab: Lab) -> None:
    browser.get(lab.page)
    wait_until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#graph g[data-pod]"))


def drawn(browser: Any, attribute: str) -> list[str]:
    groups = browser.find_elements(By.CSS_SELECTOR, f"#graph g[{attribute}]")
    return sorted(g.get_attribute(attribute) for g in groups)


def options(browser: Any, name: str) -> list[str]:
    return [o.get_attribute("value") for o in Select(browser.find_element(By.NAME, name)).options]


def click_pod(browser: Any, pod: str) -> Any:
    browser.find_element(By.CSS_SELECTOR, f'#graph g[data-pod="{pod}"]').click()
    wait_until(browser, lambda d: d.find_element(By.ID, "policy-pod").text == pod)
    # The name shows before the pod's policies arrive; the view is redrawn when they do.
    wait_until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#policy-view section.egress"))
    return browser.find_element(By.ID, "policy-view")


def answer(url: str, body: dict[str, Any] | None = None, **headers: str) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data, {"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def test_the_page_draws_every_node_and_pod_of_the_lab(browser: Any, lab_page: Lab) -> None:
    open_page(browser, lab_page)
    assert drawn(browser, "data-node") == ["node1", "node2"]
    assert drawn(browser, "data-pod") == ["default/client", "default/web"]
    picture = browser.find_element(By.ID, "graph").text
    for pod in lab_page.state.pods.values():
        assert pod.ip in picture
    for address in lab_page.state.node_ips.values():
        assert address.split("/")[0] in picture
    assert browser.find_element(By.ID, "lab-name").text == lab_page.name
    assert options(browser, "from") == ["default/client", "default/web"]
    # Traces may go to the external host too (the masquerade on the way out).
    assert options(browser, "to") == ["default/client", "default/web", "203.0.113.1"]


def test_clicking_a_pod_shows_the_policies_selecting_it(browser: Any, lab_page: Lab) -> None:
    open_page(browser, lab_page)
    view = click_pod(browser, "default/web")
    ingress = view.find_element(By.CSS_SELECTOR, "section.ingress")
    tier = ingress.find_element(By.CSS_SELECTOR, '.tier[data-tier="default"]')
    assert "end of tier: Deny" in tier.text
    policy = tier.find_element(By.CSS_SELECTOR, 'li[data-policy="default/default/allow-web"]')
    assert "NetworkPolicy default/allow-web · order 100" in policy.text
    rules = [li.text for li in policy.find_elements(By.CSS_SELECTOR, "ul.rules li")]
    assert rules == ["Allow TCP from (app == \"client\") && namespace == 'default' to ports 80"]
    egress = view.find_element(By.CSS_SELECTOR, "section.egress").text
    assert "No policy selects this pod for egress: its profiles decide." in egress
    profiles = view.find_elements(By.CSS_SELECTOR, ".profile")
    assert [p.get_attribute("data-profile") for p in profiles] == [
        "kns.default",
        "ksa.default.default",
    ]
    selected = browser.find_element(By.CSS_SELECTOR, "#graph g.pod.selected")
    assert selected.get_attribute("data-pod") == "default/web"
    # The client: no policy selects it in either direction.
    view = click_pod(browser, "default/client")
    assert not view.find_elements(By.CSS_SELECTOR, "li[data-policy]")


def test_a_trace_between_two_pods_shows_delivered_through_both_cali_interfaces(
    browser: Any, lab_page: Lab
) -> None:
    open_page(browser, lab_page)
    click_pod(browser, "default/web")
    Select(browser.find_element(By.NAME, "from")).select_by_value("default/client")
    Select(browser.find_element(By.NAME, "to")).select_by_value("default/web")
    browser.find_element(By.ID, "trace-button").click()
    outcome = wait_until(browser, lambda d: d.find_elements(By.ID, "trace-outcome"), 60)[0]
    assert outcome.text == "delivered"
    steps = [tr.text for tr in browser.find_elements(By.CSS_SELECTOR, "table.steps tr")]
    client, web = (host_veth(lab_page.state.pods[p]) for p in ("default/client", "default/web"))
    assert any(client in s and "proxy ARP" in s for s in steps), steps
    assert any(f"arrived on {client}" in s for s in steps), steps
    assert any(f"dev {web}" in s for s in steps), steps
    assert any("VNI 4096" in s for s in steps), steps
    assert any(
        "ingress of default/web: allowed by policy default/default/allow-web rule 0" in s
        for s in steps
    ), steps
    on_path = [
        g.get_attribute("data-pod") or g.get_attribute("data-node")
        for g in browser.find_elements(By.CSS_SELECTOR, "#graph g.on-path")
    ]
    assert sorted(on_path) == ["default/client", "default/web", "node1", "node2"]
    browser.execute_script("window.scrollTo(0, 0)")
    screenshot(browser, "lab-page")


def test_a_bad_request_is_one_line_on_the_page_and_from_the_api(
    browser: Any, lab_page: Lab
) -> None:
    open_page(browser, lab_page)
    port = browser.find_element(By.NAME, "port")
    port.clear()
    port.send_keys("99999")
    browser.find_element(By.ID, "trace-button").click()
    error = wait_until(browser, lambda d: d.find_element(By.ID, "trace-error").text)
    assert error == "port 99999: must be 1-65535"
    api = lab_page.page + "api/"
    for url, body, expected in [
        (api + "policies?pod=default/ghost", None,
         (400, f"pod: no pod default/ghost in lab {lab_page.name}")),
        (api + "trace", {"from": "default/client", "to": "default/ghost"},
         (400, f"to: no pod default/ghost in lab {lab_page.name}")),
        (api + "trace", {"from": "default/client;id", "to": "default/web"},
         (400, "from 'default/client;id': not a pod name (NS/POD)")),
        (api + "trace", {"from": "default/client", "to": "default/web", "port": "x"},
         (400, "port 'x': must be 1-65535")),
        (api + "trace", None, (405, "GET is not supported here; use POST")),
    ]:  # fmt: skip
        status, text = answer(url, body)
        assert (status, json.loads(text)["error"]) == expected
        assert text.count("\n") == 1 and "Traceback" not in text
    # What another site's page could send: a plain-text body, or its own name for us.
    listening = urlsplit(lab_page.page).port
    trace = {"from": "default/client", "to": "default/web"}
    for headers, expected in [
        ({"Content-Type": "text/plain"},
         (415, "send the request as application/json, not text/plain")),
        ({"Host": f"rebind.example:{listening}"},
         (403, f"Host 'rebind.example:{listening}': open the page as 127.0.0.1 or localhost")),
    ]:  # fmt: skip
        status, text = answer(api + "trace", trace, **headers)
        assert (status, json.loads(text)["error"]) == expected
        assert text.count("\n") == 1 and "Traceback" not in text


def test_the_flow_console_and_the_lab_page_link_to_each_other(browser: Any, lab_page: Lab) -> None:
    browser.get(lab_page.urls["Flow console"])
    link = wait_until(
        browser, lambda d: d.find_element(By.ID, "lab-link").get_attribute("data-asked") and
        d.find_element(By.ID, "lab-link")
    )  # fmt: skip
    assert link.text == f"lab {lab_page.name}: topology"
    link.click()
    wait_until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#graph g[data-pod]"))
    assert browser.current_url == lab_page.page
    browser.find_element(By.ID, "flows-link").click()
    wait_until(browser, lambda d: "live" in d.find_element(By.ID, "state").text)
    assert browser.current_url.split("#")[0] == lab_page.urls["Flow console"]
