"""The lab's echo server: the address line for probes and nc, HTTP for curl."""

from __future__ import annotations

from pycalico.lab.echo import answer


def test_a_probe_line_gets_the_address_it_came_from() -> None:
    assert answer(b"probe\n", "default/web", "10.244.1.5", "10.244.2.7") == b"10.244.2.7\n"


def test_a_complete_http_request_gets_an_http_response_naming_both_ends() -> None:
    reply = answer(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "default/web", "10.244.1.5", "10.244.2.7")
    assert reply is not None
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert body == b"PodName: default/web | PodIP: 10.244.1.5 | ClientIP: 10.244.2.7\n"
    assert f"Content-Length: {len(body)}".encode() in head


def test_a_partial_http_request_waits_for_the_rest() -> None:
    assert answer(b"GE", "p", "a", "b") is None
    assert answer(b"GET / HTTP/1.1\r\nHost: x\r\n", "p", "a", "b") is None


def test_head_gets_headers_only() -> None:
    reply = answer(b"HEAD / HTTP/1.1\r\n\r\n", "p", "a", "b")
    assert reply is not None and reply.endswith(b"\r\n\r\n")
