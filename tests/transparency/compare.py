"""One answer asked of httpbin directly and through the gateway, and what may differ.

The gateway is transparent when the two answers are the same: status, every
response header and the body. What it changes on purpose is listed here, and
nothing else is left out of the comparison:

- response ``Date``: each server writes its own clock (both must send one);
- response ``X-Request-ID``: the gateway's, by design (it must send one);
- response ``Connection``, ``Keep-Alive``, ``Transfer-Encoding``: hop-by-hop
  framing of each connection (RFC 9110 section 7.6.1); the body they frame is
  compared, and the framing an HTTP/1.0 client gets is checked on its own;
- in httpbin's echo of the request headers (its JSON ``headers``): the
  forwarding headers the gateway adds (``Forwarded``, ``X-Forwarded-For``,
  ``-Proto``, ``-Host``, ``X-Real-Ip``, ``X-Request-Id``) and the hop-by-hop
  ones of the client's own connection (``Connection``, ``Keep-Alive``, ``Te``);
- ``Content-Length``, only when the bodies differ by that echo alone (the
  echo is longer through the gateway by the headers it added).

Header names are compared case-insensitively (RFC 9110 section 5.1: uvicorn
writes them in lower case, as HTTP/2 must); the order of values of one name is
compared (two ``Set-Cookie`` in a given order stay in that order). The status
line's reason phrase and version are not compared: uvicorn writes the standard
phrase (``Not Found`` for Flask's ``NOT FOUND``), which a client must ignore
(RFC 9112 section 4), and its own version, ``HTTP/1.1`` also to an HTTP/1.0
client (RFC 9110 section 6.2: a server sends its own version).
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass
from typing import Any

import brotlicffi  # httpbin compresses with it, so it is there wherever httpbin is
from adversarial.raw import RawResponse

# Response headers each hop writes for itself, or the gateway adds by design.
HOP_RESPONSE = frozenset({"date", "x-request-id", "connection", "keep-alive", "transfer-encoding"})
# Request headers httpbin echoes that the gateway adds, or that belong to one hop.
ADDED_ECHO = frozenset(
    {
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-real-ip",
        "x-request-id",
        "connection",
        "keep-alive",
        "te",
    }
)


@dataclass
class Case:
    """A request as bytes on the wire, with a name for the failure message."""

    name: str
    data: bytes
    method: str = "GET"


def _decoded(response: RawResponse) -> bytes:
    coding = (response.header("content-encoding") or "").lower()
    body = response.body
    if coding == "gzip":
        return gzip.decompress(body)
    if coding == "deflate":
        return zlib.decompress(body)
    if coding == "br":
        return bytes(brotlicffi.decompress(body))
    return body


def _without_echo(value: Any) -> Any:
    """httpbin's JSON with the echoed headers the gateway adds taken out."""
    if isinstance(value, dict):
        cleaned = {}
        for key, item in value.items():
            if key == "headers" and isinstance(item, dict):
                item = {k: v for k, v in item.items() if k.lower() not in ADDED_ECHO}
            cleaned[key] = _without_echo(item)
        return cleaned
    if isinstance(value, list):
        return [_without_echo(item) for item in value]
    return value


def _normal_body(body: bytes) -> Any:
    """The body as compared: JSON (one document or one per line) without the echo, else bytes."""
    try:
        return _without_echo(json.loads(body))
    except ValueError:
        pass
    lines = body.splitlines()
    try:
        return [_without_echo(json.loads(line)) for line in lines] if lines else body
    except ValueError:
        return body


def _headers(response: RawResponse, *, length: bool) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in response.headers:
        key = name.decode("latin-1").lower()
        if key in HOP_RESPONSE or (key == "content-length" and not length):
            continue
        found.setdefault(key, []).append(value.decode("latin-1"))
    return found


def differences(direct: RawResponse, proxied: RawResponse) -> list[str]:
    """What differs between the two answers beyond what the gateway changes on purpose."""
    found: list[str] = []
    if direct.status != proxied.status:
        found.append(f"status: direct {direct.status}, through the gateway {proxied.status}")
    if not direct.complete or not proxied.complete:
        found.append(f"incomplete body: direct {direct.complete}, gateway {proxied.complete}")
    if proxied.header("x-request-id") is None:
        found.append("the gateway sent no X-Request-ID")
    if (direct.header("date") is None) != (proxied.header("date") is None):
        found.append("Date sent by one and not the other")
    same_bytes = direct.body == proxied.body
    if not same_bytes:
        ours, theirs = _decoded(direct), _decoded(proxied)
        if _normal_body(ours) != _normal_body(theirs):
            found.append(f"body:\n  direct  {ours[:400]!r}\n  gateway {theirs[:400]!r}")
    wanted = _headers(direct, length=same_bytes)
    got = _headers(proxied, length=same_bytes)
    for name in sorted(wanted.keys() | got.keys()):
        if wanted.get(name) != got.get(name):
            found.append(f"header {name}: direct {wanted.get(name)}, gateway {got.get(name)}")
    return found
