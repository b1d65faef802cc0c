"""The OpenAPI documents say what the services really answer on errors.

FastAPI documents every 422 as its own ``HTTPValidationError`` (``detail`` a
list of objects), but :mod:`gatehouse_common.errors` answers
``{"error", "detail", "fields"}``. A client generated from the document, or a
schema checker such as schemathesis, would then reject real answers. Rather
than annotate each route, the generated document's two validation schemas are
replaced by the shapes the handlers produce.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    """Every error answer: a stable machine code and a sentence for humans."""

    error: str = Field(description="stable machine-readable code", examples=["not_found"])
    detail: str = Field(description="what went wrong, for a human", examples=["no such account"])


class FieldError(BaseModel):
    field: str = Field(description="dotted path of the offending field", examples=["email"])
    location: str = Field(description="where it was: body, query, path, header")
    message: str
    type: str


class ValidationErrorBody(ErrorBody):
    """A 422: the summary in ``detail`` and one entry per offending field."""

    fields: list[FieldError]


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(ref_template="#/components/schemas/{model}")


def document_error_shapes(app: FastAPI) -> None:
    """Make ``app.openapi()`` describe 422 answers as :class:`ValidationErrorBody`."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(
            title=app.title,
            version=app.version,
            openapi_version=app.openapi_version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
            servers=app.servers,
        )
        schemas = document.get("components", {}).get("schemas")
        if schemas is not None and "HTTPValidationError" in schemas:
            validation = _schema(ValidationErrorBody)
            schemas.update(validation.pop("$defs", {}))
            schemas["HTTPValidationError"] = validation
            schemas.pop("ValidationError", None)
            schemas["ErrorBody"] = _schema(ErrorBody)
        app.openapi_schema = document
        return document

    # FastAPI's documented way to extend the schema; mypy refuses any assignment to a method
    app.openapi = openapi  # type: ignore[method-assign]
