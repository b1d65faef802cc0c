"""Request methods httptools does not know, let through to the app when they are valid.

RFC 9110 section 9.1 lets a method be any token, and registers many that
llhttp (the parser under httptools) has no entry for: ``VERSION-CONTROL``,
``BASELINE-CONTROL``, ``MKWORKSPACE``, ``UPDATE``, ``LABEL``, ``ORDERPATCH``...
llhttp refuses them with "Invalid method", so uvicorn answered 400 before any
app saw them, where nginx, Envoy and HAProxy pass them on.

Here, at the start of each request head, a method other than the common ones
is swapped for ``GET`` in the bytes the parser reads, and put back into the
ASGI scope once the head is parsed. The method plays no part in how llhttp frames
a request's body (``Content-Length`` and ``Transfer-Encoding`` decide), so the
swap changes nothing else. A method that is not a token (a control byte, a
separator) is left alone for llhttp to refuse with 400, as before.

A head is recognised at its start: when a read begins where the previous
request ended, which is every request of a client that waits for each
answer. A pipelining client's unknown method may instead follow the end of
another request inside one read; llhttp then fails on it, and httptools does
not say where in the read that request began. :meth:`ExtensionMethods.resume`
finds it by parsing prefixes of the read again with a scratch parser (a
binary search: a few passes in C, on this rare path only), so the connection
goes on with a new parser from exactly there. The scratch parser is the same
llhttp on the same bytes, so it cannot disagree with the real one about
where a request ends. It can only start where a read starts: an unknown
method pipelined behind a request whose body began in an earlier read is
still refused with 400.
"""

from __future__ import annotations

import contextlib
import re

import httptools

# tchar (RFC 9110 section 5.6.2), then the space that ends the method
_TOKEN_METHOD = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64} ")
_TCHARS = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]{0,64}")
# Parsed by llhttp itself: the common methods (no work on the hot path), and the
# two whose meaning to llhttp is more than a name (CONNECT's tunnel, PRI's HTTP/2
# preface). Every other token is swapped, whether this llhttp has it in its table
# or not: the table differs between versions, and llhttp 9 refuses its RTSP
# methods (PLAY, SETUP...) on an HTTP request.
_PARSED = frozenset(
    {
        b"GET",
        b"HEAD",
        b"POST",
        b"PUT",
        b"DELETE",
        b"OPTIONS",
        b"PATCH",
        b"TRACE",
        b"CONNECT",
        b"PRI",
    }
)
_STAND_IN = b"GET"
# A read that starts with one of these is a request llhttp reads as is: the
# common case, answered by one C call instead of a regex match and a slice.
_PARSED_STARTS = tuple(m + b" " for m in (b"GET", *sorted(_PARSED - {b"GET"})))


class ExtensionMethods:
    """Swaps unknown token methods in and out around one connection's parser.

    The protocol calls :meth:`feed` with every read before the parser sees
    it, :meth:`began` and :meth:`ended` from the parser's message callbacks,
    and :meth:`method` once a head is complete.
    """

    __slots__ = ("_ended", "_from_boundary", "_held", "_in_message", "_method")

    def __init__(self) -> None:
        self._in_message = False  # the parser is inside a request
        self._held = b""  # the start of a method that has not ended yet
        self._method: str | None = None  # the real method of the request being parsed
        self._from_boundary = False  # the last read began between two requests
        self._ended = 0  # requests that ended in the last read

    def began(self) -> None:
        self._in_message = True

    def ended(self) -> None:
        self._in_message = False
        self._method = None
        self._ended += 1

    def resume(self, fed: bytes) -> bytes | None:
        """After llhttp refused a method in ``fed`` (what :meth:`feed` returned):
        the bytes for a new parser, from the start of the refused request on.

        None when that request is the read's first, or the read began inside a
        request: then the method is what llhttp refused, not where it stands.
        """
        ended = self._ended
        if not ended or not self._from_boundary:
            return None
        low, high = 0, len(fed)  # the shortest prefix in which ``ended`` requests end
        while low < high:
            middle = (low + high) // 2
            if _requests_ending(fed[:middle]) >= ended:
                high = middle
            else:
                low = middle + 1
        self._in_message = False
        self._method = None
        return self.feed(fed[low:])

    def method(self) -> str | None:
        """The method to put in the scope instead of the stand-in, if one was swapped."""
        return self._method

    def feed(self, data: bytes) -> bytes:
        """The bytes for the parser: ``data``, with an unknown token method swapped.

        A read that ends inside the method is held (b"" for now) until the
        method's end arrives; at most 64 bytes, the longest method taken.
        """
        self._ended = 0
        self._from_boundary = not self._in_message
        if self._in_message:
            return data
        if self._held:
            data, self._held = self._held + data, b""
        elif data.startswith(_PARSED_STARTS):
            return data
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
        if method in _PARSED:
            return data
        self._method = method.decode("ascii")
        return data[:start] + _STAND_IN + data[found.end() - 1 :]


class _EndCounter:
    """The scratch parser's protocol: counts the requests that end."""

    __slots__ = ("ended",)

    def __init__(self) -> None:
        self.ended = 0

    def on_message_complete(self) -> None:
        self.ended += 1


def _requests_ending(data: bytes) -> int:
    """How many requests end within ``data``, read from a boundary by a fresh llhttp."""
    counter = _EndCounter()
    with contextlib.suppress(httptools.HttpParserError, httptools.HttpParserUpgrade):
        fresh_parser(counter).feed_data(data)
    return counter.ended


def fresh_parser(protocol: object) -> httptools.HttpRequestParser:
    """A parser for ``protocol`` as uvicorn makes one (after one that failed)."""
    parser = httptools.HttpRequestParser(protocol)
    parser.set_dangerous_leniencies(lenient_data_after_close=True)
    return parser
