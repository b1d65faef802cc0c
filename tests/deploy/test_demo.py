"""scripts/demo.py's choices, without starting the demo (its ports are fixed):
the admin password is kept in a 0600 file and printed only when it is made, the
gateway's admin listener is bound to loopback, the backends serve their faults,
and the services log readable lines without health checks unless JSON is asked for."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from support.demo_script import load_demo

REPO = Path(__file__).resolve().parents[2]


demo = load_demo()


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("GATEHOUSE_ADMIN_PASSWORD", raising=False)
    return tmp_path


def _printed(password: str, source: str, data: Path) -> str:
    env = {"GATEHOUSE_ADMIN_EMAIL": "admin@example.com"}
    return str(demo.walkthrough(env, ["gateway"], demo.password_line(password, source, data)))


def test_admin_password_is_printed_only_when_generated(data: Path) -> None:
    password, source = demo.admin_password(data)
    assert source == "generated"
    stored = data / "admin-password"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stored.read_text().strip() == password
    assert password in _printed(password, source, data)
    # Every later start: the same password, named by its file, never printed.
    again, source = demo.admin_password(data)
    assert (again, source) == (password, "stored")
    text = _printed(again, source, data)
    assert password not in text
    assert str(stored) in text


def test_a_widened_password_file_is_put_back_to_0600(data: Path) -> None:
    demo.admin_password(data)
    stored = data / "admin-password"
    stored.chmod(0o644)
    demo.admin_password(data)
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600


def test_a_password_from_the_environment_is_never_printed(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEHOUSE_ADMIN_PASSWORD", "chosen-by-the-operator")
    password, source = demo.admin_password(data)
    assert (password, source) == ("chosen-by-the-operator", "environment")
    assert "chosen-by-the-operator" not in _printed(password, source, data)
    assert not (data / "admin-password").exists()


def test_gateway_admin_listener_is_loopback_and_its_url_printed(data: Path) -> None:
    (gateway,) = [s for s in demo.SERVICES if s.module == "gatehouse_gateway"]
    assert gateway.env["GATEHOUSE_GATEWAY_ADMIN_HOST"] == "127.0.0.1"
    assert gateway.env["GATEHOUSE_GATEWAY_ADMIN_PORT"] == "9901"
    assert gateway.health_url == "http://127.0.0.1:9901/-/healthz"
    assert "http://127.0.0.1:9901" in _printed("x", "stored", data)
    assert "localhost:8080/-/" not in _printed("x", "stored", data)


def test_fake_backends_serve_their_faults() -> None:
    (backends,) = [s for s in demo.SERVICES if s.module == "gatehouse_fake_backend"]
    assert "--faults" in backends.args


def test_every_backend_the_demo_config_names_is_started_the_canary_included() -> None:
    from gatehouse_fake_backend.__main__ import parse_ports
    from gatehouse_gateway.config.loader import load_config

    (backends,) = [s for s in demo.SERVICES if s.module == "gatehouse_fake_backend"]
    started = parse_ports(backends.args[backends.args.index("--ports") + 1])
    config = load_config(REPO / "services" / "gateway" / "config" / "demo.yaml").config
    service1 = next(route for route in config.routes if route.name == "service1")
    urls = [b.url for r in config.routes for g in (r, *r.groups) for b in g.backends]
    named = {int(url.rsplit(":", 1)[1]) for url in urls if ":90" in url}
    assert named == set(started) == {9001, 9002, 9003, 9004, 9005}
    assert backends.health_url == "http://127.0.0.1:9005/healthz"  # the last one up
    # service1's canary: x-canary: 1, and 10% of the rest
    (canary,) = service1.groups
    assert [b.url for b in canary.backends] == ["http://127.0.0.1:9005"]
    assert service1.split is not None
    assert [(r.header, r.equals, r.group) for r in service1.split.rules] == [
        ("x-canary", "1", "canary")
    ]
    assert service1.split.weights == {"primary": 90, "canary": 10}


def test_demo_logs_are_for_people_unless_json_is_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GATEHOUSE_DEMO_JSON_LOGS", raising=False)
    # Every service the demo starts gets its own prefix's settings.
    assert {s.module for s in demo.SERVICES} == set(demo.SETTINGS_PREFIXES)
    assert demo.json_logs_wanted([]) is False
    env = demo.demo_environment("pw")
    for prefix in demo.SETTINGS_PREFIXES.values():
        assert env[f"{prefix}LOG_JSON"] == "false"
        assert env[f"{prefix}LOG_HEALTH_CHECKS"] == "false"
    assert demo.json_logs_wanted(["--json-logs"]) is True
    monkeypatch.setenv("GATEHOUSE_DEMO_JSON_LOGS", "1")
    assert demo.json_logs_wanted([]) is True
    env = demo.demo_environment("pw", json_logs=True)
    for prefix in demo.SETTINGS_PREFIXES.values():
        assert env[f"{prefix}LOG_JSON"] == "true"
        # Quiet health checks either way: the demo is watched by people.
        assert env[f"{prefix}LOG_HEALTH_CHECKS"] == "false"


def test_each_service_reads_the_demo_log_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from gatehouse_accounts_ui.settings import AccountsUISettings
    from gatehouse_auth.settings import AuthSettings
    from gatehouse_fake_backend.settings import FakeBackendSettings
    from gatehouse_gateway.settings import GatewaySettings

    classes = {
        "gatehouse_fake_backend": FakeBackendSettings,
        "gatehouse_auth": AuthSettings,
        "gatehouse_accounts_ui": AccountsUISettings,
        "gatehouse_gateway": GatewaySettings,
    }
    for name, value in demo.log_environment(json_logs=False).items():
        monkeypatch.setenv(name, value)
    for module, settings_class in classes.items():
        settings = settings_class()
        assert (settings.log_json, settings.log_health_checks) == (False, False), module


def test_demo_help_names_the_json_flag() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert "--json-logs" in result.stdout
