"""Whose address a login is counted against."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatehouse_auth.deps import resolve_client

pytestmark = pytest.mark.unit

LOOPBACK = [IPv4Network("127.0.0.1/32"), IPv6Network("::1/128")]
GATEWAYS = [*LOOPBACK, IPv4Network("10.0.0.0/8")]


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "client"),
    [
        ("203.0.113.5", "1.2.3.4", LOOPBACK, "203.0.113.5"),  # untrusted peer: header ignored
        ("127.0.0.1", "", LOOPBACK, "127.0.0.1"),  # no header: the peer
        ("127.0.0.1", "198.51.100.7", LOOPBACK, "198.51.100.7"),  # via the gateway
        ("127.0.0.1", "6.6.6.6, 198.51.100.7", LOOPBACK, "198.51.100.7"),  # spoofed left hop
        ("10.1.2.3", "198.51.100.7, 10.9.9.9", GATEWAYS, "198.51.100.7"),  # two proxies
        ("::1", "2001:db8::1", LOOPBACK, "2001:db8::1"),
        ("127.0.0.1", "127.0.0.1", LOOPBACK, "127.0.0.1"),  # only our own hops
        ("127.0.0.1", "10.1.1.1, 10.2.2.2", GATEWAYS, "10.1.1.1"),  # all trusted: the furthest
        ("127.0.0.1", ",, ,", LOOPBACK, "127.0.0.1"),  # empty hops are no hops
        ("127.0.0.1", "2001:DB8:0:0::1", LOOPBACK, "2001:db8::1"),  # one spelling per address
        ("203.0.113.5", "127.0.0.1", [], "203.0.113.5"),  # trusting nobody
        ("127.0.0.1", "198.51.100.7", [], "127.0.0.1"),
        ("127.0.0.1", "not-an-address", LOOPBACK, "not-an-address"),  # a key, never trusted
        ("127.0.0.1", "x" * 500, LOOPBACK, "x" * 64),  # bounded
    ],
)
def test_resolve_client(peer: str, forwarded: str, trusted: list, client: str) -> None:
    assert resolve_client(peer, forwarded, trusted) == client


def test_every_forwarded_for_line_counts() -> None:
    """A proxy that adds its own line: the client's own line (to the left) cannot win."""
    lines = ["6.6.6.6", "198.51.100.7"]
    assert resolve_client("127.0.0.1", lines, LOOPBACK) == "198.51.100.7"
    assert resolve_client("127.0.0.1", [], LOOPBACK) == "127.0.0.1"


_hop = st.one_of(
    st.ip_addresses().map(str),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30),
)


@given(client_hops=st.lists(_hop, max_size=6), extra_lines=st.lists(_hop, max_size=3))
def test_whatever_a_client_sends_the_proxy_added_hop_wins(
    client_hops: list[str], extra_lines: list[str]
) -> None:
    """The client writes any X-Forwarded-For it likes, in as many lines as it likes; the
    trusted proxy appends the peer it saw (198.51.100.7): that address is the client."""
    lines = [", ".join(client_hops), *extra_lines]
    lines[-1] = f"{lines[-1]}, 198.51.100.7" if lines[-1] else "198.51.100.7"
    assert resolve_client("127.0.0.1", lines, LOOPBACK) == "198.51.100.7"
    # and from an untrusted peer nothing it sends matters
    assert resolve_client("203.0.113.5", lines, LOOPBACK) == "203.0.113.5"
