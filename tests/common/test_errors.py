"""The JSON error shape: every error a service answers is {"error", "detail"} (+ fields)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from common.asgi import AsgiClientFactory
from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from gatehouse_common.errors import ServiceError, install_error_handlers

pytestmark = pytest.mark.unit


class Signup(BaseModel):
    username: str = Field(min_length=3)
    age: int
    email: str


def make_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/signup")
    async def signup(body: Signup) -> dict[str, str]:
        return {"username": body.username}

    @app.get("/search")
    async def search(limit: int = Query(ge=1, le=100)) -> dict[str, int]:
        return {"limit": limit}

    @app.get("/taken")
    async def taken() -> None:
        raise ServiceError(409, "email_taken", "that email is taken", headers={"X-Why": "dup"})

    @app.get("/teapot")
    async def teapot() -> None:
        raise HTTPException(418, detail={"nested": "detail"})

    @app.get("/unauthorized")
    async def unauthorized() -> None:
        raise HTTPException(401, "log in first", headers={"WWW-Authenticate": "Bearer"})

    @app.get("/odd-status")
    async def odd_status() -> None:
        raise HTTPException(599, "odd")

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("secret connection string postgres://u:p@db")

    return app


@pytest.fixture
def client(asgi_client: AsgiClientFactory) -> httpx.AsyncClient:
    return asgi_client(make_app())


async def test_unknown_route_is_a_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/no/such/route")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": "not_found", "detail": "Not Found"}


async def test_wrong_method_is_a_json_405(client: httpx.AsyncClient) -> None:
    response = await client.delete("/taken")
    assert response.status_code == 405
    assert response.json() == {"error": "method_not_allowed", "detail": "Method Not Allowed"}
    assert response.headers["allow"] == "GET"


async def test_validation_error_lists_every_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/signup", json={"username": "ab", "age": "old"})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "validation_error"
    fields = {f["field"]: f for f in body["fields"]}
    assert set(fields) == {"username", "age", "email"}
    assert {f["location"] for f in body["fields"]} == {"body"}
    assert fields["email"]["type"] == "missing"
    assert fields["age"]["type"] == "int_parsing"
    assert "at least 3 characters" in fields["username"]["message"]
    for name in ("username", "age", "email"):
        assert f"{name}: " in body["detail"]


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[1, 2, 3]", b'"a string"', b"\xff\xfe", b""],
)
async def test_a_body_that_is_not_the_object_is_a_json_422(
    client: httpx.AsyncClient, content: bytes
) -> None:
    response = await client.post(
        "/signup", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "validation_error"
    assert body["detail"] and isinstance(body["fields"], list) and body["fields"]


async def test_query_validation_names_the_parameter(client: httpx.AsyncClient) -> None:
    response = await client.get("/search", params={"limit": "1000"})
    assert response.status_code == 422
    [field] = response.json()["fields"]
    assert (field["field"], field["location"]) == ("limit", "query")


async def test_service_error_keeps_its_status_code_detail_and_headers(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/taken")
    assert response.status_code == 409
    assert response.json() == {"error": "email_taken", "detail": "that email is taken"}
    assert response.headers["x-why"] == "dup"


async def test_http_exceptions_get_a_code_from_their_status(client: httpx.AsyncClient) -> None:
    unauthorized = await client.get("/unauthorized")
    assert unauthorized.status_code == 401
    assert unauthorized.json() == {"error": "unauthorized", "detail": "log in first"}
    assert unauthorized.headers["www-authenticate"] == "Bearer"
    odd = await client.get("/odd-status")
    assert (odd.status_code, odd.json()["error"]) == (599, "http_599")


async def test_error_codes_are_machine_tokens(client: httpx.AsyncClient) -> None:
    teapot = await client.get("/teapot")
    assert teapot.status_code == 418
    body = teapot.json()
    assert body["error"] == "im_a_teapot"
    assert isinstance(body["detail"], str) and "nested" in body["detail"]


async def test_unexpected_exception_is_a_json_500_without_internals(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/crash")
    assert response.status_code == 500
    assert response.json() == {"error": "internal_error", "detail": "an unexpected error occurred"}
    for leak in ("Traceback", "RuntimeError", "postgres://", "secret"):
        assert leak not in response.text


async def test_a_failure_mid_stream_is_not_answered_twice(
    asgi_client: AsgiClientFactory,
) -> None:
    app = make_app()

    async def chunks() -> AsyncIterator[bytes]:
        yield b"first chunk,"
        raise RuntimeError("the source went away")

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        return StreamingResponse(chunks(), media_type="text/plain")

    # The status line is out: no JSON 500 can follow, the error reaches the server.
    with pytest.raises(RuntimeError, match="the source went away"):
        await asgi_client(app).get("/stream")
    partial = await asgi_client(app, raise_app_exceptions=False).get("/stream")
    assert (partial.status_code, partial.content) == (200, b"first chunk,")
