"""What the sliding windows are for: login lockouts (per email and address) and sign-ups.

Login, as OWASP's Authentication Cheat Sheet recommends ("Account Lockout"):

* per client address, every attempt (``rate_limit_per_client`` a window):
  flood control, whatever the emails;
* per (email, client address), failed attempts (``rate_limit_per_email_client``
  a window): the lockout a guesser meets. It is keyed on the address too, so
  nobody can lock someone else out by failing at their email from elsewhere;
* per email from every address, failed attempts (``rate_limit_per_email`` per
  ``rate_limit_email_window_seconds``, much higher): the ceiling that stops a
  guesser spread over many addresses, at the price of locking the account
  itself, which is why an admin can see and lift lockouts.

An attempt is recorded before the password is checked (two racing attempts
cannot both take the last place), and a login that succeeds takes its
email-bound entries back, so only failures count there. A window that fills
names itself in a registry, which is how ``GET /lockouts`` finds lockouts
without scanning Redis; the registry is checked against the live windows when
read, and stale names are dropped then.

If the store fails, attempts are let through (logged): an outage of the
limiter must not lock every user out.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network, ip_address

from gatehouse_auth.ratelimit import REDIS_ERRORS, Window, WindowStore

logger = logging.getLogger(__name__)


IPV6_PREFIX = 64


def client_scope(client: str) -> str:
    """What per-address limits count against: the address, or an IPv6 address's /64.

    One IPv6 subscriber is usually handed a whole /64 (RFC 6177), so counting
    single IPv6 addresses would give an attacker 2**64 fresh allowances.
    """
    try:
        address = ip_address(client)
    except ValueError:
        return client
    if not isinstance(address, IPv6Address):
        return client
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(IPv6Network((address, IPV6_PREFIX), strict=False))


def _digest(value: str) -> str:
    # Hashed: window keys then hold no email address and no attacker-chosen bytes.
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]


@dataclass
class LoginAttempt:
    """One login's verdict: ``wait`` seconds (0: go ahead) and the entries to take back."""

    wait: float = 0.0
    recorded: list[tuple[str, str]] = field(default_factory=list)
    # The (email, client) window: a success from that address clears it.
    address_window: str | None = None
    # This attempt filled a window: if it fails, a lockout begins (the audit log says so).
    locks_out: str | None = None


@dataclass(frozen=True)
class Lockout:
    """An email refused from one address (``client``; an IPv6 /64), or from every address (None)."""

    email: str
    client: str | None
    retry_after: float


class LimiterUnavailableError(Exception):
    """The store could not be read (an admin's request, which must not pretend)."""


class LoginRateLimiter:
    """One login attempt against the per-client, per-(email, client) and per-email windows."""

    def __init__(
        self,
        store: WindowStore,
        *,
        prefix: str,
        window_seconds: float,
        per_client: int,
        per_email_client: int,
        per_email: int,
        email_window_seconds: float,
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.window_ms = max(1, int(window_seconds * 1000))
        self.email_window_ms = max(1, int(email_window_seconds * 1000))
        self.per_client = per_client
        self.per_email_client = per_email_client
        self.per_email = per_email
        self.registry = f"{prefix}login:lockouts"

    def _client_key(self, client: str) -> str:
        return f"{self.prefix}login:client:{_digest(client)}"

    def _window(self, email: str, client: str | None) -> Window:
        """The failure window of ``email`` from ``client``, or from everywhere (None)."""
        if client is None:
            key = f"{self.prefix}login:email:{_digest(email)}"
            return Window(key, self.per_email, self.email_window_ms)
        key = f"{self.prefix}login:email-client:{_digest(email)}:{_digest(client)}"
        return Window(key, self.per_email_client, self.window_ms)

    def check(self, *, email: str, client: str) -> LoginAttempt:
        """Record the attempt where there is room; ``wait`` > 0 when a window is full."""
        client = client_scope(client)
        attempt = LoginAttempt()
        try:
            if self.per_client > 0:
                hit = self.store.hit(
                    self._client_key(client), self.per_client, self.window_ms, uuid.uuid4().hex
                )
                if hit.refused:
                    return LoginAttempt(hit.wait_ms / 1000)
            for scope in (client, None):
                window = self._window(email, scope)
                if window.limit <= 0:
                    continue
                member = uuid.uuid4().hex
                hit = self.store.hit(window.key, window.limit, window.window_ms, member)
                if hit.refused or hit.count >= window.limit:
                    ttl = max(self.window_ms, self.email_window_ms)
                    self.store.note(self.registry, json.dumps([email, scope]), ttl)
                if hit.refused:
                    self._take_back(attempt)  # this attempt did not happen
                    return LoginAttempt(hit.wait_ms / 1000)
                if hit.count >= window.limit:
                    attempt.locks_out = "address" if scope is not None else "account"
                attempt.recorded.append((window.key, member))
                if scope is not None:
                    attempt.address_window = window.key
        except REDIS_ERRORS as exc:
            logger.warning("rate limit store unavailable, attempt allowed: %s", exc)
            return LoginAttempt()
        return attempt

    def succeeded(self, attempt: LoginAttempt) -> None:
        """The password was right: only failures count against an email.

        The address's own failures are forgotten (the owner's typos before the
        right password); the account-wide count keeps them, so an owner logging in
        daily does not hand a spread-out guesser a fresh allowance each time.
        """
        try:
            self._take_back(attempt)
            if attempt.address_window is not None:
                self.store.delete([attempt.address_window])
        except REDIS_ERRORS as exc:
            logger.warning("rate limit store unavailable, success not recorded: %s", exc)

    def _take_back(self, attempt: LoginAttempt) -> None:
        for key, member in attempt.recorded:
            self.store.forget(key, member)
        attempt.recorded.clear()

    def _read_registry(self) -> list[tuple[str, Lockout]]:
        """(entry, lockout) for every live lockout; dead entries leave the registry."""
        named: list[tuple[str, str, str | None]] = []
        dead: list[str] = []
        for entry in self.store.entries(self.registry):
            try:
                email, client = json.loads(entry)
            except (ValueError, TypeError):
                dead.append(entry)
                continue
            if not isinstance(email, str) or not isinstance(client, str | None):
                dead.append(entry)
                continue
            named.append((entry, email, client))
        windows = [self._window(email, client) for _, email, client in named]
        waits = self.store.peek([w for w in windows if w.limit > 0])
        live: list[tuple[str, Lockout]] = []
        waits_iter = iter(waits)
        for (entry, email, client), window in zip(named, windows, strict=True):
            wait = next(waits_iter) if window.limit > 0 else 0
            if wait:
                live.append((entry, Lockout(email, client, wait / 1000)))
            else:
                dead.append(entry)
        self.store.unnote(self.registry, dead)
        return live

    def lockouts(self) -> list[Lockout]:
        """Every live lockout, by email, the account-wide one first."""
        try:
            live = [lockout for _, lockout in self._read_registry()]
        except REDIS_ERRORS as exc:
            raise LimiterUnavailableError(str(exc)) from exc
        return sorted(live, key=lambda lo: (lo.email, lo.client is not None, lo.client or ""))

    def lift(self, email: str) -> int:
        """Clear every lockout of ``email`` (and its account-wide count); how many were live."""
        try:
            mine = [(entry, lo) for entry, lo in self._read_registry() if lo.email == email]
            keys = {self._window(email, None).key}
            keys.update(self._window(email, lo.client).key for _, lo in mine)
            self.store.delete(sorted(keys))
            self.store.unnote(self.registry, [entry for entry, _ in mine])
        except REDIS_ERRORS as exc:
            raise LimiterUnavailableError(str(exc)) from exc
        return len(mine)


class SignupRateLimiter:
    """Sign-ups per client address: every attempt counts (a 409 tells as much as a 201)."""

    def __init__(
        self, store: WindowStore, *, prefix: str, per_client: int, window_seconds: float
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.per_client = per_client
        self.window_ms = max(1, int(window_seconds * 1000))

    def check(self, *, client: str) -> float:
        """0 when the sign-up may proceed, else seconds to wait."""
        if self.per_client <= 0:
            return 0.0
        key = f"{self.prefix}signup:client:{_digest(client_scope(client))}"
        try:
            hit = self.store.hit(key, self.per_client, self.window_ms, uuid.uuid4().hex)
        except REDIS_ERRORS as exc:
            logger.warning("rate limit store unavailable, sign-up allowed: %s", exc)
            return 0.0
        return hit.wait_ms / 1000
