"""Config loading: readable errors with key paths, and the original app's format."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from support.gateway import HOST, Launcher, gateway_route, write_yaml
from support.processes import ServiceProcess, free_port, python_module

from gatehouse_gateway.config.loader import ConfigError, load_config, parse_config

DEMO = Path(__file__).resolve().parents[2] / "services" / "gateway" / "config" / "demo.yaml"

ORIGINAL = """
proxy:
  listen: {address: "0.0.0.0", port: 8080}
  auth: True
  services:
    - name: service1
      domain: service1.my-company.com
      loadbalancing: "roundrobin"
      hosts: [{address: backend1, port: 9090}, {address: backend2, port: 9090}]
    - name: service2
      domain: service2.my-company.com
      loadbalancing: "random"
      hosts: [{address: backend3, port: 9091}]
"""


@pytest.mark.unit
def test_demo_config_loads() -> None:
    loaded = load_config(DEMO)
    names = [route.name for route in loaded.config.routes]
    assert names == ["service1", "service2", "auth", "accounts-ui"]
    assert loaded.config.auth.jwks_url == "http://127.0.0.1:8001/.well-known/jwks.json"


@pytest.mark.unit
def test_original_format_maps_onto_routes(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    path.write_text(ORIGINAL)
    loaded = load_config(path, auth_url="http://auth:1", accounts_ui_url="http://ui:2")
    config = loaded.config
    assert loaded.original_format
    assert (config.listen.address, config.listen.port) == ("0.0.0.0", 8080)
    service1, service2, auth, accounts = config.routes
    assert service1.hosts == ["service1.my-company.com"]
    assert service1.strategy == "round_robin" and service2.strategy == "random"
    assert [b.url for b in service1.backends] == ["http://backend1:9090", "http://backend2:9090"]
    assert service1.auth == "required"
    assert auth.path_prefix == [
        "/account",
        "/login",
        "/logout",
        "/token/",
        "/password/",
        "/.well-known/",
    ]
    assert auth.backends[0].url == "http://auth:1" and auth.auth == "none"
    assert accounts.path_prefix == ["/accounts_page"]
    assert accounts.backends[0].url == "http://ui:2"
    assert config.auth.jwks_url == "http://auth:1/.well-known/jwks.json"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            {"routes": [{"name": "a", "backends": [{"url": "ftp://x"}]}]},
            "routes[0].backends[0].url: Value error, must be an http:// or https:// URL",
        ),
        (
            {"routes": [{"name": "a", "backends": [{"url": "http://x"}], "strategy": "fastest"}]},
            "routes[0].strategy: Input should be",
        ),
        (
            {"routes": [{"name": "a", "backends": [{"url": "http://x"}], "path_prefx": "/"}]},
            "routes[0].path_prefx: Extra inputs are not permitted",
        ),
        (
            {"routes": [{"name": "a", "backends": []}]},
            "routes[0].backends: List should have at least 1 item",
        ),
        (
            {"routes": [{"name": "a", "backends": [{"url": "http://x"}], "path_prefix": "/-/x"}]},
            "reserved for the gateway",
        ),
        (
            {"routes": [{"name": "a", "auth": "required", "backends": [{"url": "http://x"}]}]},
            "auth.jwks_url is required",
        ),
        (
            {"auth": {"jwks_url": "http://k", "algorithms": ["HS256"]}, "routes": []},
            "auth.algorithms: Value error, not allowed: ['HS256']",
        ),
        ({"proxy": {"services": [{"name": "s", "hosts": "nope"}]}}, "routes[0].backends"),
        (
            {"routes": [{"name": "a", "backends": [{"url": "http://x"}, {"url": "http://x/"}]}]},
            "routes[0].backends: Value error, listed more than once: ['http://x']",
        ),
        (
            {
                "routes": [
                    {"name": "a", "hosts": ["h.test"], "backends": [{"url": "http://x"}]},
                    {"name": "b", "hosts": ["h.test"], "backends": [{"url": "http://y"}]},
                ]
            },
            "routes 'a' and 'b' both claim h.test /",
        ),
        ("just a string", "the top level must be a mapping"),
    ],
)
def test_bad_config_names_key_and_reason(document: object, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(document, source="test.yaml")
    assert expected in str(error.value)
    assert str(error.value).startswith("test.yaml")


@pytest.mark.unit
def test_unreadable_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("routes: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_cli_refuses_bad_config_with_readable_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"routes": [{"name": "a", "backends": [{"url": "x"}]}]}))
    result = subprocess.run(
        [sys.executable, "-m", "gatehouse_gateway", "--config", str(path), "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "routes[0].backends[0].url" in result.stderr
    assert "Traceback" not in result.stderr


def test_original_format_config_routes_end_to_end(
    launcher: Launcher, backends: list[ServiceProcess]
) -> None:
    service, auth, accounts = backends[:3]
    original = {
        "proxy": {
            "listen": {"address": "127.0.0.1", "port": 1},  # --port overrides it
            "auth": False,
            "services": [
                {
                    "name": "service1",
                    "domain": "service1.my-company.com",
                    "loadbalancing": "roundrobin",
                    "hosts": [{"address": "127.0.0.1", "port": service.port}],
                }
            ],
        }
    }
    gateway = launcher.gateway(
        original,
        env={
            "GATEHOUSE_GATEWAY_AUTH_URL": auth.url,
            "GATEHOUSE_GATEWAY_ACCOUNTS_UI_URL": accounts.url,
        },
    )
    expected = {
        ("service1.my-company.com", "/anything"): "backend-1",
        ("localhost:8080", "/login"): "backend-2",
        ("localhost:8080", "/account"): "backend-2",
        ("localhost:8080", "/.well-known/jwks.json"): "backend-2",
        ("localhost:8080", "/token/refresh"): "backend-2",
        ("localhost:8080", "/logout"): "backend-2",
        ("localhost:8080", "/password/reset"): "backend-2",
        ("localhost:8080", "/accounts_page"): "backend-3",
    }
    for (host, path), instance in expected.items():
        response = httpx.get(gateway.url + path, headers={"Host": host})
        assert response.status_code == 200, (host, path, response.text)
        assert response.json()["instance"] == instance
    assert httpx.get(gateway.url + "/x", headers={"Host": "other.test"}).status_code == 404
    assert httpx.get(gateway.admin_url + "/-/config").json()["original_format"] is True


def test_listen_from_config_unless_flags_say_otherwise(
    tmp_path: Path, backends: list[ServiceProcess]
) -> None:
    port = free_port()
    admin_port = free_port()
    path = tmp_path / "listen.yaml"
    write_yaml(
        path,
        {
            "listen": {"address": "127.0.0.1", "port": port},
            "admin": {"address": "127.0.0.1", "port": admin_port},
            "routes": [gateway_route(backends[:1])],
        },
    )
    process = ServiceProcess(
        name="gateway-listen",
        command=python_module("gatehouse_gateway", "--config", str(path)),
        port=port,
        admin_port=admin_port,
        ready_path="/-/healthz",
        env={"REDIS_URL": "", "GATEHOUSE_GATEWAY_PORT": "", "GATEHOUSE_GATEWAY_ADMIN_PORT": ""},
    )
    with process:
        response = httpx.get(process.url + "/x", headers={"Host": HOST})
        assert response.status_code == 200
