"""deploy/compose, without running it: docker-compose accepts the file, the
gateway config loads and points at compose services, Prometheus scrapes them
all, and secrets never appear in the file."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from gatehouse_gateway.config.loader import load_config

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "deploy" / "compose"
APP_PORTS = {
    "gateway-1": 8080,
    "gateway-2": 8080,
    "auth": 8001,
    "accounts-ui": 8002,
    "fake-backend-1": 9001,
    "fake-backend-2": 9001,
    "fake-backend-3": 9001,
    "fake-backend-4": 9001,
}


def _compose_config(secrets_dir: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker-compose", "-f", str(COMPOSE / "docker-compose.yml"), "config", *flags],
        env={**os.environ, "GATEHOUSE_SECRETS_DIR": str(secrets_dir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("secrets")
    subprocess.run([str(COMPOSE / "make-secrets.sh"), str(folder)], check=True, capture_output=True)
    return folder


@pytest.fixture(scope="module")
def compose(secrets_dir: Path) -> dict[str, Any]:
    """The file as docker-compose resolves it (anchors merged, variables filled)."""
    result = _compose_config(secrets_dir)
    assert result.returncode == 0, result.stderr
    resolved: dict[str, Any] = yaml.safe_load(result.stdout)
    return resolved


def test_docker_compose_accepts_the_file_quietly(secrets_dir: Path) -> None:
    result = _compose_config(secrets_dir, "-q")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


def _spec_errors(document: object) -> list[str]:
    """What the Compose Specification's schema (what Docker Compose v2 implements) refuses."""
    schema = json.loads((Path(__file__).parent / "data" / "compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    return [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(document)]


def test_the_file_follows_the_compose_specification() -> None:
    """Compose v2 cannot be installed here; its schema is checked instead (data/README.md)."""
    document = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    assert _spec_errors(document) == []
    broken = copy.deepcopy(document)
    broken["services"]["auth"]["restart_policy"] = "always"  # a v2 key misplaced
    assert _spec_errors(broken), "the schema check cannot fail"


def test_gateway_config_loads_and_names_compose_services(compose: dict[str, Any]) -> None:
    config = load_config(COMPOSE / "gateway.yaml").config
    for route in config.routes:
        for backend in route.backends:
            url = urlsplit(str(backend.url))
            assert APP_PORTS.get(str(url.hostname)) == url.port, (route.name, backend.url)
            assert url.hostname in compose["services"]
    jwks = urlsplit(str(config.auth.jwks_url))
    assert (jwks.hostname, jwks.port) == ("auth", 8001)
    assert config.cursor.store == "redis"
    for replica in ("gateway-1", "gateway-2"):
        assert compose["services"][replica]["environment"]["REDIS_URL"] == "redis://redis:6379/0"


def test_prometheus_scrapes_every_service_with_the_rules(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    targets = {
        target.partition(":")[0]: (job["job_name"], int(target.partition(":")[2]))
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    for service, port in APP_PORTS.items():
        assert targets[service][1] == port, service
    assert targets["gateway-1"][0] == "gateway"
    result = subprocess.run(
        ["promtool", "check", "config", "--syntax-only", str(COMPOSE / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # docker-compose 1.29 prints mounts as source:target:mode, v2 as mappings.
    mounts = [
        (m["source"], m["target"]) if isinstance(m, dict) else tuple(m.split(":")[:2])
        for m in compose["services"]["prometheus"]["volumes"]
    ]
    rules = [source for source, target in mounts if target == config["rule_files"][0]]
    assert [Path(source) for source in rules] == [
        REPO / "deploy" / "alerts" / "gatehouse-rules.yml"
    ]


def test_start_is_health_gated(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        if name != "auth-migrate":
            assert service["healthcheck"]["test"], name
    assert services["auth"]["depends_on"]["auth-migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["auth-migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for replica in ("gateway-1", "gateway-2"):
        assert services[replica]["depends_on"]["auth"]["condition"] == "service_healthy"
    assert set(services["edge"]["depends_on"]) == {"gateway-1", "gateway-2"}


def test_no_secret_is_written_into_the_file(compose: dict[str, Any], secrets_dir: Path) -> None:
    text = (COMPOSE / "docker-compose.yml").read_text()
    for secret in ("db_password", "admin_password"):
        assert (secrets_dir / secret).read_text().strip() not in text
    # The file as written (env files are merged in by `config`, and may hold them).
    raw = yaml.safe_load(text)
    for service in raw["services"].values():
        for key in service.get("environment", {}):
            assert not (("PASSWORD" in key or "SECRET" in key) and not key.endswith("_FILE")), key


def test_make_secrets_keeps_existing_secrets(secrets_dir: Path) -> None:
    before = {p.name: p.read_bytes() for p in secrets_dir.iterdir()}
    subprocess.run(
        [str(COMPOSE / "make-secrets.sh"), str(secrets_dir)], check=True, capture_output=True
    )
    after = {p.name: p.read_bytes() for p in secrets_dir.iterdir()}
    assert before == after
    assert b"BEGIN PRIVATE KEY" in after["jwt_signing_key.pem"]
    assert (secrets_dir.stat().st_mode & 0o777) == 0o700
