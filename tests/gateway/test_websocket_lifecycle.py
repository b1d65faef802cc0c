"""How proxied WebSockets end: idle, a reload that removes their backend, an operator
drain, a shutdown, and many at once. Real gateway and fake backend processes; every
wait is bounded."""

from __future__ import annotations

import asyncio
import signal
import time

import httpx
import pytest
from support.gateway import HOST, Launcher, gateway_route, metric_value
from support.jwks import AUDIENCE, ISSUER, KeyServer
from support.websocket import closed, greeting, recv, refused_status, ws_connect

DRAIN = {"GATEHOUSE_GATEWAY_WS_DRAIN_TIMEOUT": "1"}


async def test_an_idle_socket_is_closed_with_1001(launcher: Launcher) -> None:
    backend = launcher.backends(1, prefix="idle")[0]
    gateway = launcher.gateway({"routes": [gateway_route([backend], websocket_idle_timeout=1)]})
    async with ws_connect(gateway.url, host=HOST) as socket:
        await greeting(socket)
        # activity keeps it open past the idle time
        for _ in range(3):
            await asyncio.sleep(0.5)
            await socket.send("still here")
            assert await recv(socket) == "still here"
        started = time.monotonic()
        assert await closed(socket, timeout=5) == (1001, "idle timeout")
        assert time.monotonic() - started < 3


async def test_a_reload_that_removes_the_backend_closes_its_sockets_within_the_bound(
    launcher: Launcher,
) -> None:
    old, new = launcher.backends(2, prefix="reload")
    gateway = launcher.gateway({"routes": [gateway_route([old])]}, env=DRAIN)
    async with ws_connect(gateway.url, host=HOST) as socket:
        assert (await greeting(socket))["instance"] == "reload-1"
        gateway.write_config({"routes": [gateway_route([new])]})
        started = time.monotonic()
        # it keeps working through the grace period ...
        await socket.send("during the grace")
        assert await recv(socket) == "during the grace"
        # ... then ends with "going away", within grace + sweep interval + slack
        code, reason = await closed(socket, timeout=10)
        assert (code, reason) == (1001, "backend removed")
        assert time.monotonic() - started < 6
    async with ws_connect(gateway.url, host=HOST) as socket:
        assert (await greeting(socket))["instance"] == "reload-2"


async def test_an_operator_drain_lets_sockets_finish_then_closes_them_with_1001(
    launcher: Launcher, keys: KeyServer
) -> None:
    drained = launcher.backends(1, prefix="drain")[0]
    auth = {"jwks_url": keys.url, "issuer": ISSUER, "audience": AUDIENCE, "leeway": 5}
    document = {"auth": auth, "routes": [gateway_route([drained])]}
    gateway = launcher.gateway(document, env=DRAIN)
    async with ws_connect(gateway.url, host=HOST) as socket:
        assert (await greeting(socket))["instance"] == "drain-1"
        admin = {"Authorization": f"Bearer {keys.token(roles=['admin'])}"}
        path = f"/-/admin/routes/app/backends/127.0.0.1:{drained.port}/drain"
        response = await asyncio.to_thread(
            httpx.post, gateway.admin_url + path, headers=admin, timeout=10
        )
        assert response.status_code == 200, response.text
        started = time.monotonic()
        await socket.send("still served while draining")
        assert await recv(socket) == "still served while draining"
        assert await closed(socket, timeout=10) == (1001, "backend drained")
        assert time.monotonic() - started < 6
    # a drained backend takes no new socket: the route's only backend is drained, so 503
    assert await refused_status(ws_connect(gateway.url, host=HOST)) == 503


async def test_a_shutdown_lets_open_sockets_finish_then_closes_them_with_1001(
    launcher: Launcher,
) -> None:
    backend = launcher.backends(1, prefix="shutdown")[0]
    gateway = launcher.gateway(
        {"routes": [gateway_route([backend])]},
        env={"GATEHOUSE_GATEWAY_WS_DRAIN_TIMEOUT": "2"},
    )
    async with ws_connect(gateway.url, host=HOST) as socket:
        await greeting(socket)
        gateway.signal(signal.SIGTERM)
        started = time.monotonic()
        await asyncio.sleep(0.5)
        await socket.send("after SIGTERM")
        assert await recv(socket) == "after SIGTERM"
        assert await closed(socket, timeout=10) == (1001, "server shutting down")
        assert 1.5 < time.monotonic() - started < 6
    assert gateway.process is not None
    # uvicorn re-raises the signal it stopped on once it is done: -SIGTERM is a clean exit
    assert await asyncio.to_thread(gateway.process.wait, 15) in (0, -signal.SIGTERM)
    assert "graceful shutdown exceeded" not in gateway.log_text()
    assert "Exception in ASGI application" not in gateway.log_text()


@pytest.mark.slow
async def test_500_concurrent_sockets_are_held_and_counted(launcher: Launcher) -> None:
    backend = launcher.backends(1, prefix="many")[0]
    gateway = launcher.gateway({"routes": [gateway_route([backend])]})
    count = 500

    async def one(index: int) -> None:
        async with ws_connect(gateway.url, host=HOST, open_timeout=30) as socket:
            await greeting(socket)
            opened.append(index)
            await all_open.wait()
            await socket.send(f"socket {index}")
            assert await recv(socket, timeout=30) == f"socket {index}"
            await done.wait()

    opened: list[int] = []
    all_open = asyncio.Event()
    done = asyncio.Event()
    tasks = [asyncio.create_task(one(i)) for i in range(count)]
    async with asyncio.timeout(60):
        while len(opened) < count:
            if any(t.done() and t.exception() for t in tasks):
                break
            await asyncio.sleep(0.05)
        all_open.set()
        active = metric_value(gateway.metrics(), "gateway_websocket_active", route="app")
        done.set()
        await asyncio.gather(*tasks)
    assert len(opened) == count
    assert active == count
    echoed = metric_value(
        gateway.metrics(), "gateway_websocket_messages_total", route="app", direction="upstream"
    )
    assert echoed == count
