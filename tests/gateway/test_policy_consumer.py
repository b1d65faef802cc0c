"""Who a request counts against: the vouched client address and each consumer key.

A forged X-Forwarded-For from an untrusted peer, a missing header, a long or
binary value and an API key must each end in a bounded, non-secret consumer,
or a client could escape its limit or read a key back from the operator view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import ValidationError

from gatehouse_common.jwt import VerifiedToken
from gatehouse_gateway.config.consumer import ConsumerKey
from gatehouse_gateway.config.schema import EdgeConfig
from gatehouse_gateway.edge.head import HeadRules, RequestHead
from gatehouse_gateway.policy.consumer import MISSING, consumer_of

pytestmark = pytest.mark.unit


def scope(*headers: tuple[bytes, bytes], client: str = "198.51.100.7") -> Any:
    return {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/x",
        "raw_path": b"/x",
        "query_string": b"",
        "headers": [(b"host", b"app.test"), *headers],
        "client": (client, 40000),
        "server": ("127.0.0.1", 8080),
    }


@dataclass
class Request:
    head: RequestHead
    client: bytes
    identity: VerifiedToken | None = None


def token(subject: str = "42", **claims: Any) -> VerifiedToken:
    return VerifiedToken(subject, None, (), 0.0, {"sub": subject, **claims})


def request(*headers: tuple[bytes, bytes], identity: VerifiedToken | None = None) -> Request:
    rules = HeadRules(EdgeConfig())
    head = rules.read(scope(*headers))
    return Request(head, rules.client_address(head), identity)


def test_untrusted_peer_cannot_choose_its_address() -> None:
    rules = HeadRules(EdgeConfig())
    head = rules.read(scope((b"x-forwarded-for", b"203.0.113.9")))
    assert rules.client_address(head) == b"198.51.100.7"


def test_trusted_proxy_vouches_for_the_rightmost_untrusted_hop() -> None:
    rules = HeadRules(EdgeConfig(trusted_proxies=["10.0.0.0/8"]))
    forged_then_real = (b"x-forwarded-for", b"1.1.1.1, 203.0.113.9, 10.0.0.2")
    head = rules.read(scope(forged_then_real, client="10.0.0.1"))
    assert rules.client_address(head) == b"203.0.113.9"


def test_trusted_proxy_with_a_malformed_hop_stops_at_the_last_good_one() -> None:
    rules = HeadRules(EdgeConfig(trusted_proxies=["10.0.0.0/8"]))
    head = rules.read(scope((b"x-forwarded-for", b"203.0.113.9, <script>"), client="10.0.0.1"))
    assert rules.client_address(head) == b"10.0.0.1"


def test_subject_claim_and_route_keys() -> None:
    identity = token("7", tenant="acme", groups=["a", "b"])
    req = request(identity=identity)
    assert consumer_of(ConsumerKey(by="subject"), req) == "7"
    assert consumer_of(ConsumerKey(by="claim", name="tenant"), req) == "acme"
    assert consumer_of(ConsumerKey(by="claim", name="groups"), req) == "a,b"
    assert consumer_of(ConsumerKey(by="claim", name="absent"), req) == MISSING
    assert consumer_of(ConsumerKey(by="route"), req) == "route"
    assert consumer_of(ConsumerKey(by="client_address"), req) == "198.51.100.7"


def test_no_token_or_no_header_is_the_shared_consumer() -> None:
    req = request()
    assert consumer_of(ConsumerKey(by="subject"), req) == MISSING
    assert consumer_of(ConsumerKey(by="header", name="x-tenant"), req) == MISSING
    assert consumer_of(ConsumerKey(by="api_key"), req) == MISSING


def test_api_keys_are_never_kept_in_clear() -> None:
    req = request((b"x-api-key", b"secret-key-1"))
    consumer = consumer_of(ConsumerKey(by="api_key"), req)
    assert consumer.startswith("sha256:") and "secret" not in consumer
    other = consumer_of(ConsumerKey(by="api_key"), request((b"x-api-key", b"secret-key-2")))
    assert other != consumer


@pytest.mark.parametrize("value", [b"x" * 129, b"caf\xc3\xa9", b"a\x01b"])
def test_long_or_odd_values_are_hashed(value: bytes) -> None:
    consumer = consumer_of(ConsumerKey(by="header", name="x-tenant"), request((b"x-tenant", value)))
    assert consumer.startswith("sha256:") and len(consumer) == 39


@pytest.mark.parametrize(
    "bad",
    [
        {"by": "claim"},
        {"by": "header"},
        {"by": "subject", "name": "x"},
        {"by": "header", "name": "bad header"},
        {"by": "claim", "name": "a\nb"},
        {"by": "nobody"},
        {"by": "subject", "extra": 1},
    ],
)
def test_bad_consumer_keys_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ConsumerKey(**bad)
