"""The service Dockerfiles, read without building (the compose run builds them):
overridable slim base, wheels built in a builder stage, only this service's
code, a non-root user, a health check on the path the service serves, and the
service's own console script as the entrypoint."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEALTH = {
    # The gateway's health is on its admin listener (8080 is the public one).
    "gateway": (9901, "/-/healthz"),
    "auth": (8001, "/healthz"),
    "accounts-ui": (8002, "/healthz"),
    "fake-backend": (9001, "/healthz"),
}


@pytest.mark.parametrize("service", sorted(HEALTH))
def test_dockerfile_builds_wheels_and_runs_unprivileged(service: str) -> None:
    text = (REPO / "services" / service / "Dockerfile").read_text()
    assert text.index("ARG BASE_IMAGE=python:3.11-slim") < text.index("FROM ")
    stages = re.findall(r"^FROM (\S+)(?: AS (\w+))?$", text, re.MULTILINE)
    assert stages == [("${BASE_IMAGE}", "builder"), ("${BASE_IMAGE}", "")]
    builder, final = text.split("\nFROM ${BASE_IMAGE}\n")
    assert "pip wheel" in builder and "uv export --frozen" in builder
    assert "--no-index --find-links /wheels/deps" in final
    assert "--no-index --no-deps /wheels/local/*.whl" in final
    # The final stage copies checksums only (they key the layer cache); the
    # wheels themselves are mounted from the builder.
    assert re.findall(r"^COPY .*", final, re.MULTILINE) == [
        "COPY --from=builder /wheels/deps.sha256 /usr/local/share/gatehouse/",
        "COPY --from=builder /wheels/local.sha256 /usr/local/share/gatehouse/",
    ]
    copied = set(re.findall(r"^COPY (\S+)", builder, re.MULTILINE))
    others = {f"services/{other}" for other in HEALTH if other != service}
    assert not {c for c in copied if any(c.startswith(o) for o in others)}, copied
    assert re.search(r"^USER 10001:10001$", final, re.MULTILINE)
    port, path = HEALTH[service]
    exposed = re.search(r"^EXPOSE ([\d ]+)$", final, re.MULTILINE)
    assert exposed and str(port) in exposed.group(1).split()
    healthcheck = final[final.index("HEALTHCHECK") :]
    assert f"http://127.0.0.1:%s{path}" in healthcheck and f"'{port}'" in healthcheck
    scripts = tomllib.loads((REPO / "services" / service / "pyproject.toml").read_text())
    entrypoint = re.search(r'^ENTRYPOINT \["([\w-]+)"\]$', final, re.MULTILINE)
    assert entrypoint and entrypoint.group(1) in scripts["project"]["scripts"]


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
    for service in HEALTH:
        assert ".data" in (REPO / "services" / service / ".dockerignore").read_text()
