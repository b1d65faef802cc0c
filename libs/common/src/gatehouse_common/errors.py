"""JSON error bodies with a stable machine code and a human sentence.

Every service answers errors as ``{"error": "<code>", "detail": "<sentence>"}``
(validation errors add ``fields``), whether the error came from a handler, from
request validation or from a route that does not exist::

    ServiceError                 raised by handlers; carries status, code, detail
    ├── HTTPException (Starlette) mapped to code "http_<status>" unless given one
    └── RequestValidationError    mapped to 422 "validation_error" with field list
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """An error a handler raises on purpose, to be answered as JSON."""

    def __init__(
        self,
        status_code: int,
        code: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})


def error_response(
    status_code: int,
    code: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """The one shape of every error body."""
    body: dict[str, Any] = {"error": code, "detail": detail, **extra}
    return JSONResponse(body, status_code=status_code, headers=dict(headers or {}))


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    fields = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ())]
        fields.append(
            {
                "field": ".".join(loc[1:] if loc[:1] in (["body"], ["query"]) else loc),
                "location": loc[0] if loc else "",
                "message": err.get("msg", ""),
                "type": err.get("type", ""),
            }
        )
    return fields


async def _service_error(_: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, ServiceError):  # pragma: no cover - registration guarantees it
        raise exc
    return error_response(exc.status_code, exc.code, exc.detail, headers=exc.headers)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, StarletteHTTPException):  # pragma: no cover
        raise exc
    try:
        phrase = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        phrase = f"http_{exc.status_code}"
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return error_response(exc.status_code, phrase, detail, headers=exc.headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):  # pragma: no cover
        raise exc
    fields = _field_errors(exc)
    summary = "; ".join(f"{f['field'] or f['location']}: {f['message']}" for f in fields)
    return error_response(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        "validation_error",
        summary or "the request is not valid",
        fields=jsonable_encoder(fields),
    )


async def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error: %s", type(exc).__name__)
    return error_response(
        status.HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "an unexpected error occurred"
    )


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` in the shared JSON shape."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)
