"""The fake backend over real HTTP, each instance a process on a free port."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from support.backends import fake_backend
from support.processes import ServiceProcess, free_port, python_module

from gatehouse_fake_backend.app import pattern_bytes

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@pytest.fixture(scope="module")
def shared_backend() -> Iterator[ServiceProcess]:
    """One echo backend for the module's tests: each start is most of a test's time."""
    with fake_backend("echo-one") as process:
        yield process


@pytest.fixture
def backend(shared_backend: ServiceProcess) -> Iterator[ServiceProcess]:
    """The module's backend, its faults back at the defaults after each test."""
    yield shared_backend
    httpx.post(f"{shared_backend.url}/__backend/reset", timeout=10).raise_for_status()


@pytest.mark.parametrize("method", METHODS)
def test_every_method_is_echoed(backend: ServiceProcess, method: str) -> None:
    body = b"payload-\x00\xff" * 10 if method not in ("GET", "OPTIONS") else b""
    response = httpx.request(
        method,
        f"{backend.url}/some/deep/path",
        params={"q": "1", "b": "two words"},
        content=body,
        headers={"X-Custom": "yes"},
    )
    assert response.status_code == 200
    echo = response.json()
    assert echo["instance"] == "echo-one"
    assert echo["method"] == method
    assert echo["path"] == "/some/deep/path"
    assert echo["query"] == "q=1&b=two+words"
    assert echo["headers"]["x-custom"] == "yes"
    assert echo["body"] == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    assert response.headers["x-backend-instance"] == "echo-one"


def test_head_answers_without_body(backend: ServiceProcess) -> None:
    response = httpx.head(f"{backend.url}/x")
    assert response.status_code == 200
    assert response.content == b""


def test_request_id_is_kept_or_made(backend: ServiceProcess) -> None:
    kept = httpx.get(f"{backend.url}/a", headers={"X-Request-ID": "abc-123"})
    assert kept.headers["x-request-id"] == "abc-123"
    made = httpx.get(f"{backend.url}/a")
    assert len(made.headers["x-request-id"]) == 32
    hostile = httpx.get(f"{backend.url}/a", headers={"X-Request-ID": "bad id\twith spaces"})
    assert hostile.headers["x-request-id"] != "bad id\twith spaces"


def test_logs_are_json_lines_with_request_ids(backend: ServiceProcess) -> None:
    httpx.get(f"{backend.url}/logged", headers={"X-Request-ID": "trace-me-42"})
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "trace-me-42" not in backend.log_text():
        time.sleep(0.05)
    lines = [line for line in backend.log_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    access = [r for r in records if r.get("request_id") == "trace-me-42"]
    assert access, "no log line carries the request id"
    assert access[0]["service"] == "fake-backend"
    assert access[0]["path"] == "/logged"
    assert access[0]["status"] == 200
    assert {"time", "level", "message"} <= access[0].keys()


def test_latency_injection_by_flag(start_fake_backend) -> None:
    slow = start_fake_backend("--latency-ms", "300")
    started = time.monotonic()
    assert httpx.get(f"{slow.url}/x").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_error_injection_by_flag(start_fake_backend) -> None:
    failing = start_fake_backend("--error-rate", "1", "--error-status", "502")
    response = httpx.get(f"{failing.url}/x")
    assert response.status_code == 502
    assert response.json()["error"] == "injected_error"


def test_faults_change_at_run_time(backend: ServiceProcess) -> None:
    admin = f"{backend.url}/__backend/faults"
    assert httpx.put(admin, json={"error_rate": 1.0, "error_status": 500}).status_code == 200
    assert httpx.get(f"{backend.url}/x").status_code == 500
    assert httpx.put(admin, json={"error_rate": 0.0, "latency_ms": 200}).status_code == 200
    started = time.monotonic()
    assert httpx.get(f"{backend.url}/x").status_code == 200
    assert time.monotonic() - started >= 0.2
    assert httpx.post(f"{backend.url}/__backend/reset").json()["latency_ms"] == 0


ADMIN_CALLS = [
    ("GET", "/__backend/faults", None),
    ("PUT", "/__backend/faults", {"healthy": False, "error_rate": 1}),
    ("POST", "/__backend/reset", None),
    ("GET", "/__backend/bytes/1000", None),
    ("DELETE", "/__backend", None),
    ("PATCH", "/__backend/anything/else", {}),
]


def test_fault_endpoints_are_off_by_default(start_fake_backend) -> None:
    # Behind a gateway every caller of a route reaches these paths: switched
    # off, a caller can neither fail the health check nor every request.
    backend = start_fake_backend(faults=False)
    for method, path, body in ADMIN_CALLS:
        response = httpx.request(method, backend.url + path, json=body)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"] == "not_found"
    assert httpx.head(f"{backend.url}/__backend/faults").status_code == 404
    assert httpx.get(f"{backend.url}/healthz").status_code == 200
    assert httpx.get(f"{backend.url}/x").status_code == 200
    assert httpx.get(f"{backend.url}/__backendish").json()["path"] == "/__backendish"


def test_fault_endpoints_on_by_environment() -> None:
    port = free_port()
    with ServiceProcess(
        name="fake-backend-faults-env",
        command=python_module("gatehouse_fake_backend", "--port", str(port)),
        port=port,
        env={"GATEHOUSE_FAKE_BACKEND_FAULTS": "true"},
    ) as backend:
        change = httpx.put(f"{backend.url}/__backend/faults", json={"error_rate": 1})
        assert change.status_code == 200
        assert httpx.get(f"{backend.url}/x").status_code == 503


def test_partial_error_rate_fails_some(backend: ServiceProcess) -> None:
    httpx.put(f"{backend.url}/__backend/faults", json={"error_rate": 0.5})
    with httpx.Client() as client:
        codes = [client.get(f"{backend.url}/x").status_code for _ in range(200)]
    assert 40 < codes.count(503) < 160


@pytest.mark.parametrize(
    "change",
    [
        {"error_rate": 2},
        {"error_rate": -0.1},
        {"latency_ms": "soon"},
        {"error_status": 200},
        {"unknown": 1},
        [],
    ],
)
def test_bad_fault_changes_are_refused(backend: ServiceProcess, change: object) -> None:
    response = httpx.put(f"{backend.url}/__backend/faults", json=change)
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"
    assert httpx.get(f"{backend.url}/__backend/faults").json()["error_rate"] == 0


def test_health_check_can_be_switched_to_failing(backend: ServiceProcess) -> None:
    assert httpx.get(f"{backend.url}/healthz").status_code == 200
    httpx.put(f"{backend.url}/__backend/faults", json={"healthy": False})
    assert httpx.get(f"{backend.url}/healthz").status_code == 503
    assert httpx.get(f"{backend.url}/x").status_code == 200  # only the health check fails
    httpx.put(f"{backend.url}/__backend/faults", json={"healthy": True})
    assert httpx.get(f"{backend.url}/healthz").status_code == 200


def test_unhealthy_flag(start_fake_backend) -> None:
    sick = start_fake_backend("--unhealthy")
    assert httpx.get(f"{sick.url}/healthz").status_code == 503


def test_metrics_count_requests(start_fake_backend) -> None:
    backend = start_fake_backend(name="echo-one")  # its own: the count starts at zero
    for _ in range(3):
        httpx.get(f"{backend.url}/counted")
    text = httpx.get(f"{backend.url}/metrics").text
    assert 'fake_backend_requests_total{instance="echo-one",outcome="ok"} 3.0' in text
    assert "http_request_duration_seconds_bucket" in text
    assert 'le="0.0005"' in text  # sub-millisecond resolution


def test_download_streams_exact_bytes(backend: ServiceProcess) -> None:
    size = 1_000_003
    response = httpx.get(f"{backend.url}/__backend/bytes/{size}")
    assert response.status_code == 200
    assert response.content == pattern_bytes(size)
    assert httpx.get(f"{backend.url}/__backend/bytes/-1").status_code == 422
    assert httpx.get(f"{backend.url}/__backend/bytes/{(1 << 30) + 1}").status_code == 422


def test_ports_range_starts_one_instance_per_port() -> None:
    ports = [free_port(), free_port()]
    group = ServiceProcess(
        name="fake-backend-group",
        command=python_module(
            "gatehouse_fake_backend", "--ports", ",".join(map(str, ports)), "--faults"
        ),
        port=ports[0],
    )
    with group:
        for port in ports[1:]:
            ServiceProcess("peer", [], port).wait_ready()
        names = {httpx.get(f"http://127.0.0.1:{p}/x").json()["instance"] for p in ports}
        assert names == {f"backend-{p}" for p in ports}
        for port in ports:  # every instance got --faults
            assert httpx.get(f"http://127.0.0.1:{port}/__backend/faults").status_code == 200
        group.signal(signal.SIGINT)
        assert group.process is not None
        assert group.process.wait(timeout=15) == 0
    for port in ports:
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/x", timeout=1)


def test_sigterm_finishes_in_flight_requests(start_fake_backend) -> None:
    backend = start_fake_backend("--latency-ms", "1500")
    results: list[int] = []

    def slow_call() -> None:
        results.append(httpx.get(f"{backend.url}/slow", timeout=10).status_code)

    caller = threading.Thread(target=slow_call)
    caller.start()
    time.sleep(0.5)
    backend.signal(signal.SIGTERM)
    time.sleep(0.3)
    with pytest.raises(httpx.ConnectError):  # no longer accepting
        httpx.get(f"{backend.url}/new", timeout=1)
    caller.join(timeout=10)
    assert results == [200]
    assert backend.process is not None
    # uvicorn re-raises SIGTERM once it has shut down cleanly
    assert backend.process.wait(timeout=10) in (0, -signal.SIGTERM)


def test_bad_ports_spec_is_refused() -> None:
    result = subprocess.run(
        python_module("gatehouse_fake_backend", "--ports", "9004-9001"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "bad port range" in result.stderr


def test_server_sent_events_arrive_one_at_a_time(backend: ServiceProcess) -> None:
    url = f"{backend.url}/__backend/sse?events=3&interval_ms=10"
    with httpx.stream("GET", url, timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        data = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert data == ["data: event 1", "data: event 2", "data: event 3"]
    assert httpx.get(f"{backend.url}/__backend/sse?events=0").status_code == 422
