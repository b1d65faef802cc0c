"""The chart's values: documented and schema-checked, the toggles doing what they
say, bad values refused with every mistake named, secrets generated right."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from deploy.charts import CHART, RELEASE, SUBCHARTS, env_of, render, render_scenario
from deploy.redis_acl import check_service_users, redis_with_acl

CHART_DIRS = [CHART, *(CHART / "charts" / name for name in SUBCHARTS)]
ALERT_RULES = CHART.parents[1] / "alerts" / "gatehouse-rules.yml"


def _leaves(values: Any, prefix: str = "") -> list[str]:
    if isinstance(values, dict) and values:
        return [leaf for key, value in values.items() for leaf in _leaves(value, f"{prefix}/{key}")]
    return [prefix]


def _schema_node(schema: dict[str, Any], pointer: str) -> dict[str, Any] | None:
    node: dict[str, Any] | None = schema
    for part in filter(None, pointer.split("/")):
        if node is None or "properties" not in node or part not in node["properties"]:
            # A free-form object (the gateway config, annotations) ends the walk.
            return node if node is not None and node.get("additionalProperties", True) else None
        node = node["properties"][part]
    return node


@pytest.mark.parametrize("chart", CHART_DIRS, ids=lambda p: p.name)
def test_every_value_is_described_in_the_schema(chart: Path) -> None:
    text = (chart / "values.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=values.schema.json\n")
    schema = json.loads((chart / "values.schema.json").read_text())
    missing = []
    for leaf in _leaves(yaml.safe_load(text)):
        node = _schema_node(schema, leaf)
        if node is None or not node.get("description"):
            missing.append(leaf)
    assert not missing, f"{chart.name}: values without a described schema entry: {missing}"


def test_chart_alert_rules_are_the_deploy_alerts_source() -> None:
    copy = CHART / "files" / "gatehouse-rules.yml"
    assert copy.read_bytes() == ALERT_RULES.read_bytes(), (
        "deploy/helm/gatehouse/files/gatehouse-rules.yml differs from deploy/alerts/"
        "gatehouse-rules.yml: copy the source over it"
    )


def test_prometheus_operator_toggle_swaps_annotations_for_crds() -> None:
    plain = render_scenario("defaults")
    assert not plain.kind("ServiceMonitor") and not plain.kind("PrometheusRule")
    annotated = [
        w
        for w in plain.workloads()
        if "prometheus.io/scrape" in w["spec"]["template"]["metadata"].get("annotations", {})
    ]
    assert len(annotated) == 8  # gateway, auth, accounts-ui, five fake backends
    operator = render_scenario("prometheus-operator")
    monitors = {m["metadata"]["name"] for m in operator.kind("ServiceMonitor")}
    assert monitors == {
        f"{RELEASE}-{name}" for name in ("gateway", "auth", "accounts-ui", "fake-backend")
    }
    for workload in operator.workloads():
        assert "prometheus.io/scrape" not in workload["spec"]["template"]["metadata"].get(
            "annotations", {}
        )
    (rule,) = operator.kind("PrometheusRule")
    assert rule["spec"] == yaml.safe_load(ALERT_RULES.read_text())


def test_external_database_drops_the_bundled_ones_and_migrates_first() -> None:
    rendered = render_scenario("external-database")
    assert not rendered.kind("StatefulSet")
    names = {m["metadata"]["name"] for m in rendered.manifests}
    assert f"{RELEASE}-redis" not in names and f"{RELEASE}-database" not in names
    (job,) = rendered.kind("Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    env = env_of(job["spec"]["template"]["spec"]["containers"][0])
    assert env["DATABASE_PASSWORD"]["secretKeyRef"]["name"] == "gatehouse-database"
    assert "@postgres.example.internal:5432/" in env["DATABASE_URL"]
    gateway = rendered.named("Deployment", f"{RELEASE}-gateway")["spec"]["template"]["spec"]
    assert env_of(gateway["containers"][0])["REDIS_URL"] == "redis://redis.example.internal:6379/0"
    bundled = render_scenario("defaults").kind("Job")[0]
    assert bundled["metadata"]["annotations"]["helm.sh/hook"] == "post-install,pre-upgrade"


@pytest.mark.parametrize(
    "url",
    [
        "redis+cluster://gatehouse:pw@redis-0.redis:6379,redis-1.redis:6379/",
        "redis+sentinel://gatehouse:pw@sentinel-0:26379,sentinel-1:26379/gatehouse/0",
    ],
)
def test_an_external_redis_cluster_or_sentinel_url_reaches_both_services(url: str) -> None:
    rendered = render({"redis": {"enabled": False}, "global": {"redis": {"url": url}}})
    for service in ("gateway", "auth"):
        spec = rendered.named("Deployment", f"{RELEASE}-{service}")["spec"]["template"]["spec"]
        assert env_of(spec["containers"][0])["REDIS_URL"] == url


def test_ingress_routes_the_original_hosts_and_paths_to_the_gateway() -> None:
    assert not render_scenario("defaults").kind("Ingress")
    (ingress,) = render_scenario("ingress").kind("Ingress")
    assert not render_scenario("ingress").kind("HTTPRoute")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    routes = {
        (rule["host"], path["path"]): path["backend"]["service"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert set(routes) == {
        ("service1.my-company.com", "/"),
        ("service2.my-company.com", "/"),
        ("gatehouse.local", "/account"),
        ("gatehouse.local", "/login"),
        ("gatehouse.local", "/logout"),
        ("gatehouse.local", "/token"),
        ("gatehouse.local", "/password"),
        ("gatehouse.local", "/.well-known"),
        ("gatehouse.local", "/accounts_page"),
    }
    assert all(
        s == {"name": f"{RELEASE}-gateway", "port": {"number": 8080}} for s in routes.values()
    )
    notes = render_scenario("ingress").notes
    assert "$(minikube ip) service1.my-company.com service2.my-company.com gatehouse.local" in notes


def test_exposure_none_renders_neither_and_says_port_forward() -> None:
    rendered = render_scenario("exposure-none")
    assert not rendered.kind("Ingress") and not rendered.kind("HTTPRoute")
    assert "port-forward" in rendered.notes


def test_generated_secrets_hold_a_usable_signing_key_and_passwords() -> None:
    rendered = render_scenario("defaults")
    auth = rendered.named("Secret", f"{RELEASE}-auth-secrets")["data"]
    key = load_pem_private_key(base64.b64decode(auth["signing.pem"]), password=None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    assert len(base64.b64decode(auth["admin-password"])) >= 24
    database = base64.b64decode(rendered.named("Secret", f"{RELEASE}-database")["data"]["password"])
    assert database.isalnum() and len(database) >= 32
    rsa_key = render({"auth": {"jwt": {"algorithm": "RS256"}}}).named(
        "Secret", f"{RELEASE}-auth-secrets"
    )
    assert isinstance(
        load_pem_private_key(base64.b64decode(rsa_key["data"]["signing.pem"]), None),
        rsa.RSAPrivateKey,
    )


def test_existing_secrets_replace_the_generated_ones() -> None:
    rendered = render(
        {
            "auth": {"jwt": {"existingSecret": "my-keys"}, "admin": {"existingSecret": "my-admin"}},
            "accounts-ui": {"csrf": {"existingSecret": "my-csrf"}},
            "global": {"database": {"existingSecret": "my-db"}},
        }
    )
    # Only the bundled Redis's users remain generated (they exist only with it).
    assert [s["metadata"]["name"] for s in rendered.kind("Secret")] == [f"{RELEASE}-redis-users"]
    auth = rendered.named("Deployment", f"{RELEASE}-auth")["spec"]["template"]["spec"]
    assert auth["volumes"][0]["secret"]["secretName"] == "my-keys"
    assert (
        env_of(auth["containers"][0])["GATEHOUSE_ADMIN_PASSWORD"]["secretKeyRef"]["name"]
        == "my-admin"
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"gateway": {"replicaCount": 0}}, "/replicaCount"),
        ({"auth": {"bcryptRounds": 4}}, "/bcryptRounds"),
        ({"auth": {"jwt": {"algorithm": "HS256"}}}, "/jwt/algorithm"),
        ({"fake-backend": {"errorRate": 2}}, "/errorRate"),
        ({"global": {"redis": {"url": "http://not-redis"}}}, "/global/redis/url"),
        ({"global": {"redis": {"url": "redis+memcached://h:11211"}}}, "/global/redis/url"),
        ({"exposure": {"paths": ["no-slash"]}}, "/exposure/paths/0"),
        ({"exposure": {"type": "gateway"}}, "/exposure/type"),
        ({"exposure": {"host": "Not A Host"}}, "/exposure/host"),
        ({"exposure": {"httpRoute": {"gateway": {"name": ""}}}}, "/httpRoute/gateway/name"),
        ({"ingress": {"enabled": True}}, "ingress"),
        ({"gateway": {"unknown": 1}}, "unknown"),
        ({"gateway": {"config": {"routes": []}}}, "/config/routes"),
        ({"auth": {"trustedProxies": ["everyone"]}}, "/trustedProxies/0"),
        ({"networkPolicy": {"enabled": "yes"}}, "/networkPolicy/enabled"),
        ({"gateway": {"service": {"adminPort": 0}}}, "/service/adminPort"),
        ({"gateway": {"tls": {"enabled": True}}}, "/tls/secretName"),
        ({"gateway": {"tls": {"secretName": "Not A Name"}}}, "/tls/secretName"),
        ({"gateway": {"tls": {"servicePort": 0}}}, "/tls/servicePort"),
    ],
)
def test_bad_values_are_refused_by_the_schema(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm_python.HelmValuesError, match=message):
        render(values)


def test_inconsistent_values_are_refused_with_every_mistake_named() -> None:
    with pytest.raises(helm_python.HelmRenderError) as refused:
        render(
            {
                "postgres": {"enabled": False},
                "redis": {"enabled": False},
                "gateway": {"enabled": False},
            }
        )
    message = str(refused.value)
    for expected in (
        "needs global.database.host",
        "needs global.database.existingSecret",
        "needs global.redis.url",
        "exposure.type=httpRoute needs gateway.enabled",
    ):
        assert expected in message
    with pytest.raises(helm_python.HelmRenderError, match="minReplicas must not exceed"):
        render({"gateway": {"autoscaling": {"minReplicas": 5, "maxReplicas": 3}}})


def test_auth_trusted_proxies_must_be_given_explicitly() -> None:
    # No silent default: the pod network differs from cluster to cluster, and a
    # wrong one either lets any pod pick its rate-limit bucket or none.
    with pytest.raises(helm_python.HelmRenderError, match=r"auth\.trustedProxies must be set"):
        render(required=False)

    def trusted(values: dict[str, Any]) -> str:
        auth = render(values).named("Deployment", f"{RELEASE}-auth")["spec"]["template"]["spec"]
        value: str = env_of(auth["containers"][0])["GATEHOUSE_AUTH_TRUSTED_PROXIES"]
        return value

    assert json.loads(trusted({})) == ["10.244.0.0/16"]
    assert json.loads(trusted({"auth": {"trustedProxies": []}})) == []
    assert json.loads(trusted({"auth": {"trustedProxies": ["10.42.0.0/16", "fd00::/64"]}})) == [
        "10.42.0.0/16",
        "fd00::/64",
    ]


def test_bundled_redis_has_a_user_per_service_and_no_open_door(tmp_path: Path) -> None:
    rendered = render_scenario("defaults")
    secret = rendered.named("Secret", f"{RELEASE}-redis-users")["data"]
    decoded = {key: base64.b64decode(value).decode() for key, value in secret.items()}
    for user in ("gateway", "auth"):
        password = decoded[f"{user}-password"]
        assert password.isalnum() and len(password) >= 32
        assert password not in decoded["users.acl"]  # hashes only
    redis_pod = rendered.named("Deployment", f"{RELEASE}-redis")["spec"]["template"]["spec"]
    (container,) = redis_pod["containers"]
    assert "--protected-mode" not in container["args"]
    assert container["args"][container["args"].index("--aclfile") + 1] == "/etc/redis/users.acl"
    (volume,) = [v for v in redis_pod["volumes"] if v["name"] == "users"]
    assert volume["secret"]["secretName"] == f"{RELEASE}-redis-users"
    # REDIS_URL as each service's container gets it, $(REDIS_PASSWORD) expanded.
    urls = {}
    for user in ("gateway", "auth"):
        spec = rendered.named("Deployment", f"{RELEASE}-{user}")["spec"]["template"]["spec"]
        env = env_of(spec["containers"][0])
        reference = env["REDIS_PASSWORD"]["secretKeyRef"]
        assert reference["name"] == f"{RELEASE}-redis-users"
        urls[user] = env["REDIS_URL"].replace("$(REDIS_PASSWORD)", decoded[reference["key"]])
        assert urls[user].startswith(f"redis://{user}:")
    acl = tmp_path / "users.acl"
    acl.write_text(decoded["users.acl"])
    with redis_with_acl(acl) as port:
        check_service_users(port, urls)
        for probe in ("livenessProbe", "readinessProbe"):
            command = list(container[probe]["exec"]["command"])
            command[-1] = command[-1].replace("redis-cli", f"redis-cli -p {port}")
            assert subprocess.run(command, timeout=10, check=False).returncode == 0, probe
