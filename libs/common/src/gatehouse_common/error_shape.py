"""The shape of every error body, with nothing but the standard library.

Kept apart from :mod:`gatehouse_common.errors` (which wires the shape into
FastAPI) so that code answering errors outside any FastAPI app (the edge
protocol, the HTTP/2 protocol, the gateway's hot path) does not import FastAPI
and pydantic's models into every process: each gateway worker would carry
several MB of them for nothing (loadtest/README.md, "Memory").
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from typing import Any


def error_body(code: str, detail: str, **extra: Any) -> bytes:
    """The one shape of every error body: ``{"error": code, "detail": sentence, ...extra}``.

    Encoded as Starlette's ``JSONResponse`` encodes (compact, UTF-8), so an
    error a handler raises and one a raw ASGI or protocol path writes itself
    read the same byte for byte.
    """
    body = {"error": code, "detail": detail, **extra}
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def describe_error(exc: BaseException) -> str:
    """``"ConnectionError: refused"``, cut to 300 characters: an error for a status field."""
    return f"{type(exc).__name__}: {exc}"[:300]


def status_code_name(status_code: int) -> str:
    """A machine token for a status: "not_found", "im_a_teapot", or "http_599"."""
    try:
        phrase = HTTPStatus(status_code).phrase.lower().replace("'", "")
    except ValueError:
        return f"http_{status_code}"
    return _NOT_A_TOKEN.sub("_", phrase).strip("_")


_NOT_A_TOKEN = re.compile(r"[^a-z0-9]+")
