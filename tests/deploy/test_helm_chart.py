"""The Helm chart, rendered offline: lint, Kubernetes 1.30 schemas, and whether the
objects fit together (Services select pods, probes hit served paths, the
gateway's ConfigMap is a config the gateway loads, autoscalers target it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import helm_python
import httpx
import kubernetes_validate
import pytest
import yaml
from deploy.charts import (
    CHART,
    CUSTOM_KINDS,
    KUBERNETES,
    RELEASE,
    SUBCHARTS,
    env_of,
    gateway_config_text,
    render,
    render_scenario,
    scenario_values,
)

from gatehouse_gateway.config.loader import load_config

SCENARIOS = sorted(scenario_values())
REQUIRED_SCENARIOS = {
    "defaults",
    "external-database",
    "keda",
    "prometheus-operator",
    "ingress",
    "gateway-tls",
    "exposure-none",
    "network-policy-off",
}


def _service_apps() -> dict[str, Any]:
    """Each service's ASGI app (the gateway's own endpoints), by image repository."""
    from gatehouse_accounts_ui.app import create_app as accounts_app
    from gatehouse_auth.app import create_app as auth_app
    from gatehouse_auth.settings import AuthSettings
    from gatehouse_fake_backend.app import create_app as fake_backend_app
    from gatehouse_gateway.admin import create_admin_app

    return {
        "gatehouse/gateway": create_admin_app(lambda: None),
        "gatehouse/auth": auth_app(AuthSettings(keys_dir=Path("unused"))),
        "gatehouse/accounts-ui": accounts_app(),
        "gatehouse/fake-backend": fake_backend_app(),
    }


async def _served(app: Any, path: str) -> bool:
    """Whether ``app`` has a route for GET ``path`` (its answer may be an error:
    the app runs without its lifespan, so without its dependencies)."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        response = await client.get(path)
    return response.status_code not in (404, 405)


def _repository(image: str) -> str:
    return image.rsplit(":", 1)[0]


def test_ci_scenarios_cover_every_toggle() -> None:
    assert set(SCENARIOS) >= REQUIRED_SCENARIOS


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_lint_is_clean_in_strict_mode_with_subcharts(scenario: str) -> None:
    report = helm_python.lint(
        CHART,
        scenario_values()[scenario],
        strict=True,
        with_subcharts=True,
        kube_version=f"v{KUBERNETES}",
    )
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not problems, problems
    assert not report["errors"], report["errors"]


@pytest.mark.parametrize("subchart", [*SUBCHARTS, "common"])
def test_each_subchart_lints_on_its_own(subchart: str) -> None:
    report = helm_python.lint(CHART / "charts" / subchart, strict=True)
    assert not [m for m in report["messages"] if m["severity"] >= 2], report["messages"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_manifest_is_valid_kubernetes_1_30(scenario: str) -> None:
    rendered = render_scenario(scenario)
    assert rendered.manifests
    for manifest in rendered.manifests:
        if manifest["kind"] in CUSTOM_KINDS:
            continue  # checked by the tests of their own toggles
        kubernetes_validate.validate(manifest, KUBERNETES, strict=True)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_service_selects_the_pods_of_one_workload(scenario: str) -> None:
    rendered = render_scenario(scenario)
    workloads = rendered.workloads()
    for service in rendered.kind("Service"):
        selector = service["spec"]["selector"]
        matching = [
            w
            for w in workloads
            if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matching) == 1, (service["metadata"]["name"], [m["metadata"] for m in matching])
        ports = {
            port["name"]
            for container in matching[0]["spec"]["template"]["spec"]["containers"]
            for port in container.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, (service["metadata"]["name"], port)
        # A workload's own selector must match its own pods, or it never owns them.
    for workload in workloads:
        selector = workload["spec"]["selector"]["matchLabels"]
        assert selector.items() <= workload["spec"]["template"]["metadata"]["labels"].items()


@pytest.mark.parametrize("scenario", ["defaults", "prometheus-operator"])
async def test_probes_and_scrapes_hit_paths_the_services_serve(scenario: str) -> None:
    apps = _service_apps()
    rendered = render_scenario(scenario)
    checked: list[tuple[str, str]] = []
    for workload in rendered.workloads():
        template = workload["spec"]["template"]
        for container in template["spec"]["containers"]:
            repository = _repository(container["image"])
            if repository not in apps:
                continue  # postgres and redis probe with their own CLIs
            paths = [container[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe")]
            scrape = template["metadata"].get("annotations", {}).get("prometheus.io/path")
            if scenario == "defaults":
                paths.append(scrape)
            checked.extend((repository, path) for path in paths)
    for monitor in rendered.kind("ServiceMonitor"):
        component = monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        checked.extend((f"gatehouse/{component}", e["path"]) for e in monitor["spec"]["endpoints"])
    # gateway, auth, accounts-ui and five fake backends: two probes, and a scrape path.
    assert len(checked) == 8 * 3 if scenario == "defaults" else 8 * 2 + 4
    for repository, path in sorted(set(checked)):
        assert await _served(apps[repository], path), (repository, path)
    # The check tells a served path from one that is not (the fake backend
    # echoes every path, so it cannot be the one to show it).
    assert not await _served(apps["gatehouse/gateway"], "/healthz")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_gateway_configmap_loads_and_points_at_rendered_services(
    scenario: str, tmp_path: Path
) -> None:
    rendered = render_scenario(scenario)
    path = tmp_path / "gateway.yaml"
    path.write_text(gateway_config_text(rendered))
    config = load_config(path).config
    assert {route.name for route in config.routes} == {
        "service1",
        "service2",
        "auth",
        "accounts-ui",
    }
    services = {
        (s["metadata"]["name"], port["port"])
        for s in rendered.kind("Service")
        for port in s["spec"]["ports"]
    }
    for route in config.routes:
        for backend in [*route.backends, *(b for g in route.groups for b in g.backends)]:
            url = urlsplit(str(backend.url))
            assert (url.hostname, url.port) in services, (route.name, backend.url)
    service1 = next(route for route in config.routes if route.name == "service1")
    assert [g.name for g in service1.groups] == ["canary"]  # on the fifth fake backend
    jwks = urlsplit(str(config.auth.jwks_url))
    assert (jwks.hostname, jwks.port) in services


def test_config_change_rolls_the_gateway_pods() -> None:
    def checksum(values: dict[str, Any]) -> str:
        deployment = render(values).named("Deployment", f"{RELEASE}-gateway")
        annotation: str = deployment["spec"]["template"]["metadata"]["annotations"][
            "checksum/config"
        ]
        return annotation

    changed = {"gateway": {"config": {**_default_gateway_config(), "cursor": {"store": "local"}}}}
    assert checksum({}) == checksum({})
    assert checksum({}) != checksum(changed)


def _default_gateway_config() -> dict[str, Any]:
    values = yaml.safe_load((CHART / "charts" / "gateway" / "values.yaml").read_text())
    config: dict[str, Any] = values["config"]
    return config


def test_hpa_scales_the_gateway_on_cpu_and_memory() -> None:
    rendered = render_scenario("defaults")
    (hpa,) = rendered.kind("HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", f"{RELEASE}-gateway")
    rendered.named("Deployment", target["name"])
    assert {m["resource"]["name"] for m in hpa["spec"]["metrics"]} == {"cpu", "memory"}
    assert "replicas" not in rendered.named("Deployment", target["name"])["spec"]
    assert not rendered.kind("ScaledObject")


def test_keda_owns_the_gateway_scaling_when_enabled() -> None:
    rendered = render_scenario("keda")
    assert not rendered.kind("HorizontalPodAutoscaler")
    (scaled,) = rendered.kind("ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    target = scaled["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", f"{RELEASE}-gateway")
    rendered.named("Deployment", target["name"])
    (prometheus,) = [t for t in scaled["spec"]["triggers"] if t["type"] == "prometheus"]
    assert prometheus["metadata"]["threshold"] == "150"
    assert "http_requests_total" in prometheus["metadata"]["query"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_gateway_keeps_a_disruption_budget(scenario: str) -> None:
    rendered = render_scenario(scenario)
    (budget,) = rendered.kind("PodDisruptionBudget")
    pods = rendered.named("Deployment", f"{RELEASE}-gateway")["spec"]["template"]["metadata"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pods["labels"].items()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_pod_runs_restricted(scenario: str) -> None:
    for name, pod in render_scenario(scenario).pod_specs():
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod["automountServiceAccountToken"] is False, name
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert context["readOnlyRootFilesystem"] is True, name
            assert container["resources"]["limits"], name
            assert container["resources"]["requests"], name


def test_database_url_comes_from_the_secret_never_a_literal_password() -> None:
    rendered = render_scenario("defaults")
    auth = rendered.named("Deployment", f"{RELEASE}-auth")["spec"]["template"]["spec"]
    env = env_of(auth["containers"][0])
    assert env["DATABASE_PASSWORD"]["secretKeyRef"]["name"] == f"{RELEASE}-database"
    assert env["DATABASE_URL"] == (
        f"postgresql://gatehouse:$(DATABASE_PASSWORD)@{RELEASE}-postgres:5432/gatehouse"
    )
    assert env["GATEHOUSE_ADMIN_PASSWORD"]["secretKeyRef"]["name"] == f"{RELEASE}-auth-secrets"
    postgres = rendered.named("StatefulSet", f"{RELEASE}-postgres")["spec"]["template"]["spec"]
    assert env_of(postgres["containers"][0])["POSTGRES_PASSWORD"] == env["DATABASE_PASSWORD"]


def test_gateway_admin_listener_is_for_probes_and_prometheus_only() -> None:
    rendered = render_scenario("defaults")
    deployment = rendered.named("Deployment", f"{RELEASE}-gateway")
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "http": 8080,
        "admin": 9901,
    }
    env = env_of(container)
    assert (env["GATEHOUSE_GATEWAY_ADMIN_HOST"], env["GATEHOUSE_GATEWAY_ADMIN_PORT"]) == (
        "0.0.0.0",
        "9901",
    )
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] == "admin", probe
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "9901"
    # The public Service (the HTTPRoutes' and the Ingress's) has no admin port; the admin one is
    # ClusterIP whatever the public one is.
    public = rendered.named("Service", f"{RELEASE}-gateway")
    assert [p["targetPort"] for p in public["spec"]["ports"]] == ["http"]
    admin = rendered.named("Service", f"{RELEASE}-gateway-admin")
    assert [p["targetPort"] for p in admin["spec"]["ports"]] == ["admin"]
    exposed = render({"gateway": {"service": {"type": "LoadBalancer"}}})
    assert exposed.named("Service", f"{RELEASE}-gateway")["spec"]["type"] == "LoadBalancer"
    assert exposed.named("Service", f"{RELEASE}-gateway-admin")["spec"]["type"] == "ClusterIP"
    for ingress in render_scenario("ingress").kind("Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                assert path["backend"]["service"] == {
                    "name": f"{RELEASE}-gateway",
                    "port": {"number": 8080},
                }
    # public_metrics stays off: the metrics name every backend's address.
    config = yaml.safe_load(gateway_config_text(rendered))
    assert config.get("public_metrics", False) is False
    test_pod = env_of(rendered.kind("Pod")[0]["spec"]["containers"][0])
    assert test_pod["GATEWAY_ADMIN"] == f"http://{RELEASE}-gateway-admin:9901"


def test_service_monitor_scrapes_the_gateway_admin_service() -> None:
    rendered = render_scenario("prometheus-operator")
    monitor = rendered.named("ServiceMonitor", f"{RELEASE}-gateway")
    assert monitor["spec"]["endpoints"][0]["port"] == "admin"
    assert monitor["spec"]["endpoints"][0]["path"] == "/-/metrics"
    selector = monitor["spec"]["selector"]["matchLabels"]
    selected = [
        s["metadata"]["name"]
        for s in rendered.kind("Service")
        if selector.items() <= s["metadata"]["labels"].items()
    ]
    assert selected == [f"{RELEASE}-gateway-admin"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_fake_backends_keep_their_fault_endpoints_off(scenario: str) -> None:
    # The gateway routes any signed-up user to them: /__backend/ must answer 404.
    backends = [
        w
        for w in render_scenario(scenario).workloads()
        if w["metadata"]["name"].startswith(f"{RELEASE}-fake-backend-")
    ]
    assert len(backends) == 5  # the original's four and service1's canary
    for backend in backends:
        (container,) = backend["spec"]["template"]["spec"]["containers"]
        assert "--faults" not in container.get("args", [])
        assert "GATEHOUSE_FAKE_BACKEND_FAULTS" not in env_of(container)
