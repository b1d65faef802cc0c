"""The head rules in process: what a client's headers become before a backend sees them."""

from __future__ import annotations

from typing import Any

import pytest

from gatehouse_gateway.config.schema import EdgeConfig
from gatehouse_gateway.edge.head import HeadRules, Refusal

pytestmark = pytest.mark.unit


def scope(*headers: tuple[bytes, bytes], path: bytes = b"/x", client: str = "198.51.100.7") -> Any:
    return {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path.decode(),
        "raw_path": path,
        "query_string": b"",
        "headers": [(b"host", b"app.test"), *headers],
        "client": (client, 40000),
        "server": ("127.0.0.1", 8080),
    }


def names(rules: HeadRules, *headers: tuple[bytes, bytes]) -> list[bytes]:
    return [name for name, _ in rules.read(scope(*headers)).headers]


FORGED = [
    (b"x_auth_roles", b"admin"),
    (b"x_auth_subject", b"1"),
    (b"x_auth-email", b"root@example.com"),
    (b"x-auth-roles", b"admin"),
    (b"x_forwarded_for", b"10.0.0.1"),
    (b"x_real_ip", b"10.0.0.1"),
    (b"x_request_id", b"forged"),
]


@pytest.mark.parametrize("policy", ["drop", "allow"])
def test_no_spelling_of_a_header_the_gateway_sets_passes(policy: str) -> None:
    rules = HeadRules(EdgeConfig(underscores_in_headers=policy))  # type: ignore[arg-type]
    kept = names(rules, *FORGED, (b"x_custom", b"1"), (b"x-custom", b"2"))
    assert not any(
        n.replace(b"_", b"-").startswith((b"x-auth", b"x-forw", b"x-real")) for n in kept
    )
    assert b"x-custom" in kept
    assert (b"x_custom" in kept) is (policy == "allow")


def test_underscores_can_be_refused() -> None:
    rules = HeadRules(EdgeConfig(underscores_in_headers="reject"))
    with pytest.raises(Refusal) as refused:
        rules.read(scope((b"x_custom", b"1")))
    assert refused.value.status == 400


@pytest.mark.parametrize(
    "headers",
    [
        [(b"authorization", b"Bearer a"), (b"authorization", b"Bearer b")],
        [(b"host", b"other.test")],
        [(b"host", b'evil"; for=1.2.3.4')],
        [(b"host", b"a b")],
    ],
)
def test_a_head_with_two_meanings_is_refused(headers: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(Refusal) as refused:
        HeadRules(EdgeConfig()).read(scope(*headers))
    assert refused.value.status == 400


def test_a_bad_host_is_refused_however_many_good_ones_came_before() -> None:
    """Hosts found valid are remembered (a bounded set); a bad one never is."""
    rules = HeadRules(EdgeConfig())

    def with_host(host: bytes) -> Any:
        request = scope()
        request["headers"] = [(b"host", host)]
        return request

    for number in range(1100):  # past the remembered ones: those later are matched each time
        assert rules.read(with_host(b"h%d.test" % number)).host == b"h%d.test" % number
    assert rules.read(with_host(b"h1.test")).host == b"h1.test"
    for bad in (b"a b", b'evil"; for=1.2.3.4', b"h1.test\r\nx: y"):
        for _ in range(2):
            with pytest.raises(Refusal) as refused:
                rules.read(with_host(bad))
            assert refused.value.status == 400


def test_http11_needs_a_host() -> None:
    bare = scope()
    bare["headers"] = []
    with pytest.raises(Refusal):
        HeadRules(EdgeConfig()).read(bare)
    bare["http_version"] = "1.0"
    assert HeadRules(EdgeConfig()).read(bare).host == b""


CLAIMS = [
    (b"x-forwarded-for", b"1.2.3.4"),
    (b"x-forwarded-proto", b"https"),
    (b"x-forwarded-host", b"evil.test"),
    (b"forwarded", b"for=1.2.3.4"),
    (b"x-real-ip", b"1.2.3.4"),
]


def forwarded(rules: HeadRules, client: str) -> dict[bytes, bytes]:
    request = scope(*CLAIMS, client=client)
    head = rules.read(request)
    return dict(rules.forwarding_headers(head, request, b"rid"))


def test_an_untrusted_peer_cannot_claim_earlier_hops() -> None:
    got = forwarded(HeadRules(EdgeConfig()), "198.51.100.7")
    assert got == {
        b"x-request-id": b"rid",
        b"x-forwarded-for": b"198.51.100.7",
        b"x-forwarded-proto": b"http",
        b"x-forwarded-host": b"app.test",
        b"forwarded": b'for=198.51.100.7;proto=http;host="app.test"',
        b"x-real-ip": b"198.51.100.7",
    }


def test_a_trusted_proxy_is_appended_to() -> None:
    rules = HeadRules(EdgeConfig(trusted_proxies=["10.0.0.0/8", "::1"]))
    got = forwarded(rules, "10.1.2.3")
    assert got[b"x-forwarded-for"] == b"1.2.3.4, 10.1.2.3"
    assert got[b"x-forwarded-proto"] == b"https, http"
    assert got[b"forwarded"] == b'for=1.2.3.4, for=10.1.2.3;proto=http;host="app.test"'
    assert got[b"x-real-ip"] == b"1.2.3.4"
    v6 = forwarded(rules, "::1")
    assert v6[b"forwarded"].endswith(b'for="[::1]";proto=http;host="app.test"')
    assert forwarded(rules, "11.0.0.1")[b"x-forwarded-for"] == b"11.0.0.1"


def test_bad_trusted_proxy_entries_fail_the_config() -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        EdgeConfig(trusted_proxies=["10.0.0.0/8", "gateway.internal"])


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        (b"0f8fad5b-d9cb-469f-a165-70867728950e", True),
        (b"client-id-123", True),
        (b"x" * 65, False),
        (b"x" * 200, False),
        (b"bad id <script>", False),
        (b"-leading-dash", False),
        (b"a\\b", False),
    ],
)
def test_request_ids_are_kept_only_when_short_and_plain(sent: bytes, kept: bool) -> None:
    rules = HeadRules(EdgeConfig())
    chosen = rules.request_id(rules.read(scope((b"x-request-id", sent))))
    assert (chosen == sent.decode("latin-1")) is kept
    if not kept:
        assert len(chosen) == 32


@pytest.mark.parametrize(
    ("method", "version", "status"),
    [("CONNECT", "1.1", 405), ("TRACE", "1.1", 405), ("GET", "0.9", 505)],
)
def test_tunnels_traces_and_old_versions_are_refused(
    method: str, version: str, status: int
) -> None:
    request = scope()
    request["method"], request["http_version"] = method, version
    with pytest.raises(Refusal) as refused:
        HeadRules(EdgeConfig()).read(request)
    assert refused.value.status == status


@pytest.mark.parametrize(
    ("codings", "version", "status"),
    [
        ([b"chunk"], "1.1", 501),
        ([b"gzip, chunked"], "1.1", 501),
        ([b"chunked", b"chunked"], "1.1", 501),
        ([b"chunked"], "1.0", 400),
    ],
)
def test_only_one_plain_chunked_coding_frames_a_body(
    codings: list[bytes], version: str, status: int
) -> None:
    request = scope(*[(b"transfer-encoding", coding) for coding in codings])
    request["http_version"] = version
    with pytest.raises(Refusal) as refused:
        HeadRules(EdgeConfig()).read(request)
    assert refused.value.status == status
    ok = scope((b"transfer-encoding", b"Chunked\t"))
    assert HeadRules(EdgeConfig()).read(ok).chunked
