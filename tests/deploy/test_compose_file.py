"""deploy/compose, without running it: docker-compose accepts the file, the
gateway config loads and points at compose services, Prometheus scrapes them
all, secrets never appear in the file, and what must stay inside (the gateway's
admin listener, Prometheus, Redis, the fake backends' fault endpoints) does."""

from __future__ import annotations

import contextlib
import copy
import ipaddress
import json
import os
import re
import ssl
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from deploy.redis_acl import check_service_users, redis_with_acl

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
    "fake-backend-5": 9001,
}
ADMIN_PORT = 9901
# "[ip:]host:container" as written in the file; host may be a ${VARIABLE:-default}.
PUBLISHED = re.compile(r"^(?:(?P<ip>[0-9.]+):)?(?P<host>\$\{[^}]+\}|\d+):(?P<container>\d+)$")


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
        for backend in [*route.backends, *(b for g in route.groups for b in g.backends)]:
            url = urlsplit(str(backend.url))
            assert APP_PORTS.get(str(url.hostname)) == url.port, (route.name, backend.url)
            assert url.hostname in compose["services"]
    # the demo's limit, shared by both gateways through the stack's Redis
    (limit,) = next(r for r in config.routes if r.name == "service2").rate_limits
    assert (limit.key.by, limit.per_second, limit.capacity) == ("subject", 20, 40)
    jwks = urlsplit(str(config.auth.jwks_url))
    assert (jwks.hostname, jwks.port) == ("auth", 8001)
    assert config.cursor.store == "redis"
    # service1's canary, as in the demo: x-canary: 1, and 10% of the rest
    service1 = next(route for route in config.routes if route.name == "service1")
    assert [b.url for g in service1.groups for b in g.backends] == ["http://fake-backend-5:9001"]
    assert service1.split is not None and service1.split.weights == {"primary": 90, "canary": 10}


def test_prometheus_scrapes_every_service_with_the_rules(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    targets = {
        target.partition(":")[0]: (job["job_name"], int(target.partition(":")[2]))
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    for service, port in APP_PORTS.items():
        if service.startswith("gateway-"):
            port = ADMIN_PORT  # the gateway's metrics are on its admin listener
        assert targets[service][1] == port, service
    assert targets["gateway-1"][0] == "gateway"
    (gateway_job,) = [job for job in config["scrape_configs"] if job["job_name"] == "gateway"]
    assert gateway_job["metrics_path"] == "/-/metrics"
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
    for secret in (
        "db_password",
        "admin_password",
        "redis_gateway_password",
        "redis_auth_password",
    ):
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


def _raw() -> dict[str, Any]:
    """The file as written (variables unresolved, anchors merged by the YAML loader)."""
    document: dict[str, Any] = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    return document


def _published(service: dict[str, Any]) -> list[dict[str, str | None]]:
    found = []
    for entry in service.get("ports", []):
        match = PUBLISHED.match(str(entry))
        assert match, f"unexpected port syntax {entry!r}"
        found.append(match.groupdict())
    return found


def test_only_the_edge_is_published_beyond_this_machine() -> None:
    # Prometheus has no authentication and the admin listeners hold the
    # config, the metrics and the admin API: loopback only. The edge is the door.
    published = {name: _published(service) for name, service in _raw()["services"].items()}
    assert [p["container"] for p in published["edge"]] == ["8080"]
    assert published["edge"][0]["ip"] is None
    assert published["prometheus"] == [
        {"ip": "127.0.0.1", "host": "${GATEHOUSE_PROMETHEUS_PORT:-9090}", "container": "9090"}
    ]
    for name, ports in published.items():
        if name != "edge":
            assert all(p["ip"] == "127.0.0.1" for p in ports), (name, ports)
        if not name.startswith("gateway-"):
            assert all(p["container"] != str(ADMIN_PORT) for p in ports), (name, ports)


def test_gateway_admin_listener_serves_checks_and_scrapes_never_the_edge() -> None:
    services = _raw()["services"]
    for replica in ("gateway-1", "gateway-2"):
        gateway = services[replica]
        assert gateway["environment"]["GATEHOUSE_GATEWAY_ADMIN_HOST"] == "0.0.0.0"
        assert gateway["environment"]["GATEHOUSE_GATEWAY_ADMIN_PORT"] == str(ADMIN_PORT)
        check = " ".join(gateway["healthcheck"]["test"])
        assert f"http://127.0.0.1:{ADMIN_PORT}/-/readyz" in check, check
        assert [p["container"] for p in _published(gateway)] == [str(ADMIN_PORT), "8443"]
    lines = (COMPOSE / "edge.conf").read_text().splitlines()
    edge = "\n".join(line for line in lines if not line.strip().startswith("#"))
    servers = re.findall(r"^\s*server\s+(\S+?);", edge, flags=re.MULTILINE)
    assert servers == ["gateway-1:8080", "gateway-2:8080"]
    assert re.findall(r"proxy_pass\s+(\S+);", edge) == ["http://gatehouse_gateways"]
    assert str(ADMIN_PORT) not in edge
    # The edge's config, the gateway's public metrics: off in the stack (metrics
    # carry backend addresses; Prometheus reads them on the admin listener).
    config = yaml.safe_load((COMPOSE / "gateway.yaml").read_text())
    assert config.get("public_metrics", False) is False


def test_fake_backends_keep_their_fault_endpoints_off() -> None:
    for name, service in _raw()["services"].items():
        if name.startswith("fake-backend"):
            assert "GATEHOUSE_FAKE_BACKEND_FAULTS" not in service.get("environment", {}), name
            assert "--faults" not in service.get("command", []), name


def test_redis_wants_a_password_and_keeps_each_service_to_its_keys(
    compose: dict[str, Any], secrets_dir: Path
) -> None:
    redis_service = _raw()["services"]["redis"]
    command = redis_service["command"]
    assert "--protected-mode" not in command
    assert command[command.index("--aclfile") + 1] == "/run/secrets/redis_users.acl"
    assert redis_service["secrets"] == ["redis_users.acl"]
    assert _raw()["secrets"]["redis_users.acl"]["file"].endswith("/redis_users.acl")
    acl = (secrets_dir / "redis_users.acl").read_text()
    for secret in ("redis_gateway_password", "redis_auth_password"):
        assert (secrets_dir / secret).read_text().strip() not in acl  # hashes only
    # REDIS_URL as each container gets it (env files merged by `config`).
    urls = {
        "gateway": compose["services"]["gateway-1"]["environment"]["REDIS_URL"],
        "auth": compose["services"]["auth"]["environment"]["REDIS_URL"],
    }
    assert compose["services"]["gateway-2"]["environment"]["REDIS_URL"] == urls["gateway"]
    for user, url in urls.items():
        password = (secrets_dir / f"redis_{user}_password").read_text().strip()
        assert url == f"redis://{user}:{password}@redis:6379/0"
    with redis_with_acl(secrets_dir / "redis_users.acl") as port:
        check_service_users(port, urls)
        # The container's health check, as written, against this server.
        check = redis_service["healthcheck"]["test"][1].replace("redis-cli", f"redis-cli -p {port}")
        assert subprocess.run(["sh", "-c", check], timeout=10, check=False).returncode == 0


def test_auth_believes_forwarded_for_from_the_proxies_in_front_only(
    compose: dict[str, Any],
) -> None:
    (pool,) = compose["networks"]["default"]["ipam"]["config"]
    subnet = ipaddress.ip_network(pool["subnet"])
    # Every container has its own fixed address in the subnet (nothing is left
    # to dynamic allocation, which could hand a proxy's address to another).
    fixed = {
        name: ipaddress.ip_address(service["networks"]["default"]["ipv4_address"])
        for name, service in compose["services"].items()
    }
    assert len(set(fixed.values())) == len(fixed)
    assert all(address in subnet for address in fixed.values()), fixed
    # Every hop between a client and auth that forwards the client's address.
    proxies = {name: fixed[name] for name in ("edge", "gateway-1", "gateway-2", "accounts-ui")}
    trusted = json.loads(
        compose["services"]["auth"]["environment"]["GATEHOUSE_AUTH_TRUSTED_PROXIES"]
    )
    assert sorted(ipaddress.ip_network(n) for n in trusted) == sorted(
        ipaddress.ip_network(f"{address}/32") for address in proxies.values()
    )
    # The gateways append to the edge's X-Forwarded-For (and replace anyone else's).
    config = load_config(COMPOSE / "gateway.yaml").config
    assert [ipaddress.ip_network(n) for n in config.edge.trusted_proxies] == [
        ipaddress.ip_network(f"{proxies['edge']}/32")
    ]
    assert (config.admin.address, config.admin.port) == ("0.0.0.0", ADMIN_PORT)


def test_the_gateway_serves_tls_on_8443_with_the_local_cas_certificate(
    compose: dict[str, Any], secrets_dir: Path
) -> None:
    config = yaml.safe_load((COMPOSE / "gateway.yaml").read_text())
    (listener,) = config["listeners"]
    assert listener["port"] == 8443
    (certificate,) = listener["tls"]["certificates"]
    mounted = {f"/run/secrets/{s.get('target') or s['source'] if isinstance(s, dict) else s}"
               for s in compose["services"]["gateway-1"]["secrets"]}  # fmt: skip
    assert {certificate["cert_file"], certificate["key_file"]} <= mounted
    # the pair make-secrets.sh wrote loads, and a client trusting its CA accepts
    # it for localhost
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(secrets_dir / "gateway_tls.pem", secrets_dir / "gateway_tls-key.pem")
    client = ssl.create_default_context(cafile=str(secrets_dir / "gateway_ca.pem"))
    client_side, server_side = ssl.MemoryBIO(), ssl.MemoryBIO()
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    del client_side, server_side
    c = client.wrap_bio(to_client, to_server, server_hostname="localhost")
    s = server.wrap_bio(to_server, to_client, server_side=True)
    for _ in range(10):
        for side in (c, s):
            with contextlib.suppress(ssl.SSLWantReadError):
                side.do_handshake()
    assert c.getpeercert()["subjectAltName"]
