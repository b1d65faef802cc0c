"""Wire-level transparency: HTTP/1.0 framing, keep-alive, pipelining, ``Expect``.

Same method as test_differential.py (httpbin directly and through the gateway,
compared by :func:`transparency.compare.differences`), over connections held
open by hand, because what is compared here is how answers share and end a
connection.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from adversarial.raw import RawResponse, Reader, connect, read_response, request_bytes
from support.gateway import HOST, GatewayProcess
from support.processes import ServiceProcess
from transparency.compare import differences


def _request(method: str, target: str, *headers: tuple[str, str], body: bytes = b"") -> bytes:
    extra = list(headers)
    if body:
        extra.append(("Content-Length", str(len(body))))
    return request_bytes(method, target, [("Host", HOST), *extra], body)


def _one_by_one(url: str, requests: list[tuple[str, bytes]]) -> list[RawResponse]:
    """Each request sent once the answer before it is read, all on one connection."""
    with connect(url) as sock:
        reader = Reader(sock, 15)
        answers = []
        for method, data in requests:
            sock.sendall(data)
            answers.append(read_response(reader, method=method))
        return answers


def _pipelined(url: str, requests: list[tuple[str, bytes]]) -> list[RawResponse]:
    """All requests in one write, then their answers read in order."""
    with connect(url) as sock:
        sock.sendall(b"".join(data for _, data in requests))
        reader = Reader(sock, 15)
        return [read_response(reader, method=method) for method, _ in requests]


def _http10(method: str, target: str) -> bytes:
    return request_bytes(method, target, [("Host", HOST)], version="HTTP/1.0")


def _raw_http10(url: str, data: bytes) -> tuple[bytes, bytes]:
    """An HTTP/1.0 exchange as bytes: the head, and the body up to the close."""
    with connect(url) as sock:
        sock.sendall(data)
        reader = Reader(sock, 15)
        head = reader.until(b"\r\n\r\n")
        assert head is not None, f"no answer to {data!r}: {reader.buffer!r}"
        return head, reader.rest()


SEQUENCE = [
    ("GET", _request("GET", "/get")),
    ("POST", _request("POST", "/post", ("Content-Type", "text/plain"), body=b"kept alive")),
    ("GET", _request("GET", "/stream/3")),  # chunked
    ("GET", _request("GET", "/status/204")),
    ("HEAD", _request("HEAD", "/html")),
    ("GET", _request("GET", "/status/304")),
    ("VERSION-CONTROL", _request("VERSION-CONTROL", "/anything")),
    ("GET", _request("GET", "/cookies/set?k=v")),
]


@pytest.mark.parametrize("how", [_one_by_one, _pipelined], ids=["keep-alive", "pipelined"])
def test_requests_sharing_a_connection_answer_the_same(
    how: Callable[[str, list[tuple[str, bytes]]], list[RawResponse]],
    httpbin: ServiceProcess,
    gateway: GatewayProcess,
) -> None:
    """One connection reused request after request, or all requests written at once."""
    direct = how(httpbin.url, SEQUENCE)
    proxied = how(gateway.url, SEQUENCE)
    for (method, _), ours, theirs in zip(SEQUENCE, direct, proxied, strict=True):
        found = differences(ours, theirs)
        assert not found, f"{method} ({how.__name__}): " + "\n".join(found)


def test_extension_methods_pipelined_first_and_after_others(
    httpbin: ServiceProcess, gateway: GatewayProcess
) -> None:
    """An unknown method is recognised at the start of a read and after another request."""
    requests = [SEQUENCE[6], SEQUENCE[1], SEQUENCE[6], SEQUENCE[0]]
    direct = _pipelined(httpbin.url, requests)
    proxied = _pipelined(gateway.url, requests)
    assert [r.status for r in proxied] == [r.status for r in direct] == [405, 200, 405, 200]


def test_extension_method_split_over_reads(
    httpbin: ServiceProcess, gateway: GatewayProcess
) -> None:
    """A method that arrives in pieces is put together before it is judged."""
    data = _request("VERSION-CONTROL", "/anything", ("Connection", "close"))
    answers = []
    for url in (httpbin.url, gateway.url):
        with connect(url) as sock:
            for piece in (data[:4], data[4:9], data[9:]):
                sock.sendall(piece)
                time.sleep(0.05)
            answers.append(read_response(Reader(sock, 15)))
    assert not differences(*answers), differences(*answers)
    assert answers[1].status == 405


@pytest.mark.parametrize("size", [3000, 200_000], ids=["buffered", "streamed"])
def test_expect_100_continue(size: int, httpbin: ServiceProcess, gateway: GatewayProcess) -> None:
    """Both answer "100 Continue" before the body is sent, then the same final answer.

    The gateway reads a small body whole before it picks a backend and streams
    a large one: both ask the client for it.
    """
    body = b"x" * size
    head = request_bytes(
        "POST",
        "/post",
        [
            ("Host", HOST),
            ("Content-Type", "text/plain"),
            ("Content-Length", str(len(body))),
            ("Expect", "100-continue"),
            ("Connection", "close"),
        ],
    )
    answers = []
    for url in (httpbin.url, gateway.url):
        with connect(url) as sock:
            sock.sendall(head)
            reader = Reader(sock, 15)
            interim = reader.until(b"\r\n\r\n")
            assert interim is not None and interim.startswith(b"HTTP/1.1 100 "), (url, interim)
            sock.sendall(body)
            answers.append(read_response(reader, method="POST"))
    found = differences(*answers)
    assert not found, "\n".join(found)
    assert answers[1].json()["data"] == body.decode()


@pytest.mark.parametrize(
    "target", ["/get", "/stream/3", "/drip?numbytes=12&duration=0.2&delay=0", "/html"]
)
def test_http10_client_gets_the_same_answer(
    target: str, httpbin: ServiceProcess, gateway: GatewayProcess
) -> None:
    data = _http10("GET", target)
    direct = _pipelined(httpbin.url, [("GET", data)])[0]
    proxied = _pipelined(gateway.url, [("GET", data)])[0]
    found = differences(direct, proxied)
    assert not found, f"HTTP/1.0 {target}: " + "\n".join(found)


def test_http10_upload_gets_the_same_answer(
    httpbin: ServiceProcess, gateway: GatewayProcess
) -> None:
    body = b"field=value&other=%C3%A9"
    data = request_bytes(
        "POST",
        "/post",
        [
            ("Host", HOST),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Content-Length", str(len(body))),
        ],
        body,
        version="HTTP/1.0",
    )
    direct = _pipelined(httpbin.url, [("POST", data)])[0]
    proxied = _pipelined(gateway.url, [("POST", data)])[0]
    found = differences(direct, proxied)
    assert not found, "HTTP/1.0 POST: " + "\n".join(found)


@pytest.mark.parametrize("target", ["/stream/3", "/drip?numbytes=12&duration=0.2&delay=0"])
def test_http10_client_never_gets_chunked(target: str, gateway: GatewayProcess) -> None:
    """HTTP/1.0 has no Transfer-Encoding: a body of unknown length ends with the connection.

    Before the fix uvicorn chunked it, and an HTTP/1.0 client read the chunk
    sizes as part of the body.
    """
    head, body = _raw_http10(gateway.url, _http10("GET", target))
    lower = head.lower()
    assert b"transfer-encoding" not in lower, head
    assert b"connection: close" in lower, head
    if target.startswith("/drip"):  # httpbin gives it a Content-Length, but streams it
        assert body == b"*" * 12
    else:
        assert b"content-length" not in lower, head
        assert [line[:1] for line in body.splitlines()] == [b"{"] * 3, body[:200]


def test_http10_head_and_204_have_no_body(gateway: GatewayProcess) -> None:
    for method, target in (("HEAD", "/stream/2"), ("GET", "/status/204")):
        head, body = _raw_http10(gateway.url, _http10(method, target))
        assert b"transfer-encoding" not in head.lower(), head
        assert body == b"", (method, target, body)
