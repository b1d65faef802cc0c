"""The auth service's ASGI app: ``create_app()`` is the factory uvicorn runs.

The lifespan builds every long-lived object (database engine, key ring,
password hasher, rate limiter and its Redis client), hands them to requests
through ``app.state.auth`` (see :mod:`gatehouse_auth.deps`), ensures the
configured admin, and closes everything on shutdown. Nothing connects at
import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping

import redis
from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError

from gatehouse_auth.background import start_background_work
from gatehouse_auth.bootstrap import ensure_admin_account
from gatehouse_auth.db import create_db_engine, ping
from gatehouse_auth.deps import AuthState
from gatehouse_auth.errors import install_database_error_handlers
from gatehouse_auth.limits import LoginRateLimiter, SignupRateLimiter
from gatehouse_auth.passwords import PasswordHasher
from gatehouse_auth.ratelimit import LocalWindowStore, RedisWindowStore, WindowStore, connect_redis
from gatehouse_auth.revocation import Revocations
from gatehouse_auth.rotation import retention_seconds, ring_for
from gatehouse_auth.routes import api_router
from gatehouse_auth.sealing import Sealer
from gatehouse_auth.settings import AuthSettings, get_settings
from gatehouse_auth.tokens import TokenService
from gatehouse_common.app import create_service_app
from gatehouse_common.bodylimit import install_body_limit
from gatehouse_common.health import HealthCheck

logger = logging.getLogger(__name__)
BOOTSTRAP_RETRY_SECONDS = 5.0

DESCRIPTION = """
Accounts, login and signed tokens for Gatehouse.

* `POST /account` signs up; `POST /login` returns a JWT (EdDSA or RS256, with `kid`)
  and a refresh token; `POST /token/refresh` rotates it; `POST /logout` ends the session.
* `GET /.well-known/jwks.json` publishes every active public key;
  `GET /.well-known/openid-configuration` says where everything is.
* `GET /accounts` lists accounts for an admin; `GET /me` shows the caller's own.
* `GET /lockouts` and `DELETE /lockouts/{email}`: an admin sees and lifts login lockouts.
* `/accounts/{id}/disable`, `/enable`, `/role`, `/sign-out`, `/password-reset`: an admin
  administers accounts; `POST /password/reset` uses a reset link, `PUT /account/password`
  changes one's own password.
* `/account/totp`: a TOTP second factor with recovery codes (required for admins when
  `GATEHOUSE_AUTH_REQUIRE_ADMIN_TOTP` is on); `POST /login` then takes `totp_code`.
* `GET /audit` (admin): every admin action and security event; `POST /audit` records the
  gateway's operator actions.

Errors are JSON: `{"error": "<code>", "detail": "<sentence>"}`.
"""


def build_state(settings: AuthSettings) -> AuthState:
    """Every long-lived object of the service, built from ``settings``."""
    ring = ring_for(settings)
    client: redis.Redis | None = None
    store: WindowStore
    if settings.redis_url:
        client = connect_redis(settings.redis_url)
        store = RedisWindowStore(client)
    else:
        store = LocalWindowStore()
    return AuthState(
        settings=settings,
        engine=create_db_engine(settings),
        hasher=PasswordHasher(settings.bcrypt_rounds),
        ring=ring,
        tokens=TokenService(
            ring,
            issuer=settings.issuer,
            audience=settings.audience,
            ttl_seconds=settings.token_ttl_seconds,
        ),
        limiter=LoginRateLimiter(
            store,
            prefix=settings.redis_prefix,
            window_seconds=settings.rate_limit_window_seconds,
            per_client=settings.rate_limit_per_client,
            per_email_client=settings.rate_limit_per_email_client,
            per_email=settings.rate_limit_per_email,
            email_window_seconds=settings.rate_limit_email_window_seconds,
        ),
        signups=SignupRateLimiter(
            store,
            prefix=settings.redis_prefix,
            per_client=settings.signup_rate_limit_per_client,
            window_seconds=settings.signup_rate_limit_window_seconds,
        ),
        redis=client,
        revocations=Revocations(
            client,
            prefix=settings.revocation_prefix,
            max_token_lifetime=retention_seconds(settings),
        ),
        sealer=_sealer(settings),
    )


def _sealer(settings: AuthSettings) -> Sealer:
    keys = [key.get_secret_value() for key in settings.totp_encryption_keys]
    if not keys:
        logger.log(
            logging.WARNING if settings.is_production else logging.INFO,
            "GATEHOUSE_AUTH_TOTP_ENCRYPTION_KEYS is not set: TOTP secrets are stored readable",
        )
    return Sealer(keys)


def _close_state(state: AuthState) -> None:
    state.limiter.store.close()
    if state.redis is not None:
        state.redis.close()
    state.engine.dispose()


async def _try_ensure_admin(state: AuthState) -> bool:
    """One attempt; False (logged) when the database is not there or not migrated yet."""
    try:
        await asyncio.to_thread(ensure_admin_account, state.engine, state.settings, state.hasher)
    except SQLAlchemyError as exc:
        logger.warning(
            "cannot ensure the admin yet (is the database up and migrated? "
            "`gatehouse-auth migrate`): %s; retrying every %gs",
            str(exc).splitlines()[0][:200],
            BOOTSTRAP_RETRY_SECONDS,
        )
        return False
    return True


async def _ensure_admin_until_done(state: AuthState) -> None:
    while not await _try_ensure_admin(state):
        await asyncio.sleep(BOOTSTRAP_RETRY_SECONDS)


def health_checks(app: FastAPI) -> Mapping[str, HealthCheck]:
    state: AuthState | None = getattr(app.state, "auth", None)
    if state is None:
        return {}

    async def database() -> None:
        await asyncio.to_thread(ping, state.engine)

    checks: dict[str, HealthCheck] = {"database": database}
    if state.redis is not None:
        client = state.redis

        async def redis_ping() -> None:
            await asyncio.to_thread(client.ping)

        checks["redis"] = redis_ping
    return checks


def create_app(settings: AuthSettings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.migrate_on_start:
            from gatehouse_auth.migrations import upgrade

            await asyncio.to_thread(upgrade, settings)
        state = await asyncio.to_thread(build_state, settings)
        app.state.auth = state
        # The first attempt runs before serving, so a service that answers has
        # its admin; a database that is down or unmigrated (a quick error, see
        # db.py) moves the retries to the background instead of blocking start.
        tasks = start_background_work(state)
        if not await _try_ensure_admin(state):
            tasks.append(asyncio.create_task(_ensure_admin_until_done(state)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            _close_state(state)

    app = create_service_app(
        settings,
        checks=lambda: health_checks(app),
        title="Gatehouse auth",
        summary="Accounts, login, signed JWTs and JWKS",
        description=DESCRIPTION,
        version="0.1.0",
        lifespan=lifespan,
    )
    install_database_error_handlers(app)
    install_body_limit(app, settings.max_body_bytes)
    app.include_router(api_router)
    return app
