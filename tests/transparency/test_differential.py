"""The same requests to httpbin directly and through the gateway: the answers must match.

Each case is written as bytes on a fresh connection (``Connection: close``),
so nothing a client library normalises hides a difference; what may differ is
listed in :mod:`transparency.compare`, and nothing else is forgiven. The
wire-level cases (HTTP/1.0, keep-alive, pipelining, ``Expect``) are in
test_wire.py.
"""

from __future__ import annotations

import pytest
from adversarial.raw import exchange, request_bytes
from support.gateway import HOST, GatewayProcess
from support.processes import ServiceProcess
from transparency.compare import differences

Headers = list[tuple[str, str]]

MULTIPART = (
    b"--XyZ\r\n"
    b'Content-Disposition: form-data; name="field"\r\n\r\n'
    b"value \xc3\xa9\r\n"
    b"--XyZ\r\n"
    b'Content-Disposition: form-data; name="file"; filename="a.bin"\r\n'
    b"Content-Type: application/octet-stream\r\n\r\n" + bytes(range(256)) + b"\r\n--XyZ--\r\n"
)
CHUNKED = b"5\r\nhello\r\n1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\n\r\n"


def _case(
    method: str,
    target: str,
    headers: Headers = (),  # type: ignore[assignment]
    body: bytes = b"",
    *,
    length: bool = True,
) -> tuple[str, bytes]:
    extra = list(headers)
    if body and length:
        extra.append(("Content-Length", str(len(body))))
    sent = request_bytes(method, target, [("Host", HOST), *extra, ("Connection", "close")], body)
    return method, sent


CASES: dict[str, tuple[str, bytes]] = {
    # methods, registered extension methods included (httpbin answers 405 to those)
    "get": _case("GET", "/get"),
    "head": _case("HEAD", "/html"),  # not an echo: its length must match too
    "post-form": _case(
        "POST", "/post", [("Content-Type", "application/x-www-form-urlencoded")], b"a=1&b=%C3%A9"
    ),
    "put-json": _case("PUT", "/put", [("Content-Type", "application/json")], b'{"k": [1, 2]}'),
    "patch": _case("PATCH", "/patch", [("Content-Type", "text/plain")], b"patched"),
    "delete": _case("DELETE", "/delete"),
    "options": _case("OPTIONS", "/anything"),
    "propfind": _case("PROPFIND", "/anything", [("Depth", "1")]),
    "version-control": _case("VERSION-CONTROL", "/anything"),
    "mkworkspace": _case("MKWORKSPACE", "/anything/ws"),
    "play": _case("PLAY", "/anything"),  # an RTSP name llhttp refuses on HTTP
    "baseline-control": _case(
        "BASELINE-CONTROL", "/anything", [("Content-Type", "text/xml")], b"<x/>"
    ),
    # odd query strings and encodings
    "query-repeats": _case("GET", "/get?a=1&a=2&b=&c&d=%20x+y"),
    "query-utf8": _case("GET", "/get?q=caf%C3%A9&s=%E2%9C%93"),
    "query-odd": _case("GET", "/anything?x=a/b?c&semi=1;2&pct=%zz&plus=+&eq=a=b&empty=&&"),
    "path-encoded": _case("GET", "/anything/a%20b/caf%C3%A9/%E2%9C%93"),
    "absolute-form": _case("GET", f"http://{HOST}/get?x=1"),
    # request headers: repeats, case, odd values
    "repeated-headers": _case(
        "GET", "/headers", [("X-Dup", "a"), ("x-dup", "b"), ("X-DUP", "c, d"), ("X-Empty", "")]
    ),
    "header-latin1": _case("GET", "/headers", [("X-Latin", "caf\xe9"), ("X-Tab", "a\tb")]),
    "te-trailers": _case("GET", "/headers", [("TE", "trailers"), ("Connection", "TE")]),
    "user-agent": _case("GET", "/user-agent", [("User-Agent", 'curl/8 (x; y) "q"')]),
    # response headers: repeats and several Set-Cookie
    "cookies-set": _case("GET", "/cookies/set?a=1&b=two&c=%3B"),
    "cookies-sent": _case("GET", "/cookies", [("Cookie", "a=1; b=2"), ("Cookie", "c=3")]),
    "response-headers": _case(
        "GET",
        "/response-headers?Set-Cookie=a%3D1&Set-Cookie=b%3D2%3B%20Path%3D%2F&X-Multi=1&X-Multi=2",
    ),
    # uploads
    "chunked-upload": _case(
        "POST",
        "/post",
        [("Transfer-Encoding", "chunked"), ("Content-Type", "text/plain")],
        CHUNKED,
        length=False,
    ),
    "multipart": _case(
        "POST", "/post", [("Content-Type", "multipart/form-data; boundary=XyZ")], MULTIPART
    ),
    "binary-body": _case(
        "PUT", "/anything", [("Content-Type", "application/octet-stream")], bytes(range(256)) * 300
    ),
    # compressed, streamed, ranged
    "gzip": _case("GET", "/gzip", [("Accept-Encoding", "gzip")]),
    "deflate": _case("GET", "/deflate", [("Accept-Encoding", "deflate")]),
    "brotli": _case("GET", "/brotli", [("Accept-Encoding", "br")]),
    "stream": _case("GET", "/stream/5"),
    "drip": _case("GET", "/drip?numbytes=20&duration=0.2&delay=0&code=200"),
    "stream-bytes": _case("GET", "/stream-bytes/70000?seed=7&chunk_size=1000"),
    "bytes-large": _case("GET", "/bytes/100000?seed=3"),
    "range-first": _case("GET", "/range/1000", [("Range", "bytes=0-99")]),
    "range-suffix": _case("GET", "/range/1000", [("Range", "bytes=-50")]),
    "range-open": _case("GET", "/range/1000", [("Range", "bytes=900-")]),
    "range-unsatisfiable": _case("GET", "/range/1000", [("Range", "bytes=2000-")]),
    # statuses without a body, and others
    "status-204": _case("GET", "/status/204"),
    "status-304": _case("GET", "/status/304"),
    "status-418": _case("GET", "/status/418"),
    "status-500": _case("GET", "/status/500"),
    "head-204": _case("HEAD", "/status/204"),
    "head-stream": _case("HEAD", "/stream/2"),
    "head-range": _case("HEAD", "/range/1000", [("Range", "bytes=0-9")]),
    # redirects
    "redirect-to-307": _case(
        "GET", "/redirect-to?url=http%3A%2F%2Fexample.com%2Fx&status_code=307"
    ),
    "redirect-to-relative": _case("GET", "/redirect-to?url=%2Fget%3Fa%3D1"),
    "absolute-redirect": _case("GET", "/absolute-redirect/2"),
    "relative-redirect": _case("GET", "/relative-redirect/2"),
    "redirect": _case("GET", "/redirect/3"),
    # conditional requests
    "etag-none-match": _case("GET", "/etag/abc", [("If-None-Match", '"abc"')]),
    "etag-none-match-miss": _case("GET", "/etag/abc", [("If-None-Match", '"xyz"')]),
    "etag-match-fails": _case("GET", "/etag/abc", [("If-Match", '"xyz"')]),
    "cache-modified-since": _case(
        "GET", "/cache", [("If-Modified-Since", "Tue, 01 Dec 2026 00:00:00 GMT")]
    ),
    "cache-control": _case("GET", "/cache/60"),
}
# Not HTTP at all: each refuses with its own 400 page; only the status is compared.
REFUSED = {
    "method-not-a-token": b"VER(ION /anything HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    "method-with-space": b"VERSION CONTROL /anything HTTP/1.1\r\nHost: h\r\n\r\n",
    "raw-utf8-target": b"GET /get?raw=caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_answer_directly_and_through_the_gateway(
    name: str, httpbin: ServiceProcess, gateway: GatewayProcess
) -> None:
    method, data = CASES[name]
    direct = exchange(httpbin.url, data, method=method)
    proxied = exchange(gateway.url, data, method=method)
    found = differences(direct, proxied)
    assert not found, f"{name}: " + "\n".join(found)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_both_refuse_what_is_not_http(
    name: str, httpbin: ServiceProcess, gateway: GatewayProcess
) -> None:
    direct = exchange(httpbin.url, REFUSED[name])
    proxied = exchange(gateway.url, REFUSED[name])
    assert (direct.status, proxied.status) == (400, 400), f"{name}: {proxied.describe()}"


def test_asterisk_form_is_not_forwarded(httpbin: ServiceProcess, gateway: GatewayProcess) -> None:
    """``OPTIONS *`` asks about a server, not a resource: no route's prefix claims it.

    A difference by design: httpbin's Flask answers 404, the gateway 400.
    """
    data = b"OPTIONS * HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\nConnection: close\r\n\r\n"
    assert exchange(httpbin.url, data).status == 404
    assert exchange(gateway.url, data).status == 400
