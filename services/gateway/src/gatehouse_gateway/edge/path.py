"""One normalised path: what routing, auth and the backend all see.

A gateway that routes on one spelling of a path and forwards another can be
walked past: ``/public/../admin`` matched a public prefix here while the
backend served ``/admin``. So the raw path is normalised once, the route is
chosen on the result, and exactly that result is forwarded:

- percent-escapes of unreserved characters are decoded (``%2e`` is ``.``,
  ``%41`` is ``A``), as RFC 3986 section 6.2.2.2 allows, and the remaining
  escapes are written in upper case;
- an escaped separator (``%2F``, ``%5C``) is refused, or kept escaped and so
  never a separator here (``escaped_slashes``, after Envoy's
  ``path_with_escaped_slashes_action``); a raw backslash, ``%00``, a broken
  escape and a ``.;``/``..;`` segment (which Tomcat reads as a dot segment)
  are refused, since backends disagree about them;
- repeated slashes are merged and dot segments removed (RFC 3986 section
  5.2.4); ``..`` never climbs above the root.

Almost every real path has none of this in it: a handful of substring checks
let those through untouched.
"""

from __future__ import annotations

import re
from typing import Literal

EscapedSlashes = Literal["reject", "keep"]

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_ESCAPE = re.compile(rb"%([0-9A-Fa-f]{2})")
_BROKEN_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_SEPARATORS = (0x2F, 0x5C)  # '/' and '\'


class BadPath(ValueError):
    """The path cannot be given one meaning; the client gets 400 with ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ``b"%" in raw`` costs CPython 3.11 a TypeError made and dropped (bytes.__contains__
# tries the needle as an int first): about 2,000 instructions each, 9,000 for
# the four checks per request. An int needle and ``find`` skip that.
_PERCENT, _BACKSLASH, _DOT = ord("%"), ord("\\"), ord(".")


def _needs_work(raw: bytes) -> bool:
    return (
        _PERCENT in raw
        or _BACKSLASH in raw
        or (_DOT in raw and raw.find(b"/.") >= 0)
        or raw.find(b"//") >= 0
    )


def normalise_path(raw: bytes, escaped_slashes: EscapedSlashes = "reject") -> bytes:
    """The normal form of ``raw`` (a request target's path, without the query).

    Raises :class:`BadPath` for what has no single meaning. The result starts
    with ``/``, has no empty or dot segments, and ends with ``/`` when ``raw``
    named a directory (``/a/b/`` or ``/a/b/..`` -> ``/a/``).
    """
    if not raw.startswith(b"/"):
        raise BadPath("the path must start with /")
    if not _needs_work(raw):
        return raw
    if b"\\" in raw:
        raise BadPath("a backslash in the path")
    if b"%" in raw:
        raw = _decode_unreserved(raw, escaped_slashes)
    segments: list[bytes] = []
    parts = raw.split(b"/")
    for part in parts[1:]:
        if part == b"" or part == b".":
            continue
        if part == b"..":
            if segments:
                segments.pop()
            continue
        if b";" in part and part.split(b";", 1)[0] in (b".", b".."):
            raise BadPath("a dot segment with parameters (.; or ..;) in the path")
        segments.append(part)
    last = parts[-1]
    directory = last in (b"", b".", b"..")
    if not segments:
        return b"/"
    return b"/" + b"/".join(segments) + (b"/" if directory else b"")


def _decode_unreserved(raw: bytes, escaped_slashes: EscapedSlashes) -> bytes:
    if _BROKEN_ESCAPE.search(raw):
        raise BadPath("a % in the path that is not followed by two hex digits")

    def decode(match: re.Match[bytes]) -> bytes:
        byte = int(match.group(1), 16)
        if byte in _UNRESERVED:
            return bytes((byte,))
        if byte in _SEPARATORS:
            if escaped_slashes == "reject":
                raise BadPath("an escaped / or \\ (%2F, %5C) in the path")
            return match.group(0).upper()
        if byte == 0:
            raise BadPath("an escaped NUL (%00) in the path")
        return match.group(0).upper()

    return _ESCAPE.sub(decode, raw)
