"""JSON error bodies with a stable machine code and a human sentence.

Every service answers errors as ``{"error": "<code>", "detail": "<sentence>"}``
(validation errors add ``fields``), whether the error came from a handler, from
request validation or from a route that does not exist. :func:`error_body` is
the one place that shape is written: the handlers below, the gateway's hot path
(its bodies built once, at load) and the answers the edge protocol writes
itself all use it::

    ServiceError                 raised by handlers; carries status, code, detail
    HTTPException (Starlette)    code from the status phrase ("not_found",
                                 "method_not_allowed"), "http_<status>" without one
    RequestValidationError       422 "validation_error" with the field list
    any other exception          500 "internal_error", logged with its traceback

Unexpected exceptions are answered by :class:`UnexpectedErrorMiddleware`, inside
the app's own middleware, rather than by Starlette's ``ServerErrorMiddleware``,
which wraps every middleware: there the 500 would go out without the
``X-Request-ID`` header and its log line without the request id.

The shape itself (:func:`error_body`, :func:`describe_error`,
:func:`status_code_name`) lives in :mod:`gatehouse_common.error_shape`, free of
FastAPI, and is re-exported here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gatehouse_common.error_shape import describe_error, error_body, status_code_name
from gatehouse_common.openapi import document_error_shapes

__all__ = [
    "ServiceError",
    "UnexpectedErrorMiddleware",
    "describe_error",
    "error_body",
    "error_response",
    "install_error_handlers",
    "status_code_name",
]

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
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})
        # more fields of the body, e.g. a refused token's "reason"
        self.extra = dict(extra or {})


def error_response(
    status_code: int,
    code: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response:
    """An error answer for a FastAPI/Starlette app, its body from :func:`error_body`."""
    return Response(
        error_body(code, detail, **extra),
        status_code=status_code,
        headers=dict(headers or {}),
        media_type="application/json",
    )


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


async def _service_error(_: Request, exc: Exception) -> Response:
    if not isinstance(exc, ServiceError):  # pragma: no cover - registration guarantees it
        raise exc
    return error_response(exc.status_code, exc.code, exc.detail, headers=exc.headers, **exc.extra)


async def _http_error(_: Request, exc: Exception) -> Response:
    if not isinstance(exc, StarletteHTTPException):  # pragma: no cover
        raise exc
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return error_response(
        exc.status_code, status_code_name(exc.status_code), detail, headers=exc.headers
    )


async def _validation_error(_: Request, exc: Exception) -> Response:
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


async def _unexpected_error(_: Request, exc: Exception) -> Response:
    logger.exception("unhandled error: %s", type(exc).__name__)
    return error_response(
        status.HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "an unexpected error occurred"
    )


class UnexpectedErrorMiddleware:
    """Answers an exception no handler took with the JSON 500, inside the request's context.

    Add it before (so inside) :class:`~gatehouse_common.middleware.RequestContextMiddleware`,
    as :func:`install_error_handlers` followed by ``add_middleware`` does. The
    exception is logged here and not raised further: the server would only log
    it a second time, without the request id.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception as exc:
            if started:  # too late for an error body; the server drops the connection
                raise
            response = await _unexpected_error(Request(scope), exc)
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` in the shared JSON shape.

    Call it before adding the request-context middleware (as
    :func:`~gatehouse_common.app.create_service_app` does), so that unexpected
    errors are answered and logged with the request id.
    """
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    # Kept for an exception raised outside UnexpectedErrorMiddleware (in another middleware).
    app.add_exception_handler(Exception, _unexpected_error)
    app.add_middleware(UnexpectedErrorMiddleware)
    document_error_shapes(app)
