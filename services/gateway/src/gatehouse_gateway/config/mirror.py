"""A route's ``mirror:`` block: copy a share of its requests to another backend group.

The copy's answer is read and dropped; it never delays or fails the real
request. Numbers are strict (``percent: "10"`` or ``true`` is an error, not a
guess), so a quoting slip cannot turn into a different share of traffic.
Memory and concurrency are bounded here, at load: at most
``max_concurrent`` copies per gateway worker are on their way at once, each
holding at most ``max_body_bytes`` of body, for at most ``timeout`` seconds.
What does not fit is dropped and counted, never queued.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from gatehouse_gateway.config.groups import GROUP_NAME_PATTERN, PRIMARY


class MirrorConfig(BaseModel):
    """Where copies go, how many, and the bounds that keep them harmless."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    group: str = Field(
        pattern=GROUP_NAME_PATTERN,
        description="the route's backend group (groups:) that receives the copies; "
        "a name the route does not define is an error at load",
    )
    percent: float = Field(
        default=100.0,
        ge=0,
        le=100,
        allow_inf_nan=False,
        strict=True,
        description="share of the route's requests copied, sampled at random per request",
    )
    max_concurrent: int = Field(
        default=32,
        ge=1,
        le=10_000,
        strict=True,
        description="copies under way at once per gateway worker; one more is dropped "
        "(counted, reason concurrency), never queued",
    )
    max_body_bytes: int = Field(
        default=64 * 1024,
        ge=0,
        le=16 * 1024 * 1024,
        strict=True,
        description="a request whose body is larger is not copied (reason body_too_large); "
        "only bodies the gateway buffered anyway (limits.buffer_body_bytes) are copied, "
        "a streamed one never (reason body_not_buffered): the client's stream is the real "
        "backend's alone",
    )
    timeout: float = Field(
        default=5.0,
        gt=0,
        le=300,
        allow_inf_nan=False,
        strict=True,
        description="the whole copy, connect to last byte of the answer read and dropped",
    )


def check_mirror_group(mirror: MirrorConfig, groups: list[str]) -> None:
    """The copies go to one of the route's own groups, never to ``primary``: copying
    the real traffic to the very backends that serve it would double its effects."""
    if mirror.group == PRIMARY:
        raise ValueError(
            "mirror.group must name another group than primary (the one serving the requests)"
        )
    if mirror.group not in groups:
        raise ValueError(
            f"mirror.group {mirror.group!r} is not one of the route's groups {sorted(groups)}"
        )
