"""The chart's NetworkPolicies, rendered offline and evaluated as Kubernetes would:
for every pair of pods (the release's own, plus an Ingress controller, Prometheus,
the cluster DNS and strangers) and every port, whether a connection is allowed.
The answer must be exactly the paths the design draws, nothing more."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from deploy.charts import NAMESPACE, RELEASE, Rendered, render, render_scenario


@dataclass(frozen=True)
class Pod:
    """A pod as a policy sees it: where it runs, its labels, its named ports."""

    name: str
    namespace: str
    labels: Mapping[str, str]
    ports: Mapping[str, int] = field(default_factory=dict)
    # Outside the cluster (an external database): only rules without peers reach it.
    external: bool = False


OUTSIDE = [
    Pod(
        "ingress",
        "ingress-nginx",
        {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"},
    ),
    Pod("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"}),
    Pod("dns", "kube-system", {"k8s-app": "kube-dns"}, {"dns": 53}),
    # Another workload in the release's namespace, and one elsewhere.
    Pod("stranger", NAMESPACE, {"app": "stranger"}),
    Pod("stranger-elsewhere", "default", {"app": "stranger"}),
]


def release_pods(rendered: Rendered) -> list[Pod]:
    pods = []
    for manifest in rendered.manifests:
        if manifest["kind"] in ("Deployment", "StatefulSet", "Job"):
            labels = manifest["spec"]["template"]["metadata"]["labels"]
            spec = manifest["spec"]["template"]["spec"]
        elif manifest["kind"] == "Pod":
            labels, spec = manifest["metadata"]["labels"], manifest["spec"]
        else:
            continue
        ports = {
            port["name"]: port["containerPort"]
            for container in spec["containers"]
            for port in container.get("ports", [])
        }
        name = manifest["metadata"]["name"].removeprefix(f"{RELEASE}-")
        pods.append(Pod(name, NAMESPACE, labels, ports))
    return pods


def _selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    if selector is None:
        return True
    assert not selector.get("matchExpressions"), "the evaluator reads matchLabels only"
    return dict(selector.get("matchLabels") or {}).items() <= labels.items()


def _peer_matches(peer: Mapping[str, Any], pod: Pod) -> bool:
    if pod.external:
        return False  # no peer names an address outside the cluster
    if "ipBlock" in peer:
        raise AssertionError("the evaluator does not read ipBlock peers")
    if "namespaceSelector" in peer:
        namespace_labels = {"kubernetes.io/metadata.name": pod.namespace}
        if not _selects(peer["namespaceSelector"], namespace_labels):
            return False
    elif pod.namespace != NAMESPACE:
        return False
    return _selects(peer.get("podSelector"), pod.labels)


def _port_matches(ports: Iterable[Mapping[str, Any]] | None, port: int, target: Pod) -> bool:
    if not ports:
        return True
    for rule in ports:
        wanted = rule["port"]
        if wanted == port or (isinstance(wanted, str) and target.ports.get(wanted) == port):
            return True
    return False


def _allowed(policies: list[dict[str, Any]], direction: str, subject: Pod, peer: Pod, port: int,
             target: Pod) -> bool:  # fmt: skip
    """Whether ``subject``'s policies let traffic in from / out to ``peer`` on ``port``."""
    kind, rules_key, peers_key = {
        "ingress": ("Ingress", "ingress", "from"),
        "egress": ("Egress", "egress", "to"),
    }[direction]
    if subject.external or subject.namespace != NAMESPACE:
        return True  # nothing outside the release is restricted by the chart
    applying = [
        p
        for p in policies
        if kind in p["spec"]["policyTypes"] and _selects(p["spec"]["podSelector"], subject.labels)
    ]
    if not applying:
        return True
    for policy in applying:
        for rule in policy["spec"].get(rules_key) or []:
            peers = rule.get(peers_key)
            if (not peers or any(_peer_matches(p, peer) for p in peers)) and _port_matches(
                rule.get("ports"), port, target
            ):
                return True
    return False


def reachable(policies: list[dict[str, Any]], source: Pod, target: Pod, port: int) -> bool:
    return _allowed(policies, "egress", source, target, port, target) and _allowed(
        policies, "ingress", target, source, port, target
    )


def matrix(rendered: Rendered, extra_targets: Iterable[Pod] = ()) -> set[tuple[str, str, int]]:
    """Every (source, target, port) allowed, for every pod and every port it listens on."""
    policies = rendered.kind("NetworkPolicy")
    pods = release_pods(rendered) + OUTSIDE
    targets = [p for p in pods if p.ports] + list(extra_targets)
    return {
        (source.name, target.name, port)
        for source in pods
        for target in targets
        if target is not source
        for port in set(target.ports.values())
        if reachable(policies, source, target, port)
    }


BACKENDS = [f"fake-backend-{n}" for n in range(1, 6)]  # the fifth: service1's canary
RELEASE_PODS = ["gateway", "auth", "accounts-ui", *BACKENDS, "postgres", "redis", "auth-migrate",
                "gatehouse-test-gateway"]  # fmt: skip
FROM_OUTSIDE = ["ingress", "prometheus", "stranger", "stranger-elsewhere", "dns"]
EXPECTED = {
    # Clients (the Ingress controller, anyone) and the test pod: the public port.
    *{(source, "gateway", 8080) for source in [*FROM_OUTSIDE, "gatehouse-test-gateway"]},
    # The admin listener: Prometheus and the test pod only.
    ("prometheus", "gateway", 9901),
    ("gatehouse-test-gateway", "gateway", 9901),
    # The gateway to what it routes to, and its Redis.
    *{("gateway", backend, 9001) for backend in BACKENDS},
    ("gateway", "auth", 8001),
    ("gateway", "accounts-ui", 8002),
    ("gateway", "redis", 6379),
    ("accounts-ui", "auth", 8001),
    ("auth", "postgres", 5432),
    ("auth", "redis", 6379),
    ("auth-migrate", "postgres", 5432),
    # Prometheus to every service's metrics port.
    ("prometheus", "auth", 8001),
    ("prometheus", "accounts-ui", 8002),
    *{("prometheus", backend, 9001) for backend in BACKENDS},
    # Everyone in the release to the cluster DNS (the outside is not ours to restrict).
    *{(source, "dns", 53) for source in [*RELEASE_PODS, *FROM_OUTSIDE] if source != "dns"},
}


def test_only_the_designed_paths_are_open() -> None:
    rendered = render_scenario("defaults")
    assert {p.name for p in release_pods(rendered)} == set(RELEASE_PODS)
    allowed = matrix(rendered)
    assert allowed - EXPECTED == set(), "open beyond the design"
    assert EXPECTED - allowed == set(), "a designed path is closed"


def test_every_release_pod_is_denied_by_default() -> None:
    rendered = render_scenario("defaults")
    policies = rendered.kind("NetworkPolicy")
    (deny,) = [p for p in policies if p["metadata"]["name"].endswith("-default-deny")]
    assert deny["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]
    for pod in release_pods(rendered):
        assert _selects(deny["spec"]["podSelector"], pod.labels), pod.name
    for pod in OUTSIDE:
        assert pod.namespace != NAMESPACE or not _selects(deny["spec"]["podSelector"], pod.labels)


def test_without_policies_everything_is_open() -> None:
    # What the old chart did: any pod could reach Redis, the admin port, auth.
    rendered = render_scenario("network-policy-off")
    assert not rendered.kind("NetworkPolicy")
    allowed = matrix(rendered)
    assert ("stranger", "redis", 6379) in allowed
    assert ("ingress", "gateway", 9901) in allowed


def test_external_database_and_redis_are_reached_on_their_ports_only() -> None:
    rendered = render_scenario("external-database")
    database = Pod("external-postgres", "", {}, {"postgres": 5432}, external=True)
    cache = Pod("external-redis", "", {}, {"redis": 6379}, external=True)
    allowed = matrix(rendered, [database, cache])
    reaching = {(s, t, p) for s, t, p in allowed if t.startswith("external-")}
    assert reaching == {
        ("auth", "external-postgres", 5432),
        ("auth-migrate", "external-postgres", 5432),
        ("auth", "external-redis", 6379),
        ("gateway", "external-redis", 6379),
        *{(s, t, p) for s in FROM_OUTSIDE for t, p in [("external-postgres", 5432),
                                                         ("external-redis", 6379)]},
    }  # fmt: skip
    policies = rendered.kind("NetworkPolicy")
    elsewhere = Pod("external-redis", "", {}, {"redis": 6380}, external=True)
    assert not reachable(policies, _pod(rendered, "gateway"), elsewhere, 6380)


def test_gateway_sources_can_be_narrowed_to_the_ingress_controller() -> None:
    rendered = render(
        {
            "networkPolicy": {
                "gateway": {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}
                            }
                        }
                    ]
                }
            }
        }
    )
    allowed = matrix(rendered)
    into_gateway = {(s, p) for s, t, p in allowed if t == "gateway"}
    assert into_gateway == {
        ("ingress", 8080),
        ("gatehouse-test-gateway", 8080),
        ("gatehouse-test-gateway", 9901),
        ("prometheus", 9901),
    }


def _pod(rendered: Rendered, name: str) -> Pod:
    (pod,) = [p for p in release_pods(rendered) if p.name == name]
    return pod


@pytest.mark.parametrize("off", ["gateway", "fake-backend", "accounts-ui"])
def test_policies_follow_the_subchart_toggles(off: str) -> None:
    values: dict[str, Any] = {off: {"enabled": False}}
    if off == "gateway":
        values["exposure"] = {"type": "none"}
    rendered = render(values)
    names = {p["metadata"]["name"] for p in rendered.kind("NetworkPolicy")}
    assert f"{RELEASE}-gatehouse-{off}" not in names
    assert f"{RELEASE}-gatehouse-default-deny" in names
