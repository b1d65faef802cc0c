"""The gateway's ``listeners:`` section and ``--tls-port``: TLS, HTTP/2, redirect, HSTS.

A real gateway process in front of a fake backend: the backend's echo shows
what the gateway forwarded (``X-Forwarded-Proto: https`` for a TLS client),
and the main port and admin listener keep working as before.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.gateway import (
    HOST,
    GatewayProcess,
    Launcher,
    gateway_route,
    metric_value,
    write_yaml,
)
from support.processes import REPO_ROOT, ServiceProcess, free_port, gateway_command

from gatehouse_common.devcerts import ensure_local_tls

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return ensure_local_tls(tmp_path_factory.mktemp("tls"), ["localhost", HOST, "127.0.0.1"])


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    return {"tls": free_port(), "redirect": free_port(), "h2c": free_port()}


@pytest.fixture(scope="module")
def gateway(
    module_launcher: Launcher,
    backend_pool: list[ServiceProcess],
    tls_files: Any,
    ports: dict[str, int],
) -> GatewayProcess:
    config_dir = module_launcher.directory
    certificate = {  # relative to the config file's folder
        "cert_file": os.path.relpath(tls_files.cert_file, config_dir),
        "key_file": os.path.relpath(tls_files.key_file, config_dir),
    }
    listeners = [
        {
            "port": ports["tls"],
            "tls": {"certificates": [certificate]},
            "hsts": {"max_age": 86400, "include_subdomains": True},
        },
        {"port": ports["redirect"], "redirect_to_https": ports["tls"]},
        {"port": ports["h2c"], "h2c": True},
    ]
    return module_launcher.gateway(
        {
            "listen": {"h2c": True},  # the main port: HTTP/1.1 and h2 with prior knowledge
            "listeners": listeners,
            "routes": [gateway_route([backend_pool[0]])],
        }
    )


def _client(tls_files: Any, **kwargs: Any) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(tls_files.ca.cert_file))
    return httpx.Client(verify=context, headers={"Host": HOST}, timeout=30, **kwargs)


def test_tls_listener_proxies_over_h2_and_http1_with_forwarded_proto_https(
    gateway: GatewayProcess, tls_files: Any, ports: dict[str, int]
) -> None:
    for http2, version in ((True, "HTTP/2"), (False, "HTTP/1.1")):
        with _client(tls_files, http2=http2) as client:
            response = client.post(f"https://localhost:{ports['tls']}/x?y=1", content=b"body")
        assert response.status_code == 200, response.text
        assert response.http_version == version
        echo = response.json()
        assert echo["headers"]["x-forwarded-proto"] == "https"
        assert echo["headers"]["host"] != ""
        assert echo["body"]["size"] == 4
        assert response.headers["strict-transport-security"] == "max-age=86400; includeSubDomains"


def test_http2_requests_are_counted_and_limited_like_http1(
    gateway: GatewayProcess, tls_files: Any, ports: dict[str, int]
) -> None:
    before = metric_value(gateway.metrics(), "http_requests_total", handler="app", method="PUT")
    with _client(tls_files, http2=True) as client:
        base = f"https://localhost:{ports['tls']}"
        for _ in range(3):
            assert client.put(base + "/counted", content=b"x").status_code == 200
        escaped = client.get(base + "/a%2Fb")
    after = metric_value(gateway.metrics(), "http_requests_total", handler="app", method="PUT")
    assert after - before == 3
    assert escaped.status_code == 400 and escaped.json()["error"] == "bad_path"


def test_main_port_and_admin_listener_are_unchanged(gateway: GatewayProcess) -> None:
    with gateway.client() as client:
        response = client.get("/x")
    assert response.http_version == "HTTP/1.1"
    assert response.json()["headers"]["x-forwarded-proto"] == "http"
    with gateway.client(http1=False, http2=True) as client:  # listen.h2c: prior knowledge too
        assert client.get("/x").http_version == "HTTP/2"
    assert "strict-transport-security" not in response.headers
    assert httpx.get(gateway.admin_url + "/-/healthz").status_code == 200


def test_h2c_listener_routes_like_http1(gateway: GatewayProcess, ports: dict[str, int]) -> None:
    with httpx.Client(http1=False, http2=True, headers={"Host": HOST}) as client:
        response = client.get(f"http://127.0.0.1:{ports['h2c']}/x")
        unknown = client.get(f"http://127.0.0.1:{ports['h2c']}/x", headers={"Host": "nope.test"})
        # a body of no declared length: HTTP/2 ends it with END_STREAM, the backend gets chunked
        streamed = client.post(f"http://127.0.0.1:{ports['h2c']}/x", content=iter([b"ab", b"cd"]))
    assert response.http_version == "HTTP/2"
    assert response.json()["headers"]["x-forwarded-proto"] == "http"
    assert unknown.status_code == 404 and unknown.json()["error"]
    assert streamed.json()["body"]["size"] == 4


def test_redirect_listener_sends_308_to_https(
    gateway: GatewayProcess, ports: dict[str, int]
) -> None:
    response = httpx.get(f"http://127.0.0.1:{ports['redirect']}/p/q?r=1", headers={"Host": HOST})
    assert response.status_code == 308
    assert response.headers["location"] == f"https://{HOST}:{ports['tls']}/p/q?r=1"


def test_tls_flags_add_a_listener(
    launcher: Launcher, backend_pool: list[ServiceProcess], tls_files: Any, tmp_path: Path
) -> None:
    config = tmp_path / "gateway.yaml"
    write_yaml(config, {"routes": [gateway_route([backend_pool[0]])]})
    port, admin, tls_port = free_port(), free_port(), free_port()
    command = [
        *gateway_command(config, port, admin),
        "--tls-port",
        str(tls_port),
        "--tls-cert",
        str(tls_files.cert_file),
        "--tls-key",
        str(tls_files.key_file),
    ]
    process = ServiceProcess(
        "gateway-tls-flags", command, port, ready_path="/-/healthz", admin_port=admin
    )
    launcher.started.append(process)
    process.start()
    with _client(tls_files, http2=True) as client:
        response = client.get(f"https://localhost:{tls_port}/x")
    assert response.http_version == "HTTP/2"
    assert response.json()["headers"]["x-forwarded-proto"] == "https"


@pytest.mark.parametrize(
    ("listener", "message"),
    [
        ({"port": 1, "hsts": {"max_age": 1}}, "hsts needs tls"),
        (
            {
                "port": 1,
                "h2c": True,
                "tls": {"certificates": [{"cert_file": "a", "key_file": "b"}]},
            },
            "for plain",
        ),
        ({"port": 1, "tls": {"certificates": []}}, "certificates"),
        ({"port": 9901}, "repeated: [9901]"),
        ({"port": 1, "tls": {"certificates": [{"cert_file": "a"}]}}, "key_file"),
    ],
)
def test_bad_listener_configs_are_refused_with_the_key(
    tmp_path: Path, listener: dict[str, Any], message: str
) -> None:
    config = tmp_path / "bad.yaml"
    write_yaml(config, {"listeners": [listener], "routes": [gateway_route(["http://127.0.0.1:1"])]})
    result = subprocess.run(
        [sys.executable, "-m", "gatehouse_gateway", "--config", str(config), "--check"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert result.returncode == 2
    assert "listeners" in result.stderr and message in result.stderr


def test_a_missing_certificate_file_stops_the_start(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    missing = {"cert_file": "nope.pem", "key_file": "nope-key.pem"}
    write_yaml(
        config,
        {
            "listeners": [{"port": free_port(), "tls": {"certificates": [missing]}}],
            "routes": [gateway_route(["http://127.0.0.1:1"])],
        },
    )
    result = subprocess.run(
        gateway_command(config, free_port(), free_port()),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert result.returncode == 3
    assert "nope.pem" in result.stderr
