"""The OpenAPI document describes the error bodies the handlers really send."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field

from gatehouse_common.errors import install_error_handlers

pytestmark = pytest.mark.unit


class Thing(BaseModel):
    name: str = Field(min_length=1)


def make_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/things")
    async def create(thing: Thing) -> Thing:
        return thing

    return app


async def test_422_is_documented_as_the_shape_sent() -> None:
    app = make_app()
    schemas = app.openapi()["components"]["schemas"]
    documented = schemas["HTTPValidationError"]
    assert set(documented["required"]) == {"error", "detail", "fields"}
    assert documented["properties"]["detail"]["type"] == "string"
    assert "ValidationError" not in schemas
    assert "FieldError" in schemas

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post("/things", json={"name": ""})
    assert response.status_code == 422
    body = response.json()
    assert set(body) == set(documented["required"])
    field_schema = schemas["FieldError"]
    assert set(body["fields"][0]) == set(field_schema["required"])


def test_document_is_built_once() -> None:
    app = make_app()
    assert app.openapi() is app.openapi()
