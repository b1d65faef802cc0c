"""Request methods httptools does not know, let through to the app when they are valid.

RFC 9110 section 9.1 lets a method be any token, and registers many that
llhttp (the parser under httptools) has no entry for: ``VERSION-CONTROL``,
``BASELINE-CONTROL``, ``MKWORKSPACE``, ``UPDATE``, ``LABEL``, ``ORDERPATCH``...
llhttp refuses them with "Invalid method", so uvicorn answered 400 before any
app saw them, where nginx, Envoy and HAProxy pass them on.

Here, at the start of each request head, a method llhttp would refuse is
swapped for ``GET`` in the bytes the parser reads, and put back into the ASGI
scope once the head is parsed. The method plays no part in how llhttp frames
a request's body (``Content-Length`` and ``Transfer-Encoding`` decide), so the
swap changes nothing else. A method that is not a token (a control byte, a
separator) is left alone for llhttp to refuse with 400, as before.

A head is recognised at its start only: when a read begins where the previous
request ended. That is every request of a client that waits for each answer;
a pipelining client whose unknown method arrives in the same read as the end
of the request before it still gets 400, because httptools does not tell
where in a read one request ends and the next begins.
"""

from __future__ import annotations

import re

# tchar (RFC 9110 section 5.6.2), then the space that ends the method
_TOKEN_METHOD = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64} ")
_TCHARS = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]{0,64}")
# llhttp's own method table (llhttp 9, in httptools 0.9): these it parses itself
_KNOWN = frozenset(
    b"DELETE GET HEAD POST PUT CONNECT OPTIONS TRACE COPY LOCK MKCOL MOVE PROPFIND "
    b"PROPPATCH SEARCH UNLOCK BIND REBIND UNBIND ACL REPORT MKACTIVITY CHECKOUT MERGE "
    b"M-SEARCH NOTIFY SUBSCRIBE UNSUBSCRIBE PATCH PURGE MKCALENDAR LINK UNLINK SOURCE "
    b"QUERY PRI DESCRIBE ANNOUNCE SETUP PLAY PAUSE TEARDOWN GET_PARAMETER SET_PARAMETER "
    b"REDIRECT RECORD FLUSH".split()
)
_STAND_IN = b"GET"


class ExtensionMethods:
    """Swaps unknown token methods in and out around one connection's parser.

    The protocol calls :meth:`feed` with every read before the parser sees
    it, :meth:`began` and :meth:`ended` from the parser's message callbacks,
    and :meth:`method` once a head is complete.
    """

    __slots__ = ("_held", "_in_message", "_method")

    def __init__(self) -> None:
        self._in_message = False  # the parser is inside a request
        self._held = b""  # the start of a method that has not ended yet
        self._method: str | None = None  # the real method of the request being parsed

    def began(self) -> None:
        self._in_message = True

    def ended(self) -> None:
        self._in_message = False
        self._method = None

    def method(self) -> str | None:
        """The method to put in the scope instead of the stand-in, if one was swapped."""
        return self._method

    def feed(self, data: bytes) -> bytes:
        """The bytes for the parser: ``data``, with an unknown token method swapped.

        A read that ends inside the method is held (b"" for now) until the
        method's end arrives; at most 64 bytes, the longest method taken.
        """
        if self._in_message:
            return data
        if self._held:
            data, self._held = self._held + data, b""
        start = 0
        while data.startswith(b"\r\n", start):  # empty lines before a request line
            start += 2
        found = _TOKEN_METHOD.match(data, start)
        if found is None:
            rest = data[start:]
            if rest and _TCHARS.fullmatch(rest) and len(rest) <= 64:
                self._held = data  # the method has not ended yet
                return b""
            return data  # no method yet, or not a token: the parser decides
        method = data[start : found.end() - 1]
        if method in _KNOWN:
            return data
        self._method = method.decode("ascii")
        return data[:start] + _STAND_IN + data[found.end() - 1 :]
