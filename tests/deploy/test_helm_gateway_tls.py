"""The gateway's TLS listener in the Helm chart: off by default; on, the certificate
of an existing kubernetes.io/tls Secret, a listener the gateway loads, and the
port in the Service and the NetworkPolicy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from deploy.charts import RELEASE, gateway_config_text, render_scenario

from gatehouse_gateway.config.loader import load_config

SECRET = "gatehouse-gateway-tls"  # ci/gateway-tls-values.yaml


def _gateway_pod(scenario: str) -> dict[str, Any]:
    deployment = render_scenario(scenario).named("Deployment", f"{RELEASE}-gateway")
    pod: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return pod


def _public_ports(scenario: str) -> list[Any]:
    rendered = render_scenario(scenario)
    (policy,) = [
        p
        for p in rendered.kind("NetworkPolicy")
        if p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name")
        == "gateway"
    ]
    # the first ingress rule is the public one; the admin port has its own
    return [port["port"] for port in policy["spec"]["ingress"][0]["ports"]]


def test_off_by_default_no_tls_listener_port_or_volume() -> None:
    rendered = render_scenario("defaults")
    assert "listeners" not in yaml.safe_load(gateway_config_text(rendered))
    pod = _gateway_pod("defaults")
    assert [p["name"] for p in pod["containers"][0]["ports"]] == ["http", "admin"]
    assert all("secret" not in volume for volume in pod["volumes"])
    service = rendered.named("Service", f"{RELEASE}-gateway")
    assert [p["name"] for p in service["spec"]["ports"]] == ["http"]
    assert _public_ports("defaults") == ["http"]


def test_on_the_secret_is_mounted_where_the_listener_reads_it(tmp_path: Path) -> None:
    rendered = render_scenario("gateway-tls")
    text = gateway_config_text(rendered)
    (listener,) = yaml.safe_load(text)["listeners"]
    assert listener["port"] == 8443
    assert listener["address"] == "0.0.0.0"
    (certificate,) = listener["tls"]["certificates"]
    pod = _gateway_pod("gateway-tls")
    (volume,) = [v for v in pod["volumes"] if "secret" in v]
    assert volume["secret"]["secretName"] == SECRET
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] is True
    # a kubernetes.io/tls Secret's keys, under the mount
    assert certificate == {
        "cert_file": f"{mount['mountPath']}/tls.crt",
        "key_file": f"{mount['mountPath']}/tls.key",
    }
    ports = {p["name"]: p["containerPort"] for p in pod["containers"][0]["ports"]}
    assert ports["https"] == 8443
    # the gateway takes the rendered config, listener included
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    loaded = load_config(path)
    assert [entry.port for entry in loaded.config.listeners] == [8443]


def test_on_the_service_and_network_policy_open_the_https_port() -> None:
    service = render_scenario("gateway-tls").named("Service", f"{RELEASE}-gateway")
    https = {p["name"]: p for p in service["spec"]["ports"]}["https"]
    assert (https["port"], https["targetPort"]) == (8443, "https")
    assert _public_ports("gateway-tls") == ["http", "https"]
