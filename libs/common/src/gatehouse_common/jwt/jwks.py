"""The issuer's public keys (JWKS), fetched over HTTP and cached.

Rules, from the design's gateway section:

- the key set is cached for ``ttl`` seconds; once stale it is refreshed in the
  background while the cached keys keep answering, so no request waits on the
  auth service for a key it already has;
- an unknown ``kid`` (a key rotated in) triggers a fetch that the caller waits
  for, but at most once per ``min_refetch_interval``: a client inventing kids
  cannot turn the gateway into a load generator against the auth service;
- concurrent callers share one in-flight fetch;
- when a fetch fails (auth down, bad JSON, no usable key) the last good keys
  stay in use and the error is recorded for :meth:`JWKSClient.snapshot`.

Only asymmetric keys are kept: a symmetric ("oct") key in a public key set is a
mistake at best, and would let HMAC tokens be checked against a shared secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt
from prometheus_client import Counter

from gatehouse_common.client_tls import verify_for
from gatehouse_common.jwt.algorithms import key_fits
from gatehouse_common.jwt.errors import TokenError

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)

# A JWKS is a few kilobytes; anything far larger is not one.
MAX_JWKS_BYTES = 1 << 20

JWKS_FETCHES = Counter(
    "gatehouse_jwks_fetches",
    "JWKS fetches by outcome (success keeps the new keys, failure keeps the old ones)",
    ["outcome"],
)
for _outcome in ("success", "failure"):
    JWKS_FETCHES.labels(_outcome)


@dataclass(frozen=True, slots=True)
class JWKSState:
    """What the client knows, for an admin endpoint or a readiness check."""

    url: str
    key_ids: tuple[str, ...]
    # Wall-clock time (epoch seconds) of the last successful fetch.
    fetched_at: float | None
    # Why the most recent fetch failed; None once a fetch succeeds again.
    last_error: str | None
    # Failed fetches since the client was made, and in a row since the last success.
    fetch_failures: int
    consecutive_failures: int

    @property
    def ready(self) -> bool:
        """True when there is at least one key to verify with."""
        return bool(self.key_ids)


# ``GET url`` within ``timeout`` seconds: (status, body). A transport failure is
# raised as JWKSFetchError. What a service already holds an HTTP client for (the
# gateway: its upstream client) passes its own instead of the httpx default, so
# its workers need not import httpx at all (~5 MB each, loadtest/README.md).
Fetch = Callable[[str, float], Awaitable[tuple[int, bytes]]]


class JWKSFetchError(Exception):
    """A fetch did not produce a usable key set (kept internal: callers see TokenError)."""


def parse_jwks(document: Any) -> dict[str, jwt.PyJWK]:
    """The usable asymmetric signing keys of a JWKS document, by kid.

    Entries that are not usable (no kid, symmetric, encryption keys, unknown
    types, bad key material) are skipped with a log line rather than failing
    the whole set, so one odd key cannot take the others down with it.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise JWKSFetchError('the document is not a JSON object with a "keys" list')
    keys: dict[str, jwt.PyJWK] = {}
    for index, entry in enumerate(document["keys"]):
        kid = entry.get("kid") if isinstance(entry, Mapping) else None
        if not isinstance(kid, str) or not kid or entry.get("use", "sig") != "sig":
            logger.warning("skipping JWKS entry %d: no kid or not a signing key", index)
            continue
        try:
            key = jwt.PyJWK(dict(entry))
        except Exception as exc:  # pyjwt raises TypeError too, e.g. for a list as "alg"
            logger.warning("skipping JWKS key %r: %s: %s", kid, type(exc).__name__, exc)
            continue
        if not key_fits(key.algorithm_name, key.key_type):
            logger.warning(
                "skipping JWKS key %r: %s with a %s key is not an asymmetric signature",
                kid,
                key.algorithm_name,
                key.key_type,
            )
            continue
        keys[kid] = key
    if not keys:
        raise JWKSFetchError("the key set holds no usable signing key")
    return keys


class JWKSClient:
    """Signing keys of one issuer, from its JWKS URL. One per process, made in lifespan.

    ``clock`` is monotonic seconds and exists so tests can move time; wall
    time is used only for :attr:`JWKSState.fetched_at`.
    """

    def __init__(
        self,
        url: str,
        *,
        ttl: float = 300.0,
        min_refetch_interval: float = 10.0,
        timeout: float = 2.0,
        client: httpx.AsyncClient | None = None,
        fetch: Fetch | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl <= 0 or min_refetch_interval < 0 or timeout <= 0:
            raise ValueError("ttl and timeout must be positive, min_refetch_interval not negative")
        self.url = url
        self.ttl = ttl
        self.min_refetch_interval = min_refetch_interval
        self.timeout = timeout
        self._clock = clock
        self._client: httpx.AsyncClient | None = client
        self._owns_client = client is None and fetch is None
        if self._owns_client:
            import httpx  # only for a service that brings no fetch of its own

            self._client = httpx.AsyncClient(timeout=timeout, verify=verify_for(url))
        self._get: Fetch = fetch if fetch is not None else self._httpx_get
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_mono: float | None = None
        self._fetched_wall: float | None = None
        self._last_attempt: float | None = None
        self._last_error: str | None = None
        self._failures = 0
        self._consecutive_failures = 0
        self._inflight: asyncio.Task[bool] | None = None
        self._removal_listeners: list[Callable[[frozenset[str]], None]] = []

    async def get_signing_key(self, kid: str | None) -> jwt.PyJWK:
        """The key ``kid`` names (or the only key, when the token has no kid).

        Raises ``TokenError("unknown_kid")`` when the issuer does not publish it
        and ``TokenError("jwks_unavailable")`` when its keys cannot be fetched.
        """
        key = self._lookup(kid)
        if key is not None:
            if self._stale() and self._may_fetch():
                self._start_fetch()  # background: the cached key answers meanwhile
            return key
        if self._inflight is not None or self._may_fetch():
            await self._join_fetch()
            key = self._lookup(kid)
            if key is not None:
                return key
        if not self._keys or self._consecutive_failures:
            raise TokenError("jwks_unavailable")
        raise TokenError("unknown_kid")

    async def refresh(self) -> bool:
        """Fetch the key set now (or join the fetch under way); False when it failed.

        Not limited by ``min_refetch_interval``: this is for a start-up warm-up
        or an operator's explicit request, not for the request path.
        """
        return await self._join_fetch()

    def on_keys_removed(self, listener: Callable[[frozenset[str]], None]) -> None:
        """Call ``listener(kids)`` when a fetch no longer lists keys it listed before.

        The issuer withdrawing a key means tokens signed with it must stop
        working; :class:`~gatehouse_common.jwt.TokenVerifier` uses this to drop
        its cached results for them rather than honour them until they expire.
        """
        self._removal_listeners.append(listener)

    def snapshot(self) -> JWKSState:
        return JWKSState(
            url=self.url,
            key_ids=tuple(self._keys),
            fetched_at=self._fetched_wall,
            last_error=self._last_error,
            fetch_failures=self._failures,
            consecutive_failures=self._consecutive_failures,
        )

    async def aclose(self) -> None:
        """Stop a fetch under way and close the HTTP client if this object made it."""
        task, self._inflight = self._inflight, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._owns_client and self._client is not None:
            await self._client.aclose()

    def _lookup(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None:
            # Without a kid the choice is only unambiguous with a single key.
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    def _stale(self) -> bool:
        return self._fetched_mono is None or self._clock() - self._fetched_mono >= self.ttl

    def _may_fetch(self) -> bool:
        if self._inflight is not None:
            return False
        if self._last_attempt is None:
            return True
        return self._clock() - self._last_attempt >= self.min_refetch_interval

    def _start_fetch(self) -> asyncio.Task[bool]:
        if self._inflight is None:
            self._last_attempt = self._clock()
            self._inflight = asyncio.get_running_loop().create_task(self._fetch())
            self._inflight.add_done_callback(self._fetch_done)
        return self._inflight

    def _fetch_done(self, task: asyncio.Task[bool]) -> None:
        if self._inflight is task:
            self._inflight = None

    async def _join_fetch(self) -> bool:
        # shield: a caller that gives up (client disconnect) must not cancel
        # the fetch the other callers are waiting for.
        return await asyncio.shield(self._start_fetch())

    async def _fetch(self) -> bool:
        try:
            keys = await self._download()
        except JWKSFetchError as exc:
            self._record_failure(str(exc))
            return False
        except Exception as exc:  # a background task must record, not raise
            logger.exception("unexpected error while fetching the JWKS")
            self._record_failure(f"{type(exc).__name__}: {exc}")
            return False
        removed = frozenset(self._keys.keys() - keys.keys())
        self._keys = keys
        self._fetched_mono = self._clock()
        self._fetched_wall = time.time()
        self._last_error = None
        self._consecutive_failures = 0
        JWKS_FETCHES.labels("success").inc()
        logger.info(
            "fetched %d signing key(s) from %s", len(keys), self.url, extra={"kids": list(keys)}
        )
        if removed:
            logger.warning("the issuer withdrew key(s) %s", ", ".join(sorted(removed)))
            for listener in self._removal_listeners:
                listener(removed)
        return True

    async def _httpx_get(self, url: str, timeout: float) -> tuple[int, bytes]:
        import httpx

        if self._client is None:  # made in __init__ whenever no fetch is given
            raise JWKSFetchError("no HTTP client")
        try:
            response = await self._client.get(
                url, timeout=timeout, headers={"Accept": "application/json"}
            )
        except httpx.HTTPError as exc:
            raise JWKSFetchError(f"{type(exc).__name__}: {exc}") from exc
        return response.status_code, response.content

    async def _download(self) -> dict[str, jwt.PyJWK]:
        status, body = await self._get(self.url, self.timeout)
        if status != 200:
            raise JWKSFetchError(f"HTTP {status}")
        if len(body) > MAX_JWKS_BYTES:
            raise JWKSFetchError(f"the document is over {MAX_JWKS_BYTES} bytes")
        try:
            document = json.loads(body)  # UTF-8/16/32 detected, as httpx's response.json()
        except ValueError as exc:
            raise JWKSFetchError("the document is not JSON") from exc
        return parse_jwks(document)

    def _record_failure(self, error: str) -> None:
        self._last_error = error[:300]
        self._failures += 1
        self._consecutive_failures += 1
        JWKS_FETCHES.labels("failure").inc()
        logger.warning(
            "JWKS fetch from %s failed (%s); keeping %d known key(s)",
            self.url,
            self._last_error,
            len(self._keys),
        )
