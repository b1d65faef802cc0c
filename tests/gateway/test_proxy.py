"""Proxying end to end: methods, paths, headers, request ids, limits, own endpoints."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest
from support.gateway import (
    HOST,
    GatewayProcess,
    Launcher,
    RawBackend,
    gateway_route,
    metric_value,
)
from support.processes import ServiceProcess


@pytest.fixture(scope="module")
def gateway(module_launcher: Launcher, backend_pool: list[ServiceProcess]) -> GatewayProcess:
    backend = backend_pool[0]
    limited = gateway_route(
        [backend],
        name="limited",
        hosts=["limited.gatehouse.test"],
        limits={"max_header_bytes": 2048, "max_body_bytes": 1000},
    )
    return module_launcher.gateway(
        {"public_metrics": True, "routes": [gateway_route([backend]), limited]}
    )


def _echo(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def test_every_method_path_and_query_pass_through(gateway: GatewayProcess) -> None:
    with gateway.client() as client:
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]:
            content = b"payload" if method in ("POST", "PUT", "PATCH") else None
            echo = _echo(client.request(method, "/a/b%20c/d?x=1&y=%2F", content=content))
            assert echo["method"] == method
            assert echo["path"] == "/a/b c/d"
            assert echo["query"] == "x=1&y=%2F"
            if content:
                assert echo["body"]["size"] == len(content)
        head = client.head("/a")
        assert head.status_code == 200 and head.content == b""


def test_forwarded_headers_request_id_and_hop_by_hop(gateway: GatewayProcess) -> None:
    with gateway.client() as client:
        response = client.get(
            "/h",
            headers={
                "X-Request-ID": "client-id-123",
                "X-Forwarded-For": "203.0.113.9",
                "X-Auth-Subject": "forged",
                "X-Auth-Roles": "admin",
                "X-Auth-Email": "forged@example.com",
                "Connection": "keep-alive, X-Secret-Hop",
                "X-Secret-Hop": "must not pass",
                "Keep-Alive": "timeout=5",
                "Proxy-Authorization": "Basic abc",
                "X-Custom": "kept",
            },
        )
        headers = _echo(response)["headers"]
        assert response.headers["x-request-id"] == "client-id-123"
        assert headers["x-request-id"] == "client-id-123"
        # the client is no proxy the gateway trusts: its claim is replaced
        assert headers["x-forwarded-for"] == "127.0.0.1"
        assert headers["x-forwarded-proto"] == "http"
        assert headers["x-forwarded-host"] == HOST
        assert headers["x-custom"] == "kept"
        for name in [
            "x-auth-subject",
            "x-auth-roles",
            "x-auth-email",
            "x-secret-hop",
            "keep-alive",
            "proxy-authorization",
        ]:
            assert name not in headers, name
        made = client.get("/h", headers={"X-Request-ID": "bad id <script>"})
        new_id = made.headers["x-request-id"]
        assert new_id != "bad id <script>" and len(new_id) == 32
        assert _echo(made)["headers"]["x-request-id"] == new_id


def test_unknown_host_is_404_json_and_metrics_answer_for_unclaimed_paths(
    gateway: GatewayProcess,
) -> None:
    response = httpx.get(gateway.url + "/anything", headers={"Host": "nobody.test"})
    assert response.status_code == 404
    assert response.json()["error"] == "no_route"
    assert "x-request-id" in response.headers
    unmatched = metric_value(gateway.metrics(), "http_requests_total", handler="none", status="404")
    assert unmatched >= 1
    metrics = httpx.get(gateway.url + "/metrics", headers={"Host": "nobody.test"})
    assert metrics.status_code == 200 and "http_requests_total" in metrics.text
    # On a host a route claims, /metrics is the backend's path, not the gateway's.
    proxied = httpx.get(gateway.url + "/metrics", headers={"Host": HOST})
    assert "fake_backend_requests_total" in proxied.text


def test_own_endpoints_on_the_admin_listener_only(gateway: GatewayProcess) -> None:
    assert httpx.get(gateway.admin_url + "/-/healthz").json() == {"status": "ok"}
    assert httpx.get(gateway.admin_url + "/-/readyz").status_code == 200
    config = httpx.get(gateway.admin_url + "/-/config").json()
    assert [r["name"] for r in config["routes"]] == ["app", "limited"]
    backend = config["routes"][0]["backends"][0]
    for field in ["available", "in_flight", "recent_error_rate", "ejected", "weight"]:
        assert field in backend
    assert config["cursor"]["state"] == "local"
    missing = httpx.get(gateway.admin_url + "/-/nope")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    # on the public listener /-/ is a path like any other: proxied or no route
    for path in ["/-/healthz", "/-/config", "/-/docs", "/-/openapi.json", "/-/admin/state"]:
        public = httpx.get(gateway.url + path, headers={"Host": "nobody.test"})
        assert public.status_code == 404 and public.json()["error"] == "no_route", path
        proxied = httpx.get(gateway.url + path, headers={"Host": HOST})
        assert proxied.json()["path"] == path, path


def test_http_metrics_label_routes_not_paths(gateway: GatewayProcess) -> None:
    with gateway.client() as client:
        for i in range(3):
            client.get(f"/unique/{i}")
    text = gateway.metrics()
    assert metric_value(text, "http_requests_total", handler="app", method="GET", status="200") >= 3
    assert "/unique/" not in text
    assert metric_value(text, "gateway_backend_up", route="app") == 1


def test_header_and_body_limits(gateway: GatewayProcess) -> None:
    url = gateway.url
    limited = {"Host": "limited.gatehouse.test"}
    too_big = httpx.get(url + "/", headers={**limited, "X-Big": "x" * 4000})
    assert too_big.status_code == 431 and too_big.json()["error"] == "headers_too_large"
    declared = httpx.post(url + "/", headers=limited, content=b"x" * 1001)
    assert declared.status_code == 413 and declared.json()["error"] == "body_too_large"

    def chunks() -> Any:
        for _ in range(10):
            yield b"y" * 500

    streamed = httpx.post(url + "/", headers=limited, content=chunks())
    assert streamed.status_code == 413
    fine = httpx.post(url + "/", headers=limited, content=b"z" * 1000)
    assert fine.status_code == 200 and fine.json()["body"]["size"] == 1000
    bad_length = _raw(
        gateway,
        b"POST / HTTP/1.1\r\nHost: limited.gatehouse.test\r\n"
        b"Content-Length: 1\r\nContent-Length: 5\r\n\r\nx",
    )
    assert bad_length.startswith(b"HTTP/1.1 400")


def _raw(gateway: GatewayProcess, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):  # these requests end with the server closing
            received += chunk
        return received


def test_chunked_response_without_length_streams_through(launcher: Launcher) -> None:
    chunked = (
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nX-Kept: yes\r\n"
        b"Connection: close\r\n\r\n5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n"
    )
    raw = RawBackend(chunked)
    try:
        gateway = launcher.gateway({"routes": [gateway_route([raw.url])]})
        with gateway.client() as client:
            response = client.get("/")
        assert response.status_code == 201
        assert response.content == b"hello, world"
        assert response.headers["x-kept"] == "yes"
        assert response.headers.get("connection") != "close"  # hop-by-hop: not passed on
    finally:
        raw.close()


def test_hostile_requests_get_clean_answers_and_bounded_labels(gateway: GatewayProcess) -> None:
    no_host = _raw(gateway, b"GET /x HTTP/1.0\r\n\r\n")
    assert no_host.startswith(b"HTTP/1.1 404") and b'"no_route"' in no_host
    not_a_token = _raw(gateway, b"BR(W /odd HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n\r\n")
    assert not_a_token.startswith(b"HTTP/1.1 400")  # the parser refuses it
    with gateway.client() as client:
        for method in ["PURGE", "PROPFIND", "MKCOL"]:
            response = client.request(method, "/odd")
            assert response.status_code == 405  # the backend's answer, passed through
        # any RFC 9110 token is a method: passed on (the backend refuses it here)
        assert client.request("BREW", "/odd").status_code == 405
        traversal = client.get("/a/%2e%2e/%2e%2e/etc/passwd?x=" + "q" * 4000)
        assert traversal.status_code == 200
        # normalised once at the gateway: the dots cannot climb above the root, and
        # the backend is asked exactly what the gateway routed
        assert traversal.json()["path"] == "/etc/passwd"
        many = {f"X-H-{i}": "v" for i in range(90)}
        assert client.get("/", headers=many).status_code == 200
        too_many = {f"X-H-{i}": "v" for i in range(200)}
        refused = client.get("/", headers=too_many)
        assert refused.status_code == 431 and refused.json()["error"] == "too_many_headers"
    text = gateway.metrics()
    assert metric_value(text, "http_requests_total", handler="app", method="other") >= 3
    assert "PURGE" not in text and "PROPFIND" not in text and "BREW" not in text
