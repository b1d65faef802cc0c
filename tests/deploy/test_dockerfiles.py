"""The one service Dockerfile, read without building (the compose run builds it
four times): ``ARG SERVICE`` picks the service, an overridable slim base, wheels
built in a builder stage from only that service's code, a non-root user, and
per service a health check on the path it serves and its own console script as
the entrypoint. The compose file builds every service image from it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
HEALTH = {
    # The gateway's health is on its admin listener (8080 is the public one).
    "gateway": (9901, "/-/healthz"),
    "auth": (8001, "/healthz"),
    "accounts-ui": (8002, "/healthz"),
    "fake-backend": (9001, "/healthz"),
}


def _stages() -> dict[str, str]:
    """Each stage's text (FROM line included), by stage name ('' for the last, unnamed one)."""
    text = DOCKERFILE.read_text()
    starts = [m.start() for m in re.finditer(r"^FROM ", text, re.MULTILINE)]
    stages: dict[str, str] = {}
    for start, end in zip(starts, [*starts[1:], len(text)], strict=True):
        body = text[start:end]
        name = re.match(r"FROM \S+(?: AS ([\w-]+))?", body)
        assert name
        stages[name.group(1) or ""] = body
    return stages


def test_one_dockerfile_for_every_service() -> None:
    assert not list((REPO / "services").glob("*/Dockerfile"))
    assert not list((REPO / "deploy").rglob("Dockerfile"))
    text = DOCKERFILE.read_text()
    head = text[: text.index("\nFROM ")]
    assert "ARG BASE_IMAGE=python:3.11-slim" in head and re.search(r"^ARG SERVICE$", head, re.M)
    stages = _stages()
    assert stages.keys() == {"builder", "runtime", *(f"service-{s}" for s in HEALTH), ""}
    assert stages[""].strip() == "FROM service-${SERVICE}"
    assert stages["builder"].startswith("FROM ${BASE_IMAGE} AS builder")
    assert stages["runtime"].startswith("FROM ${BASE_IMAGE} AS runtime")
    for service in HEALTH:
        assert stages[f"service-{service}"].startswith(f"FROM runtime AS service-{service}")


def test_builder_makes_wheels_of_the_named_service_only() -> None:
    builder = _stages()["builder"]
    assert re.search(r"^ARG SERVICE$", builder, re.M)
    assert "uv export --frozen" in builder and '--package "gatehouse-${SERVICE}"' in builder
    assert "pip wheel" in builder
    copied = re.findall(r"^COPY (\S+)", builder, re.MULTILINE)
    services = [c for c in copied if c.startswith("services/")]
    assert services == ["services/${SERVICE}/pyproject.toml", "services/${SERVICE}/src"]
    for service in HEALTH:
        project = tomllib.loads((REPO / "services" / service / "pyproject.toml").read_text())
        assert project["project"]["name"] == f"gatehouse-{service}"


def test_runtime_installs_only_wheels_and_runs_unprivileged() -> None:
    runtime = _stages()["runtime"]
    assert "--no-index --find-links /wheels/deps" in runtime
    assert "--no-index --no-deps /wheels/local/*.whl" in runtime
    # The runtime stage copies checksums only (they key the layer cache); the
    # wheels themselves are mounted from the builder.
    assert re.findall(r"^COPY .*", runtime, re.MULTILINE) == [
        "COPY --from=builder /wheels/deps.sha256 /usr/local/share/gatehouse/",
        "COPY --from=builder /wheels/local.sha256 /usr/local/share/gatehouse/",
    ]
    assert re.search(r"^USER 10001:10001$", runtime, re.MULTILINE)
    for name, stage in _stages().items():
        if name.startswith("service-"):
            # Nothing after the runtime stage may run as root or add files.
            assert not re.search(r"^(USER|RUN|COPY|ADD) ", stage, re.MULTILINE), name


@pytest.mark.parametrize("service", sorted(HEALTH))
def test_each_service_has_its_port_health_check_and_command(service: str) -> None:
    stage = _stages()[f"service-{service}"]
    port, path = HEALTH[service]
    exposed = re.search(r"^EXPOSE ([\d ]+)$", stage, re.MULTILINE)
    assert exposed and str(port) in exposed.group(1).split()
    healthcheck = stage[stage.index("HEALTHCHECK") :]
    assert f"http://127.0.0.1:%s{path}" in healthcheck and f"'{port}'" in healthcheck
    scripts = tomllib.loads((REPO / "services" / service / "pyproject.toml").read_text())
    entrypoint = re.search(r'^ENTRYPOINT \["([\w-]+)"\]$', stage, re.MULTILINE)
    assert entrypoint and entrypoint.group(1) in scripts["project"]["scripts"]
    prefix = f"GATEHOUSE_{service.replace('-', '_').upper()}"
    assert f"{prefix}_HOST=0.0.0.0" in stage


def test_compose_builds_every_service_image_from_the_one_dockerfile() -> None:
    compose = yaml.safe_load((REPO / "deploy" / "compose" / "docker-compose.yml").read_text())
    anchors = {k: v for k, v in compose.items() if k.startswith("x-")}
    built: dict[str, str] = {}
    for name, service in [*compose["services"].items(), *anchors.items()]:
        build = service.get("build") if isinstance(service, dict) else None
        if not build:
            continue
        assert build["context"] == "../.." and build["dockerfile"] == "Dockerfile", name
        image = service["image"].split("}/", 1)[1].split(":", 1)[0]
        assert build["args"]["SERVICE"] == image, name
        built[name] = image
    assert set(built.values()) == set(HEALTH)


def test_root_dockerignore_sends_only_manifests_and_sources() -> None:
    rules = [
        line
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert rules[0] == "*"
    allowed = [rule[1:] for rule in rules if rule.startswith("!")]
    assert "uv.lock" in allowed
    assert all(not a.startswith((".venv", ".git", ".data", "tests", "deploy")) for a in allowed)
