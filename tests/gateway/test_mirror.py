"""Request mirroring (policy/mirror.py) against a real gateway and real backends.

One gateway serves a route per case (its own Host), so every count below is
the route's own. The real backend is a fake backend process (its echo says
what it received); the mirror groups are raw-socket backends in this process:
one that records each copy it gets, two that hang, and a closed port. Nothing
here asserts a duration: the hanging mirrors are tested by what the real
requests got and by the counts, waited for with bounded polling.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from adversarial.backends import ScriptedBackend
from gateway.test_upstream_pool import KeepAliveBackend, finish, get, shut
from support.backends import fake_backend
from support.gateway import (
    GatewayProcess,
    gateway_process,
    gateway_route,
    metric_value,
    write_yaml,
)
from support.processes import ServiceProcess, free_port, started_together

from gatehouse_gateway.backend_state import BackendState
from gatehouse_gateway.config.loader import ConfigError, parse_config
from gatehouse_gateway.config.schema import PassiveHealthConfig
from gatehouse_gateway.policy.mirror import Mirror, has_room
from gatehouse_gateway.upstream.h1 import UpstreamClient

HANG_LIMIT = 60.0  # a hanging mirror backend lets go after this, or at teardown


@dataclass(frozen=True)
class Copy:
    """One request as the recording mirror backend received it."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes


class Recorder:
    """A mirror backend that keeps every request it gets and answers 200."""

    def __init__(self) -> None:
        self.copies: list[Copy] = []
        self.lock = threading.Lock()
        self.backend = ScriptedBackend(self._serve)
        self.url = self.backend.url

    def _serve(self, conn: socket.socket, data: bytes) -> None:
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        with self.lock:
            self.copies.append(Copy(method, target, headers, body))
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\ncopied")

    def of(self, host: str) -> list[Copy]:
        with self.lock:
            return [copy for copy in self.copies if copy.headers.get("host") == host]


class Hanger:
    """A mirror backend that reads a request and never answers until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.backend = ScriptedBackend(lambda _conn, _head: self.release.wait(HANG_LIMIT) and None)
        self.url = self.backend.url

    def close(self) -> None:
        self.release.set()
        self.backend.close()


@dataclass
class Setup:
    gateway: GatewayProcess
    document: dict[str, Any]
    recorder: Recorder
    bounded: Hanger
    # a gateway allowed one connection per backend, its mirror hanging
    narrow: GatewayProcess
    narrow_mirror: Hanger

    def value(self, name: str, **labels: str) -> float:
        return metric_value(self.gateway.metrics(), name, **labels)

    def config(self) -> Any:
        """The gateway's own view of its routes (``/-/config`` on the admin listener)."""
        return httpx.get(self.gateway.admin_url + "/-/config", timeout=10).json()


ROUTES = {
    # host -> the route's mirror block, and which backend is its mirror group
    "copies": ({"percent": 100}, "recorder"),
    "sampled": ({"percent": 30}, "recorder"),
    "never": ({"percent": 0}, "recorder"),
    "dead": ({"timeout": 5}, "dead"),
    "hang": ({"timeout": 1, "max_concurrent": 64}, "hang"),
    "bounded": ({"timeout": HANG_LIMIT, "max_concurrent": 2}, "bounded"),
    "small": ({"max_body_bytes": 1000}, "recorder"),
}
ENV = {"REDIS_URL": "", "GATEHOUSE_GATEWAY_LOG_LEVEL": "info"}


def mirrored_route(name: str, primary: ServiceProcess, mirror_url: str, **mirror: Any) -> Any:
    return gateway_route(
        [primary],
        name=name,
        hosts=[f"{name}.test"],
        groups=[{"name": "shadow", "backends": [{"url": mirror_url}]}],
        mirror={"group": "shadow", **mirror},
    )


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """The backends and both gateways, started side by side (the machine may be busy)."""
    directory = tmp_path_factory.mktemp("mirror")
    recorder, hang, bounded, narrow_mirror = Recorder(), Hanger(), Hanger(), Hanger()
    urls = {
        "recorder": recorder.url,
        "dead": f"http://127.0.0.1:{free_port()}",  # nothing listens there
        "hang": hang.url,
        "bounded": bounded.url,
    }
    primary = fake_backend("primary-1")
    routes = [gateway_route([primary], name="plain", hosts=["plain.test"])]
    for name, (mirror, group) in ROUTES.items():
        route = mirrored_route(name, primary, urls[group], **mirror)
        if name == "small":
            route["limits"] = {"buffer_body_bytes": 2000}
        routes.append(route)
    document = {"routes": routes}
    write_yaml(directory / "gateway.yaml", document)
    gateway = gateway_process(directory / "gateway.yaml", env=ENV)
    narrow_route = mirrored_route(
        "narrow", primary, narrow_mirror.url, timeout=HANG_LIMIT, max_concurrent=10
    )
    write_yaml(directory / "narrow.yaml", {"routes": [narrow_route]})
    narrow = gateway_process(
        directory / "narrow.yaml",
        name="narrow-gateway",
        env={**ENV, "GATEHOUSE_GATEWAY_UPSTREAM_BACKEND_CONNECTION_LIMIT": "1"},
    )
    try:
        with started_together(primary, gateway, narrow):
            yield Setup(gateway, document, recorder, bounded, narrow, narrow_mirror)
    finally:
        for backend in (hang, bounded, narrow_mirror):
            backend.close()
        recorder.backend.close()


def wait_for(check: Callable[[], bool], what: str, tries: int = 300) -> None:
    """Poll ``check`` (bounded: ``tries`` times, 0.1 s apart)."""
    for _ in range(tries):
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


def settled(setup: Setup, route: str) -> None:
    """Wait until no copy of ``route`` is under way (every one answered, failed or dropped)."""
    wait_for(
        lambda: setup.value("gateway_mirror_in_flight", route=route) == 0,
        f"{route}: no copy in flight",
    )


def send_batch(gateway: GatewayProcess, host: str, count: int) -> list[tuple[Any, ...]]:
    """``count`` requests (GET, POST with a small body, PUT with none) and what each got.

    Every answer is checked to be the real backend's echo of that very
    request; the tuples returned say so in a form two routes can be compared by.
    """
    seen = []
    with gateway.client(headers={"Host": host}) as client:
        for number in range(count):
            method = ("GET", "POST", "PUT")[number % 3]
            body = f"payload {number}".encode() if method == "POST" else b""
            answer = client.request(method, f"/item/{number}", params={"n": number}, content=body)
            echo = answer.json()
            assert answer.status_code == 200, (host, number, answer.text)
            assert echo["instance"] == "primary-1"
            assert (echo["method"], echo["path"]) == (method, f"/item/{number}")
            assert echo["body"] == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
            seen.append((answer.status_code, echo["method"], echo["path"], echo["query"]))
    return seen


def test_copies_reach_the_mirror_group(setup: Setup) -> None:
    """With percent 100 every request is copied: method, target, headers and body as sent."""
    sent = []
    with setup.gateway.client(headers={"Host": "copies.test"}) as client:
        for method, target, body in [
            ("GET", "/a?x=1", b""),
            ("POST", "/b", b'{"hello": "mirror"}'),
            ("DELETE", "/c/d", b""),
            ("PATCH", "/e", bytes(range(256)) * 3),
        ]:
            answer = client.request(method, target, content=body)
            assert answer.status_code == 200 and answer.json()["instance"] == "primary-1"
            sent.append((method, target, body, answer.headers["x-request-id"]))
    wait_for(lambda: len(setup.recorder.of("copies.test")) == len(sent), "every copy recorded")
    copies = {copy.headers["x-request-id"]: copy for copy in setup.recorder.of("copies.test")}
    for method, target, body, request_id in sent:
        copy = copies[request_id]  # the copy carries the real request's id
        assert (copy.method, copy.target, copy.body) == (method, target, body)
        assert copy.headers["x-forwarded-host"] == "copies.test"
    settled(setup, "copies")
    assert setup.value("gateway_mirror_requests_total", route="copies") == len(sent)
    assert setup.value("gateway_mirror_responses_total", route="copies", code="2xx") == len(sent)
    assert setup.value("gateway_mirror_dropped_total", route="copies") == 0


def test_percent_samples_a_share_of_the_requests(setup: Setup) -> None:
    """30%: about 45 of 150 are copied (the bound is loose: over 5 standard deviations)."""
    send_batch(setup.gateway, "sampled.test", 150)
    send_batch(setup.gateway, "never.test", 30)
    settled(setup, "sampled")
    copied = setup.value("gateway_mirror_requests_total", route="sampled")
    assert 15 <= copied <= 75, copied
    wait_for(lambda: len(setup.recorder.of("sampled.test")) == copied, "the copies recorded")
    settled(setup, "never")
    assert setup.value("gateway_mirror_requests_total", route="never") == 0
    assert setup.value("gateway_mirror_dropped_total", route="never") == 0
    assert setup.recorder.of("never.test") == []


def test_a_dead_mirror_costs_the_real_requests_nothing(setup: Setup) -> None:
    """Copies to a closed port fail, counted; the real answers are those of a route without
    a mirror, request for request."""
    assert send_batch(setup.gateway, "dead.test", 30) == send_batch(setup.gateway, "plain.test", 30)
    settled(setup, "dead")
    assert setup.value("gateway_mirror_requests_total", route="dead") == 30
    assert setup.value("gateway_mirror_failures_total", route="dead", reason="connect_error") == 30


def test_a_hanging_mirror_costs_the_real_requests_nothing(setup: Setup) -> None:
    """A mirror that never answers: real answers as without a mirror; copies end at the
    mirror's timeout, or are dropped while the bound is full."""
    assert send_batch(setup.gateway, "hang.test", 30) == send_batch(setup.gateway, "plain.test", 30)
    settled(setup, "hang")  # the copies' timeout (1 s) let every one go
    copied = setup.value("gateway_mirror_requests_total", route="hang")
    dropped = setup.value("gateway_mirror_dropped_total", route="hang")
    assert copied + dropped == 30 and copied >= 1
    assert setup.value("gateway_mirror_failures_total", route="hang", reason="timeout") == copied


def test_the_concurrency_bound_drops_and_counts(setup: Setup) -> None:
    """max_concurrent 2 with a mirror that holds every copy: 2 under way, the rest dropped
    at once (never queued), and the real requests all answered meanwhile."""
    send_batch(setup.gateway, "bounded.test", 10)
    wait_for(lambda: setup.bounded.backend.connections == 2, "two copies reached the mirror")
    assert setup.value("gateway_mirror_in_flight", route="bounded") == 2
    assert setup.value("gateway_mirror_requests_total", route="bounded") == 2
    (shown,) = [r for r in setup.config()["routes"] if r["name"] == "bounded"]
    assert shown["mirror"] == {
        "group": "shadow",
        "percent": 100.0,
        "max_concurrent": 2,
        "max_body_bytes": 65536,
        "timeout": HANG_LIMIT,
        "in_flight": 2,
    }
    assert setup.value("gateway_mirror_dropped_total", route="bounded", reason="concurrency") == 8
    # A reload builds a new mirror for the route; the copies still under way count against it.
    for route in setup.document["routes"]:
        if route["name"] == "bounded":
            route["mirror"] = {**route["mirror"], "timeout": HANG_LIMIT - 1}
    setup.gateway.write_config(setup.document)
    wait_for(
        lambda: setup.value("gateway_config_reloads_total", outcome="success") >= 1,
        "the gateway reloaded",
    )
    send_batch(setup.gateway, "bounded.test", 5)
    assert setup.value("gateway_mirror_dropped_total", route="bounded", reason="concurrency") == 13
    assert setup.bounded.backend.connections == 2
    setup.bounded.release.set()  # the mirror hangs up without an answer
    settled(setup, "bounded")
    assert setup.value("gateway_mirror_failures_total", route="bounded", reason="reset") == 2
    assert setup.bounded.backend.connections == 2


def test_only_small_buffered_bodies_are_copied(setup: Setup) -> None:
    """Over max_body_bytes, or streamed (chunked, or past the route's buffer_body_bytes),
    a body is not copied and the client's stream is the real backend's alone."""
    bodies = {
        "fits": (b"a" * 1000, None),
        "over the mirror's limit": (b"b" * 1001, "body_too_large"),
        "over the route's buffer": (b"c" * 3000, "body_not_buffered"),
        "chunked": (b"d" * 500, "body_not_buffered"),
    }
    with setup.gateway.client(headers={"Host": "small.test"}) as client:
        for label, (body, _) in bodies.items():
            content: Any = body
            if label == "chunked":
                content = iter([body[:200], body[200:]])  # no length: sent chunked
            answer = client.post("/upload", content=content)
            echo = answer.json()
            assert answer.status_code == 200, label
            assert echo["body"] == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    settled(setup, "small")
    assert [copy.body for copy in setup.recorder.of("small.test")] == [bodies["fits"][0]]
    for reason in ("body_too_large", "body_not_buffered"):
        expected = sum(1 for _, why in bodies.values() if why == reason)
        assert setup.value("gateway_mirror_dropped_total", route="small", reason=reason) == expected


def test_a_copy_never_queues_for_an_upstream_connection(setup: Setup) -> None:
    """One connection per backend allowed: while a copy holds the mirror's, the next copies
    are dropped (upstream_busy) at once rather than queued behind it."""
    with setup.narrow.client(headers={"Host": "narrow.test"}) as client:
        for number in range(5):
            answer = client.get(f"/n/{number}")
            assert answer.status_code == 200 and answer.json()["instance"] == "primary-1"
    wait_for(lambda: setup.narrow_mirror.backend.connections == 1, "one copy reached the mirror")
    text = setup.narrow.metrics()
    assert metric_value(text, "gateway_mirror_requests_total", route="narrow") == 1
    assert metric_value(text, "gateway_mirror_dropped_total", reason="upstream_busy") == 4
    assert metric_value(text, "gateway_mirror_in_flight", route="narrow") == 1


async def test_room_means_a_connection_without_waiting() -> None:
    """has_room, against a real keep-alive backend: a place under the caps or a fresh idle
    connection is room; a stale idle one at the cap, or a request queued ahead, is not."""
    backend = await KeepAliveBackend().start()
    client = UpstreamClient(backend_limit=1)
    target = BackendState("r", backend.url, 1, PassiveHealthConfig())
    try:
        assert has_room(client, target)  # nothing open yet
        held = await get(client, backend.url)
        assert not has_room(client, target)  # the one place is taken
        queued = asyncio.ensure_future(get(client, backend.url, pool_timeout=10))
        await finish(held)  # handed to the queued request, not left idle
        await finish(await queued)
        assert has_room(client, target)  # idle and fresh: acquire takes it at once
        client.keepalive = 0.0  # now too old to be reused: acquire would close it and wait
        assert not has_room(client, target)
    finally:
        await shut(client, backend)


# --- config: hostile values are errors at load --------------------------------------------


def _config(mirror: Any, groups: Any = None) -> dict[str, Any]:
    route = {"name": "r", "backends": [{"url": "http://127.0.0.1:9001"}], "mirror": mirror}
    route["groups"] = (
        groups if groups is not None else [{"name": "shadow", "backends": [{"url": "http://m:1"}]}]
    )
    return {"cursor": {"store": "local"}, "routes": [route]}


@pytest.mark.unit
def test_defaults_are_bounded() -> None:
    route = parse_config(_config({"group": "shadow"})).config.routes[0]
    mirror = route.mirror
    assert mirror is not None
    assert (mirror.percent, mirror.max_concurrent, mirror.max_body_bytes, mirror.timeout) == (
        100.0,
        32,
        64 * 1024,
        5.0,
    )


@pytest.mark.unit
@pytest.mark.parametrize(
    ("mirror", "groups", "complaint"),
    [
        ({"group": "nowhere"}, None, "not one of the route's groups"),
        ({"group": "primary"}, None, "another group"),
        ({"group": "shadow"}, [], "not one of the route's groups"),
        ({"group": "../x"}, None, "group"),
        ({}, None, "group"),
        ({"group": "shadow", "percent": 101}, None, "percent"),
        ({"group": "shadow", "percent": -1}, None, "percent"),
        ({"group": "shadow", "percent": float("nan")}, None, "percent"),
        ({"group": "shadow", "percent": "10"}, None, "percent"),
        ({"group": "shadow", "percent": True}, None, "percent"),
        ({"group": "shadow", "max_concurrent": 0}, None, "max_concurrent"),
        ({"group": "shadow", "max_concurrent": 10_001}, None, "max_concurrent"),
        ({"group": "shadow", "max_concurrent": 2.5}, None, "max_concurrent"),
        ({"group": "shadow", "max_body_bytes": -1}, None, "max_body_bytes"),
        ({"group": "shadow", "max_body_bytes": 1 << 30}, None, "max_body_bytes"),
        ({"group": "shadow", "timeout": 0}, None, "timeout"),
        ({"group": "shadow", "timeout": float("inf")}, None, "timeout"),
        ({"group": "shadow", "timeout": 301}, None, "timeout"),
        ({"group": "shadow", "percentage": 5}, None, "percentage"),
        ("shadow", None, "mirror"),
    ],
)
def test_hostile_mirror_config_is_refused(mirror: Any, groups: Any, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        parse_config(_config(mirror, groups))


@pytest.mark.unit
@pytest.mark.parametrize("percent", [0.0, 0.5, 25.0, 99.0, 100.0])
def test_sampling_follows_the_percent(percent: float) -> None:
    """Seeded, so exact in the test; the share is within 1.5 points of 20,000 draws."""
    config = parse_config(_config({"group": "shadow", "percent": percent})).config.routes[0]
    assert config.mirror is not None
    mirror = Mirror(config.mirror, "r", None, rng=random.Random(7))  # type: ignore[arg-type]
    share = sum(mirror.sampled() for _ in range(20_000)) / 200
    assert abs(share - percent) <= 1.5, share
    if percent in (0.0, 100.0):
        assert share == percent
