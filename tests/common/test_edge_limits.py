"""The edge limits in real service processes, as ``serve()`` starts every service.

The fake backend stands for every service (they all run through
``gatehouse_common.server.serve``); common/edge_app.py is a tiny service of the
tests' own for what the fake backend has no endpoint for (an early 413, the
listening port). Limits are set through each service's environment, as an
operator would.
"""

from __future__ import annotations

import os
import select
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import httpx
import psutil
import pytest
from common.edge_servers import closed_by_server, read_answer
from support.processes import REPO_ROOT, ServiceProcess, free_port, python_module

pytestmark = pytest.mark.slow

BOMB_BYTES = 50 * 1024 * 1024


def _fake_backend(**env: str) -> ServiceProcess:
    port = free_port()
    return ServiceProcess(
        name=f"fake-backend-edge-{port}",
        command=python_module("gatehouse_fake_backend", "--port", str(port)),
        port=port,
        ready_path="/__backend/faults",
        env={f"GATEHOUSE_FAKE_BACKEND_{name.upper()}": value for name, value in env.items()},
    )


def _edge_app(**env: str) -> ServiceProcess:
    port = free_port()
    pythonpath = os.pathsep.join(
        filter(None, [str(REPO_ROOT / "tests"), os.environ.get("PYTHONPATH")])
    )
    return ServiceProcess(
        name=f"edge-app-{port}",
        command=python_module("common.edge_app"),
        port=port,
        env={
            "PYTHONPATH": pythonpath,
            "GATEHOUSE_EDGE_APP_PORT": str(port),
            **{f"GATEHOUSE_EDGE_APP_{name.upper()}": value for name, value in env.items()},
        },
    )


@pytest.fixture
def backend() -> Iterator[ServiceProcess]:
    with _fake_backend() as process:
        yield process


def _bomb(port: int) -> tuple[int, int]:
    """One connection streaming a header line up to BOMB_BYTES long; returns the
    status the server answered while it was sent and the bytes sent by then."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(b"GET /anything HTTP/1.1\r\nHost: unmatched.example\r\nX-Bomb: ")
        chunk, sent = b"a" * 65536, 0
        while sent < BOMB_BYTES:
            if select.select([conn], [], [], 0)[0]:
                break
            try:
                conn.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        if sent >= BOMB_BYTES:
            return 0, sent
        answer = read_answer(conn)
        assert answer.json()["error"] == "headers_too_large"
        assert closed_by_server(conn)
        return answer.status, sent


def test_a_header_bomb_is_cut_off_while_others_are_served(backend: ServiceProcess) -> None:
    """A 50 MB header line once cost a worker its CPU and memory for seconds."""
    server = psutil.Process(backend.pid)
    rss_before = server.memory_info().rss
    outcomes: list[tuple[int, int]] = []
    started, done = threading.Event(), threading.Event()

    def bombard() -> None:
        for _ in range(20):  # bombs one after the other until the normal request is answered
            started.set()
            outcomes.append(_bomb(backend.port))
            if done.is_set():
                return

    bomber = threading.Thread(target=bombard, daemon=True)
    bomber.start()
    assert started.wait(10)
    try:
        response = httpx.get(f"{backend.url}/ok", timeout=60)
    finally:
        done.set()
        bomber.join(timeout=120)
    assert response.status_code == 200
    assert outcomes and all(status == 431 for status, _ in outcomes), outcomes
    assert all(sent < BOMB_BYTES for _, sent in outcomes)
    assert server.memory_info().rss - rss_before < 30 * 1024 * 1024


def test_slow_heads_get_408_and_connections_over_the_cap_are_refused_and_counted() -> None:
    with _fake_backend(header_timeout="1", max_connections="20") as backend:
        address = ("127.0.0.1", backend.port)
        slow = [socket.create_connection(address, timeout=10) for _ in range(20)]
        try:
            for conn in slow:  # a slowloris: heads that never end
                conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Partial: 1")
            with socket.create_connection(address, timeout=10) as extra:
                extra.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert closed_by_server(extra)
                extra.settimeout(0)
            for conn in slow:
                answer = read_answer(conn)
                assert (answer.status, answer.json()["error"]) == (408, "request_timeout")
                assert closed_by_server(conn)
        finally:
            for conn in slow:
                conn.close()
        metrics = httpx.get(f"{backend.url}/metrics", timeout=10).text
    assert "gatehouse_connections_refused_total 1.0" in metrics


def test_a_stalled_upload_is_answered_408_and_closed() -> None:
    # a head timer far off: the body's idle time is checked on its own clock
    with _fake_backend(body_idle_timeout="1", header_timeout="60") as backend:
        with socket.create_connection(("127.0.0.1", backend.port), timeout=10) as conn:
            conn.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nten bytes!")
            answer = read_answer(conn)  # and then nothing more is sent
            assert (answer.status, answer.json()["error"]) == (408, "body_timeout")
            assert answer.headers["connection"] == "close"
            assert closed_by_server(conn)
        assert httpx.get(f"{backend.url}/after", timeout=10).status_code == 200


def test_urllib_reads_an_early_413_while_its_20_mb_body_is_still_going() -> None:
    """urllib sends Connection: close and the whole body before it reads: closing at
    once with the body unread reset the connection (Broken pipe, Connection reset)
    and the 413 was lost. The linger bound is raised for a 20 MB body: the 1 MiB
    default lets a client finish about that much beyond what socket buffers hold."""
    with _edge_app(linger_bytes=str(64 * 1024 * 1024), linger_timeout="30") as service:
        request = urllib.request.Request(
            f"{service.url}/upload?close=1", data=b"x" * 20_000_000, method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=60)
    assert refused.value.code == 413
    assert refused.value.read() == b'{"error":"payload_too_large","detail":"too large"}'


@pytest.mark.parametrize("workers", ["1", "2"])
def test_an_extra_listener_serves_the_same_app_in_every_worker(workers: str) -> None:
    """Spawned workers get the listeners and the limits (carried by the uvicorn config)."""
    extra = free_port()
    with _edge_app(extra_port=str(extra), workers=workers, max_request_line_bytes="256") as service:
        main_port = httpx.get(f"{service.url}/port", timeout=10).json()["port"]
        extra_port = httpx.get(f"http://127.0.0.1:{extra}/port", timeout=10).json()["port"]
        long_urls = [
            httpx.get(f"{base}/{'a' * 300}", timeout=10)
            for base in (service.url, f"http://127.0.0.1:{extra}")
        ]
        metrics = httpx.get(f"{service.url}/metrics", timeout=10).text
    assert (main_port, extra_port) == (service.port, extra)
    assert [response.status_code for response in long_urls] == [414, 414]
    # the counter is in every service's registry, aggregated across workers too
    assert "gatehouse_connections_refused_total" in metrics
