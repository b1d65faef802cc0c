"""A tiny ASGI service served by ``gatehouse_common.server.serve`` with extra listeners.

``python -m common.tls_app`` (with ``tests`` on the path) runs it like any
service: settings from ``GATEHOUSE_TLS_APP_*`` (edge limits included), and the
listeners as JSON in ``GATEHOUSE_TLS_APP_LISTENERS``: a list of objects with
``port`` and optionally ``certificates`` ([[cert, key], ...]),
``reload_check_interval``, ``http2``, ``h2c``, ``redirect_to_https``, ``hsts``
(max-age). ``GATEHOUSE_TLS_APP_MAIN_H2C=1`` makes the main port take h2c.

Endpoints: ``/echo`` reads the whole body and answers what the app saw;
``/big?size=N`` answers N bytes in one body message (as a proxy passes a large
buffered body on); ``/hold`` waits for the client to go away without reading;
``/stream?size=N&chunk=C`` answers N bytes in C-byte messages; ``/sleep?s=X``
answers after X seconds (not reading the body);
``/healthz``.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from pydantic_settings import SettingsConfigDict

from gatehouse_common.listeners import CertificateFiles, HstsSpec, ListenerSpec, TlsSpec
from gatehouse_common.server import serve
from gatehouse_common.settings import ServiceSettings


class TlsAppSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEHOUSE_TLS_APP_")

    service_name: str = "tls-app"


async def _answer(send: Any, status: int, body: bytes, ctype: bytes = b"application/json") -> None:
    headers = [
        (b"content-type", ctype),
        (b"content-length", b"%d" % len(body)),
        (b"connection", b"keep-alive"),  # hop-by-hop: HTTP/2 must drop it
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["type"] != "http":
        return
    path = scope["path"]
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    if path == "/hold":
        while (await receive())["type"] != "http.disconnect":
            pass
        return
    if path == "/big":
        await _answer(send, 200, b"x" * int(query["size"]), b"application/octet-stream")
        return
    if path == "/stream":  # size bytes in chunk-sized body messages
        size, chunk = int(query["size"]), int(query.get("chunk", "65536"))
        start = {"type": "http.response.start", "status": 200, "headers": []}
        await send(start)
        while size > 0:
            part = min(size, chunk)
            size -= part
            await send({"type": "http.response.body", "body": b"x" * part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/sleep":
        await asyncio.sleep(float(query.get("s", "1")))
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    seen = {
        "scheme": scope["scheme"],
        "http_version": scope["http_version"],
        "path": path,
        "query": scope["query_string"].decode(),
        "headers": [[n.decode(), v.decode()] for n, v in scope["headers"]],
        "body_size": size,
        "port": scope["server"][1],
    }
    await _answer(send, 200, json.dumps(seen).encode())


def create_app() -> Any:
    return app


def _spec(entry: dict[str, Any]) -> ListenerSpec:
    tls = None
    if entry.get("certificates"):
        tls = TlsSpec(
            tuple(CertificateFiles(Path(c), Path(k)) for c, k in entry["certificates"]),
            reload_check_interval=float(entry.get("reload_check_interval", 0.2)),
        )
    hsts = HstsSpec(int(entry["hsts"])) if entry.get("hsts") is not None else None
    return ListenerSpec(
        "127.0.0.1",
        int(entry["port"]),
        tls=tls,
        http2=bool(entry.get("http2", True)),
        h2c=bool(entry.get("h2c", False)),
        redirect_to_https=entry.get("redirect_to_https"),
        hsts=hsts,
    )


def main() -> None:
    settings = TlsAppSettings()
    listeners = [_spec(e) for e in json.loads(os.environ.get("GATEHOUSE_TLS_APP_LISTENERS", "[]"))]
    serve(
        "common.tls_app:create_app",
        settings,
        fast=True,
        listeners=listeners,
        main_h2c=os.environ.get("GATEHOUSE_TLS_APP_MAIN_H2C") == "1",
    )


if __name__ == "__main__":
    main()
