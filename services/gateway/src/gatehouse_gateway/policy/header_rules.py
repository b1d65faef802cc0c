"""Header rules at run time: templates parsed at load, filled per request from memory.

A template (:mod:`gatehouse_gateway.config.header_rules`) becomes a tuple of
parts; a value made only of text is encoded once and reused. Per request a
value is filled from the verified token, the request id and the client
address. A placeholder with nothing behind it (no token, a claim the token
lacks, a claim that is an object) leaves the whole header unset rather than
half filled, and so does a value holding a control character: a signed claim
with a line break in it is still refused, never split into two headers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter

from gatehouse_common.jwt import VerifiedToken
from gatehouse_gateway.config.header_rules import HeaderOps, Part, parse_template

_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
Header = tuple[bytes, bytes]

UNSET = Counter(
    "gateway_header_rule_unset_total",
    "Header rule values left unset: a placeholder with nothing behind it (no such claim, "
    "an object claim) or a value holding a control character, by route and header.",
    ["route", "header"],
)


class _Unset:
    """Stands in for a counter where no route is named (unit use)."""

    @staticmethod
    def inc() -> None:
        return None


def _claim_text(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, list | tuple) and all(
        isinstance(item, str | int | float) and not isinstance(item, bool) for item in value
    ):
        return ",".join(str(item) for item in value)
    return None  # absent, null, an object, a list of objects


class Template:
    """One header value: literal text, or parts filled per request."""

    __slots__ = ("identity", "literal", "parts", "unset")

    def __init__(self, source: str, unset: Counter | None = None) -> None:
        # the counter child bumped when a request leaves this value unset
        self.unset: Counter | _Unset = unset if unset is not None else _Unset()
        self.parts: tuple[Part, ...] = parse_template(source)
        self.literal: bytes | None = (
            source.replace("{{", "{").replace("}}", "}").encode("utf-8")
            if all(kind == "text" for kind, _ in self.parts)
            else None
        )
        self.identity = any(kind in ("subject", "claim") for kind, _ in self.parts)

    def render(
        self, identity: VerifiedToken | None, request_id: bytes, client: bytes
    ) -> bytes | None:
        """The value for one request, or None: leave the header unset."""
        if self.literal is not None:
            return self.literal
        out: list[bytes] = []
        for kind, arg in self.parts:
            if kind == "text":
                out.append(arg.encode("utf-8"))
            elif kind == "request_id":
                out.append(request_id)
            elif kind == "client_address":
                if not client:
                    return None
                out.append(client)
            elif identity is None:
                return None
            elif kind == "subject":
                out.append(identity.subject.encode("utf-8"))
            else:
                text = _claim_text(identity.claims, arg)
                if text is None:
                    return None
                out.append(text.encode("utf-8"))
        value = b"".join(out)
        return None if _CONTROL.search(value) else value


class HeaderEdits:
    """One direction's ``set``/``add``/``remove`` compiled: names to drop, values to add."""

    __slots__ = ("added", "removed", "with_identity", "without_identity")

    def __init__(self, ops: HeaderOps, route: str | None = None) -> None:
        # ``set`` is remove-then-add: the backend's or client's values never survive it
        self.removed = frozenset(name.encode("ascii") for name in [*ops.remove, *ops.set])
        self.added: tuple[tuple[bytes, Template], ...] = tuple(
            (
                name.encode("ascii"),
                Template(value, UNSET.labels(route=route, header=name) if route else None),
            )
            for name, value in [*ops.set.items(), *ops.add.items()]
        )
        self.without_identity = tuple(item for item in self.added if not item[1].identity)
        self.with_identity = tuple(item for item in self.added if item[1].identity)

    def __bool__(self) -> bool:
        return bool(self.removed or self.added)

    def apply(
        self,
        headers: list[Header],
        identity: VerifiedToken | None,
        request_id: bytes,
        client: bytes,
    ) -> list[Header]:
        """``headers`` with the removals done and the values added (a new list)."""
        removed = self.removed
        out = [(name, value) for name, value in headers if name.lower() not in removed]
        out.extend(render(self.added, identity, request_id, client))
        return out


def render(
    templates: tuple[tuple[bytes, Template], ...],
    identity: VerifiedToken | None,
    request_id: bytes,
    client: bytes,
) -> list[Header]:
    """The headers ``templates`` make for one request, those left unset left out."""
    out: list[Header] = []
    for name, template in templates:
        value = template.render(identity, request_id, client)
        if value is not None:
            out.append((name, value))
        else:
            template.unset.inc()
    return out
