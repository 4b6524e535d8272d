"""The flow console in a real browser: Debian's chromium, headless, on calico-goldmane's
page, fed with records through FlowSender as Felix sends them."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from pycalico.flows.record import (
    Action,
    EndpointType,
    Flow,
    PolicyHit,
    PolicyKind,
    PolicyTrace,
    Reporter,
)
from pycalico.flows.sender import FlowSender
from tests.support.browser import chromium, screenshot, wait_until
from tests.support.flow_processes import AggregatorProcess
from tests.support.flow_records import ALLOW_WEB, DENY_TIER_END, STAGED_DENY, flow

pytestmark = pytest.mark.browser

ALLOW_DNS = PolicyHit(
    PolicyKind.GLOBAL_NETWORK_POLICY, "allow-dns", "", "default", Action.ALLOW, 0, 0
)
HOST_PROFILE = PolicyHit(PolicyKind.PROFILE, "projectcalico-default-allow", "", "__PROFILE__",
                         Action.ALLOW, 0, 0)  # fmt: skip


def scene(now: int) -> list[Flow]:
    """Six flows a small shop would show: web allowed (both reporters), the database
    denied at the end of its tier, DNS to kube-system, an API call a staged policy would
    deny, and a host's connection to the internet."""
    return [
        flow(start=now),
        flow(start=now, reporter=Reporter.SRC),
        flow(start=now, dest_name="db-0", dest_port=5432, action=Action.DENY,
             policies=PolicyTrace(enforced=(DENY_TIER_END,))),
        flow(start=now, dest_name="coredns-6f5-*", dest_namespace="kube-system", dest_port=53,
             proto="udp", reporter=Reporter.SRC, policies=PolicyTrace(enforced=(ALLOW_DNS,))),
        flow(start=now, dest_name="api-5b7-*", dest_port=8080,
             policies=PolicyTrace(enforced=(ALLOW_WEB,), pending=(STAGED_DENY,))),
        flow(start=now, source_name="node1", source_namespace="-",
             source_type=EndpointType.HOST, dest_name="pub", dest_namespace="-",
             dest_type=EndpointType.NETWORK, dest_port=443, reporter=Reporter.SRC,
             policies=PolicyTrace(enforced=(HOST_PROFILE,))),
    ]  # fmt: skip


def send(collector: str, records: list[Flow]) -> None:
    sender = FlowSender(collector, retry_first=0.2).start()
    try:
        for record in records:
            sender.send(record)
        assert sender.flush(30)
    finally:
        sender.close()


@pytest.fixture(scope="module")
def aggregator() -> Iterator[AggregatorProcess]:
    agg = AggregatorProcess(window=1).start()
    try:
        send(agg.collector, scene(int(time.time())))
        yield agg
    finally:
        agg.close()


# The table as the page shows it, read in one go (the page may redraw between two reads).
_TABLE = """
return [...document.querySelectorAll("#flows tbody tr.flow")].map(
  (tr) => Object.fromEntries([...tr.cells].map((td) => [td.className, td.innerText])));
"""


def open_console(browser: Any, aggregator: AggregatorProcess, rows: int, hash: str = "") -> None:
    browser.get(f"http://{aggregator.api}/" + (f"#{hash}" if hash else ""))
    wait_until(browser, lambda d: len(table(d)) == rows and "live" in state(d))


def table(browser: Any) -> list[dict[str, str]]:
    return list(browser.execute_script(_TABLE))


def state(browser: Any) -> str:
    return str(browser.find_element(By.ID, "state").text)


def index_of(browser: Any, destination: str) -> int:
    found = [i for i, row in enumerate(table(browser)) if destination in row["destination"]]
    assert len(found) == 1, table(browser)
    return found[0]


def row_to(browser: Any, destination: str) -> dict[str, str]:
    return table(browser)[index_of(browser, destination)]


def click_row(browser: Any, destination: str) -> None:
    rows = browser.find_elements(By.CSS_SELECTOR, "#flows tbody tr.flow")
    rows[index_of(browser, destination)].click()


def shown(browser: Any) -> list[tuple[str, str]]:
    return sorted((row["destination"], row["reporter"]) for row in table(browser))


def test_the_table_lists_every_flow_with_its_columns_and_deciding_policy(
    browser: Any, aggregator: AggregatorProcess
) -> None:
    open_console(browser, aggregator, 6)
    assert browser.find_element(By.ID, "count").text == "6 flows"
    denied = row_to(browser, "db-0")
    assert denied["action"] == "Deny"
    assert denied["source"] == "shop / client-5d8f9-*"
    assert denied["destination"] == "shop / db-0"
    assert (denied["protocol"], denied["port"]) == ("tcp", "5432")
    assert denied["reporter"] == "Destination"
    assert denied["decided"] == (
        "end of tier default, after NetworkPolicy shop/deny-all selected it"
    )
    internet = row_to(browser, "PUBLIC NETWORK")
    assert internet["source"] == "Global / node1"
    assert internet["decided"] == "profile projectcalico-default-allow, rule 0"
    staged = row_to(browser, "api-5b7-*")
    assert staged["action"] == "Allow" and staged["decided"].endswith("pending Deny")
    assert re.fullmatch(r"\d\d:\d\d:\d\d", denied["time"])  # local time, 24-hour
    time_cell = browser.find_elements(By.CSS_SELECTOR, "#flows tbody td.time")[0]
    assert re.fullmatch(r"\S+Z – \S+Z", time_cell.get_attribute("title"))


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("actions", "Deny", [("shop / db-0", "Destination")]),
        ("dest_ports", "53", [("kube-system / coredns-6f5-*", "Source")]),
        ("protocols", "udp", [("kube-system / coredns-6f5-*", "Source")]),
        ("dest_namespaces", "kube", [("kube-system / coredns-6f5-*", "Source")]),
        ("source_namespaces", "Global", [("Global / PUBLIC NETWORK", "Source")]),
        ("source_names", "node", [("Global / PUBLIC NETWORK", "Source")]),
        ("dest_names", "web", [("shop / web-7c4b6-*", "Destination"),
                               ("shop / web-7c4b6-*", "Source")]),
        ("policies", "lockdown", [("shop / api-5b7-*", "Destination")]),
        ("policies", "deny-all", [("shop / db-0", "Destination")]),
        ("pending_actions", "Deny", [("shop / api-5b7-*", "Destination")]),
        ("reporter", "Src", [("Global / PUBLIC NETWORK", "Source"),
                             ("kube-system / coredns-6f5-*", "Source"),
                             ("shop / web-7c4b6-*", "Source")]),
    ],
)  # fmt: skip
def test_each_filter_narrows_the_table_and_clear_brings_every_flow_back(
    browser: Any,
    aggregator: AggregatorProcess,
    field: str,
    value: str,
    expected: list[tuple[str, str]],
) -> None:
    open_console(browser, aggregator, 6)
    control = browser.find_element(By.NAME, field)
    if control.tag_name == "select":
        Select(control).select_by_value(value)
    else:
        control.send_keys(value)
    wait_until(browser, lambda d: shown(d) == expected and "live" in state(d))
    assert f"{field}={value}" in browser.current_url  # the filters are in the address
    browser.find_element(By.CSS_SELECTOR, "#filters button[type=reset]").click()
    wait_until(browser, lambda d: len(table(d)) == 6)


def test_a_filter_in_the_address_is_applied_when_the_page_opens(
    browser: Any, aggregator: AggregatorProcess
) -> None:
    open_console(browser, aggregator, 1, hash="actions=Deny")
    assert Select(browser.find_element(By.NAME, "actions")).first_selected_option.text == "Deny"
    assert shown(browser) == [("shop / db-0", "Destination")]


def test_a_rows_detail_shows_the_enforced_and_pending_traces_and_the_raw_json(
    browser: Any, aggregator: AggregatorProcess
) -> None:
    open_console(browser, aggregator, 6)
    click_row(browser, "api-5b7-*")
    detail = wait_until(browser, lambda d: d.find_element(By.CSS_SELECTOR, "tr.detail"))
    enforced = detail.find_element(By.CSS_SELECTOR, "ol.enforced").text
    assert enforced == "[default] CalicoNetworkPolicy shop/allow-web, rule 1 → Allow"
    pending = detail.find_element(By.CSS_SELECTOR, "ol.pending").text
    assert pending == "[default] StagedNetworkPolicy shop/lockdown, rule 0 → Deny"
    assert "staged policies were enforced" in detail.text
    assert "app=client | team=a" in detail.text
    raw = json.loads(detail.find_element(By.CSS_SELECTOR, "pre.raw").text)
    with urllib.request.urlopen(aggregator.url("/flows"), timeout=10) as reply:
        items = json.loads(reply.read())["items"]
    assert raw in items
    assert raw["policies"]["pending"][0]["name"] == "lockdown"
    screenshot(browser, "flow-console-detail")
    click_row(browser, "api-5b7-*")
    wait_until(browser, lambda d: not d.find_elements(By.CSS_SELECTOR, "tr.detail"))


def test_served_by_calico_goldmane_alone_the_console_links_to_no_lab_page(
    browser: Any, aggregator: AggregatorProcess
) -> None:
    open_console(browser, aggregator, 6)
    link = wait_until(
        browser, lambda d: d.find_element(By.ID, "lab-link").get_attribute("data-asked") and
        d.find_element(By.ID, "lab-link")
    )  # fmt: skip
    assert link.get_attribute("data-asked") == "absent" and not link.is_displayed()


def test_flows_reported_while_the_page_is_open_appear_live_and_grow_in_place() -> None:
    agg = AggregatorProcess(window=1).start()
    try:
        now = int(time.time())
        send(agg.collector, [flow(start=now, source_namespace="live")])
        with chromium() as browser:
            open_console(browser, agg, 1)
            send(agg.collector, [flow(start=now, source_namespace="live", dest_port=9090)])
            wait_until(browser, lambda d: len(table(d)) == 2)
            ports = [row["port"] for row in table(browser)]
            browser.find_elements(By.CSS_SELECTOR, "#flows tbody tr.flow")[
                ports.index("80")
            ].click()
            assert "4 / 6" in browser.find_element(By.CSS_SELECTOR, "tr.detail").text
            # The same flow again in the same bucket: one aggregate with the counters added.
            send(agg.collector, [flow(start=now, source_namespace="live")])
            wait_until(
                browser,
                lambda d: "8 / 12" in d.find_element(By.CSS_SELECTOR, "tr.detail").text,
            )
            assert len(table(browser)) == 2
    finally:
        agg.close()
