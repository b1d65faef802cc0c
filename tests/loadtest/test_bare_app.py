"""The bare app answers 200 the same way over ASGI and RSGI, and handles the lifespan."""

from __future__ import annotations

from typing import Any

from gatehouse_loadtest.bare_app import BODY, app, rsgi_app


async def test_asgi_answers_200_with_its_body() -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        raise AssertionError("the body is never read")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "http", "path": "/"}, receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 200
    assert (b"content-length", str(len(BODY)).encode()) in sent[0]["headers"]
    assert sent[1]["body"] == BODY


async def test_asgi_lifespan_is_acknowledged() -> None:
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    await app({"type": "lifespan"}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_rsgi_writes_the_same_answer_in_one_call() -> None:
    calls: list[tuple[int, list[tuple[str, str]], bytes]] = []

    class Protocol:
        def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            calls.append((status, headers, body))

    await rsgi_app(object(), Protocol())
    assert len(calls) == 1
    status, headers, body = calls[0]
    assert (status, body) == (200, BODY)
    assert ("content-length", str(len(BODY))) in headers
