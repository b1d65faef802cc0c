"""Checks across a route's CORS, header rules and path rewrite, and the rest of the route.

Each block validates itself; what only makes sense together is checked here,
once, when the route is read: a rule that could never apply, or two features
that would fight over the same header, is a config error, not a surprise.
"""

from __future__ import annotations

from collections.abc import Sequence

from gatehouse_gateway.config.cors import CorsConfig
from gatehouse_gateway.config.header_rules import HeaderRulesConfig
from gatehouse_gateway.config.rewrite import PathRewriteConfig

# the headers the gateway's CORS answer owns on a route with ``cors:``
CORS_OWNED_PREFIX = "access-control-"
# answer headers the server writes on every answer itself, after any the gateway
# gives: a response rule would add a second one or remove nothing
SERVER_WRITTEN = frozenset({"date"})


def under(path: str, prefix: str) -> bool:
    """Whether ``path`` is ``prefix`` or below it, on a segment boundary."""
    return prefix == "/" or path == prefix or path.startswith(prefix + "/")


def check_route_rules(
    *,
    auth_required: bool,
    path_prefixes: Sequence[str],
    cors: CorsConfig | None,
    headers: HeaderRulesConfig | None,
    path_rewrite: PathRewriteConfig | None,
) -> None:
    """Raise ValueError naming the first conflict among a route's edge rules."""
    if headers is not None:
        if not auth_required and (
            headers.request.reads_identity() or headers.response.reads_identity()
        ):
            raise ValueError(
                "headers: {subject} and {claim.*} come from the verified token: "
                "the route needs auth: required"
            )
        written = sorted(
            name for name in headers.response.names if name.replace("_", "-") in SERVER_WRITTEN
        )
        if written:
            raise ValueError(
                f"headers.response: {written}: the server writes its own on every answer "
                "(the backend's is dropped), so a rule would add a second one or remove nothing"
            )
        if cors is not None:
            owned = sorted(
                name
                for name in headers.response.names
                if name.startswith(CORS_OWNED_PREFIX) or name == "vary"
            )
            if owned:
                raise ValueError(f"headers.response: {owned} belong to the route's cors: block")
    if path_rewrite is not None:
        outside = [p for p in path_prefixes if not under(p, path_rewrite.source)]
        if outside:
            raise ValueError(
                f"path_rewrite: {path_rewrite.source!r} does not cover path_prefix {outside}; "
                "those paths would reach the backend unrewritten"
            )
