"""A route's header rules, as config: set, add and remove on the request and the response.

A value is literal text with placeholders filled per request::

    {subject}          the verified token's sub
    {claim.<name>}     one claim of the verified token (a list is joined with ",")
    {request_id}       the request id the gateway forwards and answers with
    {client_address}   the client's address as the gateway vouches for it
    {{ and }}          a literal brace

Claims come from the verified token only (a route with ``auth: required``),
never from anything the client sent unchecked. Templates are parsed here, once:
an unknown placeholder, a stray brace, a control character or a forbidden
header name is a config error naming the rule.

A rule may never set or remove what the gateway itself vouches for or frames
the message with: identity (``x-auth-*``), forwarding (``x-forwarded-*``,
``forwarded``, ``x-real-ip``), ``x-request-id``, ``host``, the hop-by-hop
headers, the body's framing (``content-length``) and the WebSocket
handshake's own (``sec-websocket-*``). Each of them the gateway or the server
writes itself on every HTTP request and handshake, so a rule on one would be
silently ignored (or break the handshake): a config error saying why is
better than a rule that misleads. Underscore spellings (``x_auth_subject``)
count as the same name, as WSGI servers read them so.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
_CLAIM_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
# visible ASCII, space and tab, and UTF-8 text: no CR, LF, NUL or other control
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
MAX_VALUE_CHARS = 4096

# hop-by-hop (RFC 9110 section 7.6.1) and the ones proxies treat so
HOP_BY_HOP_NAMES = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Why no rule may touch a name: the reason a config error gives, by exact name...
_OWN_NAMES: dict[str, str] = {
    "host": "the backend gets the Host the route's preserve_host says",
    "x-request-id": "the gateway sets the request id on the request and the answer",
    "forwarded": "a forwarding header: the gateway sets it",
    "x-real-ip": "a forwarding header: the gateway sets it",
    "content-length": "the body's framing: the gateway and the server write it",
} | dict.fromkeys(
    HOP_BY_HOP_NAMES,
    "hop-by-hop: it ends at each connection, and the gateway and the server write "
    "their own on every HTTP request, answer and WebSocket handshake (Upgrade and "
    "Connection are the handshake's), so a rule on it would be silently ignored",
)
# ... and by prefix
_OWN_PREFIXES: dict[str, str] = {
    "x-auth-": "an identity header: the gateway sets it from the verified token",
    "x-forwarded-": "a forwarding header: the gateway sets it",
    "sec-websocket-": "the WebSocket handshake's own: the gateway's connection to the "
    "backend and the server answering the client write it themselves (a rule would "
    "be silently ignored, or break the handshake), and on HTTP it means nothing",
}

Part = tuple[Literal["text", "subject", "claim", "request_id", "client_address"], str]


def checked_name(name: str) -> str:
    """``name`` in lower case if a rule may touch it; else ValueError saying why."""
    if not _HEADER_NAME.match(name):
        spaced = " (spaces around it)" if name.strip() != name else ""
        raise ValueError(f"{name!r} is not a header name{spaced}")
    lower = name.lower()
    why = forbidden_because(lower)
    if why is not None:
        raise ValueError(f"{name!r}: no rule may set, add or remove it: {why}")
    return lower


def forbidden_because(name: str) -> str | None:
    """Why no rule may touch the lower-case header ``name`` (``_`` read as ``-``), or None."""
    spelled = name.replace("_", "-")
    why = _OWN_NAMES.get(spelled)
    if why is None:
        why = next((w for p, w in _OWN_PREFIXES.items() if spelled.startswith(p)), None)
    return why


def parse_template(value: str) -> tuple[Part, ...]:
    """``value`` as literal and placeholder parts; ValueError for anything unclear."""
    if len(value) > MAX_VALUE_CHARS:
        raise ValueError(f"a value is at most {MAX_VALUE_CHARS} characters")
    if _CONTROL.search(value):
        raise ValueError(f"{value!r} holds a control character (CR, LF, NUL...)")
    parts: list[Part] = []
    text = ""
    position = 0
    for match in _PLACEHOLDER.finditer(value):
        text += value[position : match.start()]
        position = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            text += token[0]
            continue
        inner = match.group(1)
        if inner is None:
            raise ValueError(f"{value!r}: a lone {token!r} (write {token * 2} for a brace)")
        if text:
            parts.append(("text", text))
            text = ""
        if inner in ("subject", "request_id", "client_address"):
            parts.append((inner, ""))  # type: ignore[arg-type]  # checked just above
        elif inner.startswith("claim.") and _CLAIM_NAME.match(inner[6:]):
            parts.append(("claim", inner[6:]))
        else:
            raise ValueError(
                f"{value!r}: unknown placeholder {{{inner}}}; use {{subject}}, "
                "{claim.<name>}, {request_id} or {client_address}"
            )
    text += value[position:]
    if text:
        parts.append(("text", text))
    return tuple(parts)


def needs_identity(value: str) -> bool:
    """Whether ``value`` reads the verified token (so its route must require auth)."""
    return any(kind in ("subject", "claim") for kind, _ in parse_template(value))


class HeaderOps(BaseModel):
    """What happens to headers going one way: ``remove`` first, then ``set``, then ``add``.

    ``set`` replaces every value of the header (or adds it); ``add`` appends one
    more; ``remove`` drops the header. A name in two of them is an error.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    set: dict[str, str] = Field(default_factory=dict, max_length=64)
    add: dict[str, str] = Field(default_factory=dict, max_length=64)
    remove: list[str] = Field(default_factory=list, max_length=64)

    @field_validator("set", "add")
    @classmethod
    def _templates(cls, value: dict[str, str]) -> dict[str, str]:
        checked: dict[str, str] = {}
        for name, template in value.items():
            lower = checked_name(name)
            if lower in checked:
                raise ValueError(f"{name!r} is listed twice (header names ignore case)")
            try:
                parse_template(template)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
            checked[lower] = template
        return checked

    @field_validator("remove")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        return [checked_name(name) for name in value]

    @model_validator(mode="after")
    def _disjoint(self) -> HeaderOps:
        named = [*self.set, *self.add, *set(self.remove)]
        twice = sorted({name for name in named if named.count(name) > 1})
        if twice:
            raise ValueError(f"{twice} appear in more than one of set, add and remove")
        return self

    @property
    def names(self) -> frozenset[str]:
        return frozenset([*self.set, *self.add, *self.remove])

    def reads_identity(self) -> bool:
        return any(needs_identity(v) for v in [*self.set.values(), *self.add.values()])


class HeaderRulesConfig(BaseModel):
    """``headers:`` on a route: ``request`` before the backend, ``response`` before the client.

    Request rules apply to what the backend gets, after the token was checked;
    response rules to the backend's answer and to answers the gateway makes
    itself for the route (an error, a CORS preflight).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    request: HeaderOps = HeaderOps()
    response: HeaderOps = HeaderOps()
