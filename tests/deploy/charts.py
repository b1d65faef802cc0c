"""Rendering deploy/helm/gatehouse offline with the Helm SDK (helm_python: no helm
binary, no cluster), once per values scenario: the defaults and each
``ci/*-values.yaml`` toggle the chart ships."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import helm_python
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "gatehouse"
SUBCHARTS = ("gateway", "auth", "accounts-ui", "fake-backend", "postgres", "redis")
RELEASE = "gh"
NAMESPACE = "gatehouse"
KUBERNETES = "1.30.0"
# Custom resources (KEDA, Prometheus Operator, Gateway API): no schema in
# kubernetes-validate; the HTTPRoutes are checked against the Gateway API CRD's
# schema (test_helm_httproute.py).
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule", "ScaledObject", "HTTPRoute"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet"}

# Helm logs each symlinked library chart at INFO on stderr; say nothing.
helm_python.disable_logging()


# Values the chart has no default for (an install must pass them): the
# ``defaults`` scenario and render() add them unless told not to.
REQUIRED_VALUES: dict[str, Any] = {"auth": {"trustedProxies": ["10.244.0.0/16"]}}


def with_required(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` over :data:`REQUIRED_VALUES` (a deep merge; ``values`` wins)."""

    def merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
        merged = dict(base)
        for key, value in top.items():
            if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
                merged[key] = merge(merged[key], value)
            else:
                merged[key] = value
        return merged

    return merge(REQUIRED_VALUES, values)


def scenario_values() -> dict[str, dict[str, Any]]:
    """``defaults`` (plus the required values) and one scenario per ci/<name>-values.yaml."""
    scenarios: dict[str, dict[str, Any]] = {"defaults": with_required({})}
    for path in sorted((CHART / "ci").glob("*-values.yaml")):
        scenarios[path.name.removesuffix("-values.yaml")] = yaml.safe_load(path.read_text()) or {}
    return scenarios


@dataclass(frozen=True)
class Rendered:
    """One rendering: the manifests, parsed, and the NOTES.txt text."""

    manifests: tuple[dict[str, Any], ...]
    notes: str

    def kind(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.manifests if m["kind"] == kind]

    def named(self, kind: str, name: str) -> dict[str, Any]:
        matches = [m for m in self.kind(kind) if m["metadata"]["name"] == name]
        if len(matches) != 1:
            raise LookupError(f"{len(matches)} {kind} named {name!r}")
        return matches[0]

    def workloads(self) -> list[dict[str, Any]]:
        return [m for m in self.manifests if m["kind"] in WORKLOAD_KINDS]

    def pod_specs(self) -> Iterable[tuple[str, dict[str, Any]]]:
        """(object name, pod spec) of every workload, Job and test Pod."""
        for manifest in self.manifests:
            if manifest["kind"] in WORKLOAD_KINDS or manifest["kind"] == "Job":
                yield manifest["metadata"]["name"], manifest["spec"]["template"]["spec"]
            elif manifest["kind"] == "Pod":
                yield manifest["metadata"]["name"], manifest["spec"]


def render(values: Mapping[str, Any] | None = None, *, required: bool = True) -> Rendered:
    """Render the umbrella chart as a fresh install of release ``gh`` (with the
    required values under ``values`` unless ``required`` is false)."""
    given = with_required(values or {}) if required else dict(values or {})
    chart = helm_python.Chart.load(CHART)
    try:
        files = chart.render(given, name=RELEASE, namespace=NAMESPACE, is_install=True)
    finally:
        chart.close()
    manifests: list[dict[str, Any]] = []
    notes = ""
    for path, text in sorted(files.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        manifests.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return Rendered(manifests=tuple(manifests), notes=notes)


@cache
def render_scenario(name: str) -> Rendered:
    return render(scenario_values()[name])


def gateway_config_text(rendered: Rendered) -> str:
    config_map = rendered.named("ConfigMap", f"{RELEASE}-gateway")
    text: str = config_map["data"]["gateway.yaml"]
    return text


def env_of(container: Mapping[str, Any]) -> dict[str, Any]:
    """A container's env as {name: value or valueFrom}."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}
