"""RequestContextMiddleware and request ids: kept when sane, made otherwise, always returned."""

from __future__ import annotations

import re

import httpx
import pytest
from common.asgi import AsgiClientFactory
from fastapi import FastAPI, Response

from gatehouse_common.middleware import RequestContextMiddleware
from gatehouse_common.request_id import accept_request_id, current_request_id

pytestmark = pytest.mark.unit

FRESH_ID = re.compile(r"^[0-9a-f]{32}$")


def make_app(*, access_log: bool = True) -> FastAPI:
    app = FastAPI()

    @app.get("/rid")
    async def rid() -> dict[str, str | None]:
        return {"seen": current_request_id()}

    @app.get("/own-header")
    async def own_header() -> Response:
        return Response("x", headers={"X-Request-ID": "set-by-the-handler"})

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    app.add_middleware(RequestContextMiddleware, access_log=access_log)
    return app


@pytest.fixture
def client(asgi_client: AsgiClientFactory) -> httpx.AsyncClient:
    return asgi_client(make_app())


@pytest.mark.parametrize(
    "sane",
    ["abc-123", "a", "A" * 64, "trace:span.1", "6f1c2b", "0f8fad5b-d9cb-469f-a165-70867728950e"],
)
async def test_a_sane_id_is_kept_seen_by_the_handler_and_returned(
    client: httpx.AsyncClient, sane: str
) -> None:
    response = await client.get("/rid", headers={"X-Request-ID": sane})
    assert response.json() == {"seen": sane}
    assert response.headers["x-request-id"] == sane


async def test_an_id_is_made_when_none_was_sent(client: httpx.AsyncClient) -> None:
    first = await client.get("/rid")
    second = await client.get("/rid")
    assert FRESH_ID.match(first.headers["x-request-id"])
    assert first.json()["seen"] == first.headers["x-request-id"]
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize(
    "hostile",
    [
        "bad id\twith spaces",
        "A" * 65,
        "trace:span/1+2=3@host.example",
        "-leading-dash",
        "<script>alert(1)</script>",
        "' OR 1=1 --",
        "id;rm -rf",
        "\u00e9t\u00e9".encode(),
        b"\xff\x00",
        "",
        "{{7*7}}",
        "%0d%0aSet-Cookie:x",
    ],
)
async def test_a_hostile_id_is_replaced(client: httpx.AsyncClient, hostile: str | bytes) -> None:
    response = await client.get("/rid", headers={"X-Request-ID": hostile})
    assert FRESH_ID.match(response.headers["x-request-id"])
    assert response.json()["seen"] == response.headers["x-request-id"]


async def test_the_response_carries_exactly_one_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/own-header", headers={"X-Request-ID": "mine"})
    assert response.headers.get_list("x-request-id") == ["mine"]


async def test_errors_carry_the_id_too(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nowhere", headers={"X-Request-ID": "r-404"})
    invalid = await client.get("/items/abc", headers={"X-Request-ID": "r-422"})
    assert (missing.status_code, missing.headers["x-request-id"]) == (404, "r-404")
    assert (invalid.status_code, invalid.headers["x-request-id"]) == (422, "r-422")


async def test_the_id_does_not_leak_out_of_the_request(client: httpx.AsyncClient) -> None:
    await client.get("/rid", headers={"X-Request-ID": "leak-check"})
    assert current_request_id() is None


async def test_access_line_with_request_id_method_path_status(
    json_logs, asgi_client: AsgiClientFactory
) -> None:
    client = asgi_client(make_app())
    await client.get("/items/7?q=secret", headers={"X-Request-ID": "acc-1"})
    access = [line for line in json_logs() if line["logger"] == "gatehouse.access"]
    assert len(access) == 1
    line = access[0]
    assert line["request_id"] == "acc-1"
    assert (line["method"], line["path"], line["status"]) == ("GET", "/items/7", 200)
    assert line["message"] == "GET /items/7 200"
    assert "secret" not in str(line)  # the query string may carry credentials
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0


async def test_access_log_can_be_turned_off(json_logs, asgi_client: AsgiClientFactory) -> None:
    await asgi_client(make_app(access_log=False)).get("/rid")
    assert [x for x in json_logs() if x["logger"] == "gatehouse.access"] == []


def test_accept_request_id_directly() -> None:
    assert accept_request_id(b"keep.me") == "keep.me"
    assert FRESH_ID.match(accept_request_id(None))
    assert FRESH_ID.match(accept_request_id(b"no\nnewlines"))
    assert FRESH_ID.match(accept_request_id(b"\xff\xfe"))
