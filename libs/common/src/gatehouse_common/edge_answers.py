"""The complete HTTP answers the protocol writes itself, before or instead of the app.

A request refused at the edge (head too large or too slow, body stalled, bytes
that are not HTTP) never reaches an app, so no middleware renders its error:
these are the same bodies the apps answer (from
:func:`gatehouse_common.errors.error_body`), with the gateway's code where it
has one for the same refusal (``headers_too_large``), always with
``Connection: close``: after any of them the connection ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus

from gatehouse_common.error_shape import error_body


class EdgeAnswer:
    """One refusal, rendered once at import; only the server's default headers
    (the Date) are added when it is written."""

    __slots__ = ("_body", "_status_line", "status")

    def __init__(self, status: int, code: str, detail: str) -> None:
        self.status = status
        phrase = HTTPStatus(status).phrase
        self._status_line = f"HTTP/1.1 {status} {phrase}\r\n".encode("ascii")
        self._body = error_body(code, detail)

    def render(self, default_headers: Iterable[tuple[bytes, bytes]]) -> bytes:
        parts = [self._status_line]
        for name, value in default_headers:
            parts += [name, b": ", value, b"\r\n"]
        parts += [
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(self._body),
            b"connection: close\r\n\r\n",
            self._body,
        ]
        return b"".join(parts)


BAD_REQUEST = EdgeAnswer(400, "bad_request", "The request is not valid HTTP/1.1.")
URI_TOO_LONG = EdgeAnswer(
    414, "request_line_too_long", "The request line is longer than this server accepts."
)
HEADERS_TOO_LARGE = EdgeAnswer(
    431, "headers_too_large", "The request's header lines are larger than this server accepts."
)
TOO_MANY_HEADERS = EdgeAnswer(
    431, "too_many_headers", "The request has more header lines than this server accepts."
)
HEAD_TIMEOUT = EdgeAnswer(408, "request_timeout", "The request's head did not arrive in time.")
BODY_TIMEOUT = EdgeAnswer(408, "body_timeout", "The request's body stopped arriving.")
UPGRADE_WITH_BODY = EdgeAnswer(
    400, "bad_request", "An Upgrade request with a body is not taken here: send it without Upgrade."
)
