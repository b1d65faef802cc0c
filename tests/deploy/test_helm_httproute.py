"""The Gateway API HTTPRoutes the chart renders by default (exposure.type=httpRoute),
validated against a schema of HTTPRoute v1 (``httproute_schema.py``).

That schema is written here from the Gateway API v1 field reference for the
fields a route of this chart can hold: every field name and type, required
fields, enums, patterns, lengths and list sizes, checked strictly (an unknown
field fails). It is not the CRD file, which no package this project can install
ships. What it does not cover: the CRD's CEL rules (``x-kubernetes-validations``),
which only an API server evaluates; the ones that apply to these routes are
asserted by hand below (a Service backend names its port, path prefixes start
with "/", at most 128 matches per route). No API server or Gateway controller
has served these routes here.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest
from deploy.charts import RELEASE, render, render_scenario, scenario_values
from deploy.httproute_schema import HTTPROUTE_V1

PUBLIC = {"name": f"{RELEASE}-gateway", "port": 8080}


def _validator() -> jsonschema.protocols.Validator:
    return jsonschema.Draft7Validator(HTTPROUTE_V1)


VALIDATOR = _validator()


def _errors(manifest: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in VALIDATOR.iter_errors(manifest)
    ]


def _cel_rules_that_apply(route: dict[str, Any]) -> None:
    """The CRD's CEL rules these routes could break, checked here by hand."""
    rules = route["spec"]["rules"]
    assert sum(len(rule.get("matches", [])) for rule in rules) <= 128
    for rule in rules:
        for ref in rule["backendRefs"]:
            if ref.get("group", "") == "" and ref.get("kind", "Service") == "Service":
                assert "port" in ref, ref
        for match in rule.get("matches", []):
            path = match["path"]
            if path["type"] in ("Exact", "PathPrefix"):
                value = path["value"]
                assert value.startswith("/") and "//" not in value, value
                assert "/./" not in f"{value}/" and "/../" not in f"{value}/", value


@pytest.mark.parametrize("scenario", sorted(scenario_values()))
def test_rendered_httproutes_match_the_gateway_api_crd_schema(scenario: str) -> None:
    for route in render_scenario(scenario).kind("HTTPRoute"):
        assert not _errors(route), (route["metadata"]["name"], _errors(route))
        _cel_rules_that_apply(route)


def test_the_schema_check_refuses_what_an_api_server_would() -> None:
    (route, *_) = render_scenario("defaults").kind("HTTPRoute")
    broken = copy.deepcopy(route)
    broken["spec"]["rules"][0]["matches"][0]["path"]["type"] = "Prefix"  # the Ingress's word
    assert any("Prefix" in e for e in _errors(broken))
    broken = copy.deepcopy(route)
    broken["spec"]["hostnames"] = ["Service1.My-Company.com"]
    assert _errors(broken)
    broken = copy.deepcopy(route)
    broken["spec"]["parentRefs"][0]["gatewayName"] = "typo"
    assert _errors(broken)
    broken = copy.deepcopy(route)
    del broken["spec"]["parentRefs"][0]["name"]
    assert _errors(broken)


def test_httproute_is_the_default_and_routes_the_original_hosts_and_paths() -> None:
    rendered = render_scenario("defaults")
    assert not rendered.kind("Ingress")
    routes = {r["metadata"]["name"]: r["spec"] for r in rendered.kind("HTTPRoute")}
    assert set(routes) == {f"{RELEASE}-gatehouse-service-hosts", f"{RELEASE}-gatehouse"}
    hosts = routes[f"{RELEASE}-gatehouse-service-hosts"]
    assert hosts["hostnames"] == ["service1.my-company.com", "service2.my-company.com"]
    assert hosts["rules"] == [
        {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": [PUBLIC]}
    ]
    api = routes[f"{RELEASE}-gatehouse"]
    assert api["hostnames"] == ["gatehouse.local"]
    (rule,) = api["rules"]
    assert [m["path"] for m in rule["matches"]] == [
        {"type": "PathPrefix", "value": p}
        for p in (
            "/account",
            "/login",
            "/logout",
            "/token",
            "/password",
            "/.well-known",
            "/accounts_page",
        )
    ]
    assert rule["backendRefs"] == [PUBLIC]
    for spec in routes.values():
        assert spec["parentRefs"] == [
            {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gatehouse"}
        ]
    assert "get gateway gatehouse" in rendered.notes and "httproutes" in rendered.notes


def test_the_gateway_is_named_in_values() -> None:
    rendered = render(
        {
            "exposure": {
                "httpRoute": {
                    "gateway": {"name": "edge", "namespace": "infra", "sectionName": "https"},
                    "annotations": {"example.com/team": "gatehouse"},
                },
                "serviceHosts": [],
            }
        }
    )
    (route,) = rendered.kind("HTTPRoute")  # no service hosts: no route for them
    assert route["spec"]["parentRefs"] == [
        {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": "edge",
            "namespace": "infra",
            "sectionName": "https",
        }
    ]
    assert route["metadata"]["annotations"] == {"example.com/team": "gatehouse"}
    assert not _errors(route)


def test_httproutes_never_route_to_the_admin_listener() -> None:
    """The admin listener (9901: /-/config, the admin API, metrics) stays on its
    own ClusterIP Service, which no HTTPRoute names, whatever the values."""
    for values in ({}, {"gateway": {"service": {"type": "LoadBalancer", "adminPort": 9911}}}):
        rendered = render(values)
        admin = rendered.named("Service", f"{RELEASE}-gateway-admin")
        assert admin["spec"]["type"] == "ClusterIP"
        admin_ports = {p["port"] for p in admin["spec"]["ports"]}
        routes = rendered.kind("HTTPRoute")
        assert routes
        for route in routes:
            for rule in route["spec"]["rules"]:
                for ref in rule["backendRefs"]:
                    assert ref == PUBLIC, ref
                    assert ref["name"] != admin["metadata"]["name"]
                    assert ref["port"] not in admin_ports | {9901}
