"""What the lab page's JSON endpoints accept: pods the lab has, in Kubernetes' name form,
an IPv4 destination, tcp/udp/icmp and ports 1-65535 (80 unless given, none with icmp), as
`calico-lab trace` takes them; every refusal one line with its HTTP status."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from pycalico.lab.page_requests import (
    MAX_BODY,
    RequestError,
    TraceRequest,
    check_host,
    check_json,
    pod_name,
    policies_query,
    trace_request,
)

PODS = {"default/client", "default/web", "shop/db-0"}


def trace(**fields: object) -> TraceRequest:
    return trace_request(json.dumps(fields).encode(), PODS, "gp1")


def refusal(call: Callable[..., object], *args: object, **fields: object) -> RequestError:
    with pytest.raises(RequestError) as refused:
        call(*args, **fields)
    assert "\n" not in str(refused.value)
    return refused.value


def test_a_trace_between_two_pods_defaults_to_tcp_port_80() -> None:
    assert trace(**{"from": "default/client", "to": "shop/db-0"}) == TraceRequest(
        "default/client", "shop/db-0", "tcp", 80
    )


def test_a_bare_pod_name_is_in_default_as_kubectl_has_it() -> None:
    assert trace(**{"from": "client", "to": "web"}).destination == "default/web"


def test_the_destination_may_be_an_ipv4_address_as_the_cli_allows() -> None:
    found = trace(**{"from": "client", "to": "203.0.113.1", "proto": "udp", "port": 53})
    assert found == TraceRequest("default/client", "203.0.113.1", "udp", 53)


def test_icmp_has_no_port_and_a_port_given_as_digits_is_taken() -> None:
    assert trace(**{"from": "client", "to": "web", "proto": "icmp"}).port is None
    assert trace(**{"from": "client", "to": "web", "port": "8080"}).port == 8080


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"from": "default/ghost", "to": "web"}, "from: no pod default/ghost in lab gp1"),
        ({"from": "client", "to": "shop/nope"}, "to: no pod shop/nope in lab gp1"),
        ({"from": "client;reboot", "to": "web"}, "from 'client;reboot': not a pod name (NS/POD)"),
        ({"from": "client", "to": "$(id)/x"}, "to '$(id)/x': not a pod name (NS/POD)"),
        ({"from": "../../etc", "to": "web"}, "from '../../etc': not a pod name (NS/POD)"),
        ({"to": "web"}, "from: give a pod as NS/POD"),
        ({"from": ["client"], "to": "web"}, "from: give a pod as NS/POD"),
        ({"from": "client", "to": "web", "port": 0}, "port 0: must be 1-65535"),
        ({"from": "client", "to": "web", "port": 65536}, "port 65536: must be 1-65535"),
        ({"from": "client", "to": "web", "port": "80; ls"}, "port '80; ls': must be 1-65535"),
        ({"from": "client", "to": "web", "port": True}, "port True: must be 1-65535"),
        ({"from": "client", "to": "web", "port": 8.5}, "port 8.5: must be 1-65535"),
        ({"from": "client", "to": "web", "proto": "sctp"}, "proto 'sctp': use tcp, udp, icmp"),
        ({"from": "client", "to": "web", "proto": "icmp", "port": 1},
         "port has no meaning with proto icmp"),
        ({"from": "client", "to": "web", "via": "x"},
         "unknown field 'via': use from, to, proto, port"),
    ],
)  # fmt: skip
def test_a_bad_trace_request_is_a_400_naming_what_is_wrong(
    fields: dict[str, object], message: str
) -> None:
    refused = refusal(trace, **fields)
    assert (refused.status, str(refused)) == (400, message)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", 'the request must be a JSON object: {"from": ..., "to": ...}'),
        (b"[1]", 'the request must be a JSON object: {"from": ..., "to": ...}'),
        (b"from=client", "the request is not JSON"),
        (b"\xff\xfe", "the request is not JSON"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_a_400(body: bytes, message: str) -> None:
    refused = refusal(trace_request, body, PODS, "gp1")
    assert (refused.status, str(refused)) == (400, message)


def test_an_oversized_request_is_a_413() -> None:
    refused = refusal(trace_request, b" " * (MAX_BODY + 1), PODS, "gp1")
    assert refused.status == 413


def test_a_long_bad_value_is_cut_short_in_the_message() -> None:
    refused = refusal(pod_name, "x" * 500 + "\n", PODS, "gp1", "from")
    assert len(str(refused)) < 120 and str(refused).endswith("...: not a pod name (NS/POD)")


def test_the_policies_query_names_one_known_pod() -> None:
    assert policies_query("pod=shop%2Fdb-0", PODS, "gp1") == "shop/db-0"
    assert policies_query("pod=web", PODS, "gp1") == "default/web"
    for query, message in [
        ("", "give one pod: ?pod=NS/POD"),
        ("pod=a&pod=b", "give one pod: ?pod=NS/POD"),
        ("pod=default/ghost", "pod: no pod default/ghost in lab gp1"),
        ("pod=Default/Web", "pod 'Default/Web': not a pod name (NS/POD)"),
    ]:
        refused = refusal(policies_query, query, PODS, "gp1")
        assert (refused.status, str(refused)) == (400, message)


def test_only_a_loopback_name_is_a_host_the_page_answers() -> None:
    for host in ("127.0.0.1:8081", "localhost:9000", "127.0.0.1", "[::1]:8081", "[::1]"):
        check_host(host)
    for host in ("rebind.example:8081", "127.0.0.2", "localhost.example", "[::1", "", None):
        refused = refusal(check_host, host)
        assert refused.status == 403
        assert str(refused).endswith(": open the page as 127.0.0.1 or localhost")


def test_a_trace_request_must_be_sent_as_json() -> None:
    check_json("application/json")
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        refused = refusal(check_json, kind)
        assert (refused.status, str(refused)) == (
            415,
            f"send the request as application/json, not {kind}",
        )
