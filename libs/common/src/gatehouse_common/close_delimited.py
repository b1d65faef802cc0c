"""A response of unknown length to an HTTP/1.0 client: delimited by closing, never chunked.

When an app streams a body without a ``Content-Length`` (a proxied stream, a
drip, server-sent events), uvicorn frames it with ``Transfer-Encoding:
chunked`` whatever the request's version. An HTTP/1.0 client knows no
transfer codings (RFC 9112 section 6.1: a server MUST NOT send one to it), so
it reads the chunk sizes as part of the body. The body of such an answer is
then delimited the way HTTP/1.0 delimits it: the server closes the connection
after the last byte, as nginx and gunicorn do. uvicorn never keeps an HTTP/1.0
connection alive, so the close is there already and says ``Connection: close``.

This leans on uvicorn's ``httptools_impl`` (0.54, locked in uv.lock): a cycle
decides on chunking while it writes the head (``chunked_encoding`` left None
means "no length given"), and checks each body write against
``expected_content_length``. tests/common/test_close_delimited.py holds it in
place over real sockets.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

if TYPE_CHECKING:
    from uvicorn._types import ASGISendEvent

# Answers that never carry a body, so never a framing either.
_BODILESS = frozenset({204, 304})


def _framed(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether the app gave the body a length or a transfer coding itself."""
    for name, _ in headers:
        lower = name.lower()
        if lower == b"content-length" or lower == b"transfer-encoding":
            return True
    return False


class CloseDelimitedCycle(RequestResponseCycle):
    """A request cycle that answers an HTTP/1.0 request's unframed body close-delimited."""

    _close_delimited = False

    async def send(self, message: ASGISendEvent) -> None:
        if message["type"] == "http.response.start":
            if (
                not self.response_started
                and self.scope["http_version"] == "1.0"
                and self.scope["method"] != "HEAD"
                and message["status"] not in _BODILESS
                and not _framed(message.get("headers", ()))
            ):
                # "not chunked, no length": uvicorn then writes the body as it comes
                self.chunked_encoding = False
                self._close_delimited = True
        elif self._close_delimited and message["type"] == "http.response.body":
            # uvicorn counts each write against the length; here the length is
            # "whatever comes before the close", so every write is exactly what is left
            self.expected_content_length = len(message.get("body", b""))
        await super().send(message)
