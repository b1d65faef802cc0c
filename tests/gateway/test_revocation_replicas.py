"""Revocation across two gateway processes: no replica accepts a token 1 s after it is revoked.

Two gateways share the machine's Redis (a revocation prefix of this module's
own) and route ``app`` with ``auth: required``; tokens are signed with a real
key and served JWKS (:class:`support.jwks.KeyServer`). Revocations are written
and announced as auth does (:class:`support.revocations.Revoker`). After each
one both replicas are polled until they refuse; any acceptance later than 1 s
after the revocation fails the test. The measured delays (time of the first
refusing request's send, per replica) are printed as a distribution.

A logout through the real auth service (PostgreSQL, the shared Redis) reaches
both replicas the same way (the delay measured from before the logout call).
A drain asked of the operator API lands in that auth's audit log under the
admin who asked.
The operator API refuses a demoted admin (auth revokes the subject on a role
change) the same way, and a Redis restarted mid-way (a redis-server of the
test's own) neither empties the gateways' lists nor loses what was revoked
while they were cut off.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis
from gateway.operator_support import ADMIN, bearer, wait_until
from support.auth import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    PASSWORD,
    AuthService,
    auth_env,
    launch,
    login_token,
    signup,
)
from support.databases import REDIS_URL, drop_redis_prefix, unique_redis_prefix
from support.gateway import GatewayProcess, Launcher, gateway_route, metric_value
from support.jwks import KeyServer
from support.processes import ServiceProcess
from support.redis_server import RedisServer
from support.revocations import Revoker

REVOCATIONS = 50
BOUND = 1.0


@pytest.fixture(scope="module")
def prefix() -> Iterator[str]:
    chosen = unique_redis_prefix("revocation")
    yield chosen
    drop_redis_prefix(chosen)


def document(jwks_url: str, backend: ServiceProcess) -> dict[str, Any]:
    return {
        "auth": {"jwks_url": jwks_url},
        "routes": [gateway_route([backend], auth="required")],
    }


def start_pair(
    launcher: Launcher,
    jwks_url: str,
    backend: ServiceProcess,
    redis_url: str,
    prefix: str,
    **extra_env: str,
) -> list[GatewayProcess]:
    env = {
        **extra_env,
        "REDIS_URL": redis_url,
        "GATEHOUSE_GATEWAY_REDIS_PREFIX": prefix + "gw:",
        "GATEHOUSE_GATEWAY_REVOCATION_PREFIX": prefix,
        "GATEHOUSE_GATEWAY_REDIS_RETRY_INTERVAL": "0.2",
    }
    with ThreadPoolExecutor(2) as pool:
        futures = [
            pool.submit(launcher.gateway, document(jwks_url, backend), env=env, name=f"gw-{side}")
            for side in ("a", "b")
        ]
        return [future.result() for future in futures]


@pytest.fixture(scope="module")
def pair(
    module_launcher: Launcher, keys: KeyServer, backend_pool: list[ServiceProcess], prefix: str
) -> list[GatewayProcess]:
    return start_pair(module_launcher, keys.url, backend_pool[0], REDIS_URL, prefix)


@pytest.fixture(scope="module")
def revoker(prefix: str) -> Revoker:
    return Revoker(redis.Redis.from_url(REDIS_URL), prefix)


def status(client: httpx.Client, token: str, path: str = "/whoami") -> int:
    return client.get(path, headers=bearer(token)).status_code


def refusal_delays(
    clients: list[httpx.Client], token: str, revoked_at: float, path: str = "/whoami"
) -> list[float]:
    """Poll every replica until it refuses ``token``; per replica, seconds from
    ``revoked_at`` (wall clock) to the send of its first refusing request.
    Fails if any replica accepts a request sent more than :data:`BOUND` after."""
    delays: list[float | None] = [None] * len(clients)
    while None in delays:
        for index, client in enumerate(clients):
            if delays[index] is not None:
                continue
            sent = time.time()
            code = status(client, token, path)
            if code == 401:
                delays[index] = sent - revoked_at
            else:
                assert code == 200, code
                assert sent - revoked_at <= BOUND, (
                    f"replica {index} accepted {sent - revoked_at:.3f}s after"
                )
    return [d for d in delays if d is not None]


def test_no_replica_accepts_a_revoked_token_a_second_later(
    pair: list[GatewayProcess], keys: KeyServer, revoker: Revoker
) -> None:
    """Half token ids (logout), half subjects (sign out everywhere, disable, role change)."""
    clients = [g.client() for g in pair]
    delays: list[float] = []
    try:
        for round_ in range(REVOCATIONS):
            jti, subject = uuid.uuid4().hex, f"user-{round_}"
            token = keys.token(jti=jti, sub=subject)
            assert [status(c, token) for c in clients] == [200, 200]
            revoked_at = time.time()
            if round_ % 2:
                revoker.revoke_token(jti, time.time() + 600)
            else:
                revoker.revoke_subject(subject)
            delays.extend(refusal_delays(clients, token, revoked_at))
            # and it stays refused, with the reason, on both
            for client in clients:
                response = client.get("/whoami", headers=bearer(token))
                assert response.status_code == 401
                assert response.json()["reason"] == "revoked"
                assert 'error="invalid_token"' in response.headers["www-authenticate"]
    finally:
        for client in clients:
            client.close()
    ms = [d * 1000 for d in sorted(delays)]
    print(
        f"\nrevocation delay over {REVOCATIONS} revocations x {len(pair)} replicas: "
        f"min {ms[0]:.1f} ms, median {statistics.median(ms):.1f} ms, "
        f"p95 {ms[int(len(ms) * 0.95) - 1]:.1f} ms, max {ms[-1]:.1f} ms"
    )
    assert max(delays) <= BOUND
    for gateway in pair:
        text = gateway.metrics()
        assert metric_value(text, "gatehouse_revocation_store_up") == 1
        assert metric_value(text, "gatehouse_revocation_events_total") >= REVOCATIONS
        assert metric_value(text, "gatehouse_revocation_refusals_total", reason="token") >= 1
        assert metric_value(text, "gatehouse_revocation_refusals_total", reason="subject") >= 1
        assert metric_value(text, "gatehouse_revocation_entries", kind="jti") >= REVOCATIONS // 2


@dataclass
class AuthPair:
    """Real auth publishing revocations under ``prefix``, and two gateways trusting it."""

    auth: AuthService
    gateways: list[GatewayProcess]


@pytest.fixture(scope="module")
def auth_pair(
    module_launcher: Launcher,
    backend_pool: list[ServiceProcess],
    postgres_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[AuthPair]:
    prefix = unique_redis_prefix("revocation-auth")
    data = tmp_path_factory.mktemp("auth-revocation")
    env = auth_env(
        data, database_url=postgres_url, redis_prefix=prefix + "auth:", revocation_prefix=prefix
    )
    auth = launch(data, "postgres", env)
    module_launcher.started.append(auth.process)
    jwks_url = f"{auth.url}/.well-known/jwks.json"
    gateways = start_pair(
        module_launcher,
        jwks_url,
        backend_pool[0],
        REDIS_URL,
        prefix,
        GATEHOUSE_GATEWAY_AUTH_URL=auth.url,
    )
    yield AuthPair(auth, gateways)
    drop_redis_prefix(prefix)


def test_a_logout_through_auth_reaches_both_replicas_within_a_second(
    auth_pair: AuthPair,
) -> None:
    """Real auth publishes the logout; the replicas never saw it before."""
    clients = [g.client() for g in auth_pair.gateways]
    try:
        with auth_pair.auth.client() as client:
            account = signup(client)
            login = client.post("/login", json={"email": account["email"], "password": PASSWORD})
            tokens = login.json()
            access = tokens["access_token"]
            assert [status(c, access) for c in clients] == [200, 200]
            revoked_at = time.time()
            response = client.post(
                "/logout", json={"refresh_token": tokens["refresh_token"]}, headers=bearer(access)
            )
            assert response.status_code == 204, response.text
        delays = refusal_delays(clients, access, revoked_at)
        shown = [round(d * 1000, 1) for d in delays]
        print(f"\nlogout through auth: the replicas refused it after {shown} ms")
        assert max(delays) <= BOUND
    finally:
        for client in clients:
            client.close()


def test_an_admin_demoted_through_auth_is_refused_by_the_operator_api(
    auth_pair: AuthPair,
) -> None:
    """Auth's role change revokes the subject: the operator API on both replicas refuses the
    old admin token within a second, and a token issued right after (``iat`` to the
    millisecond, so the same second does not matter) carries the new role: 403."""
    auth = auth_pair.auth
    clients = [httpx.Client(base_url=g.admin_url, timeout=10) for g in auth_pair.gateways]
    try:
        with auth.client() as client:
            root = login_token(client, ADMIN_EMAIL, ADMIN_PASSWORD)
            account = signup(client)
            me = client.post("/login", json={"email": account["email"], "password": PASSWORD})
            ident = client.get("/me", headers=bearer(me.json()["access_token"])).json()["id"]
            promoted = client.put(
                f"/accounts/{ident}/role", json={"role": "admin"}, headers=bearer(root)
            )
            assert promoted.status_code == 200, promoted.text
            admin = login_token(client, account["email"], PASSWORD)
            assert [status(c, admin, ADMIN + "/state") for c in clients] == [200, 200]
            revoked_at = time.time()
            demoted = client.put(
                f"/accounts/{ident}/role", json={"role": "user"}, headers=bearer(root)
            )
            assert demoted.status_code == 200, demoted.text
            delays = refusal_delays(clients, admin, revoked_at, ADMIN + "/state")
            print(
                f"\ndemotion through auth: refused after {[round(d * 1000, 1) for d in delays]} ms"
            )
            assert max(delays) <= BOUND
            again = login_token(client, account["email"], PASSWORD)
        assert [status(c, again, ADMIN + "/state") for c in clients] == [403, 403]
    finally:
        for client in clients:
            client.close()


def test_a_new_sign_in_after_a_subject_revocation_is_accepted(
    pair: list[GatewayProcess], keys: KeyServer, revoker: Revoker
) -> None:
    not_before = revoker.revoke_subject("returning")
    later = keys.token(sub="returning", iat=int(not_before) + 1, nbf=int(not_before))
    earlier = keys.token(sub="returning", iat=int(not_before) - 1)
    with pair[0].client() as client:
        wait_until(lambda: status(client, earlier) == 401, "the subject revocation")
        assert status(client, later) == 200


def test_a_demoted_admin_is_refused_by_the_operator_api_within_a_second(
    pair: list[GatewayProcess], keys: KeyServer, revoker: Revoker
) -> None:
    """Auth revokes the subject when it changes a role or disables an account."""
    admin = keys.token(sub="admin-7", roles=["admin"], email="ops@example.com")
    clients = [httpx.Client(base_url=g.admin_url, timeout=10) for g in pair]
    try:
        assert [status(c, admin, ADMIN + "/state") for c in clients] == [200, 200]
        revoked_at = time.time()
        revoker.revoke_subject("admin-7")
        assert max(refusal_delays(clients, admin, revoked_at, ADMIN + "/state")) <= BOUND
        response = clients[0].get(ADMIN + "/state", headers=bearer(admin))
        assert response.json()["reason"] == "revoked"
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
        drain = clients[1].post(
            ADMIN + "/routes/app/backends/127.0.0.1:1/drain", headers=bearer(admin)
        )
        assert drain.status_code == 401
        state = clients[1].get(ADMIN + "/state", headers=bearer(keys.token(roles=["admin"])))
        assert state.json()["revocations"]["state"] == "up"
    finally:
        for client in clients:
            client.close()


@pytest.mark.slow
def test_redis_restarted_mid_way(
    launcher: Launcher,
    keys: KeyServer,
    backend_pool: list[ServiceProcess],
    private_redis: RedisServer,
) -> None:
    """Down: both replicas keep refusing what they knew and say Redis is down. Back,
    empty (no persistence): they still refuse it, and pick up by resync a revocation
    written while they were cut off and never announced to them."""
    private_redis.start()
    pair = start_pair(launcher, keys.url, backend_pool[0], private_redis.redis_url, "t:")
    old, away = uuid.uuid4().hex, uuid.uuid4().hex
    old_token, away_token = keys.token(jti=old), keys.token(jti=away)
    clients = [g.client() for g in pair]
    try:
        Revoker(private_redis.client(), "t:").revoke_token(old, time.time() + 600)
        for client in clients:
            wait_until(lambda c=client: status(c, old_token) == 401, "the first revocation")
        private_redis.stop()
        for gateway in pair:
            wait_until(
                lambda g=gateway: metric_value(g.metrics(), "gatehouse_revocation_store_up") == 0,
                "the outage in the metric",
            )
        assert [status(c, old_token) for c in clients] == [401, 401]
        assert [status(c, away_token) for c in clients] == [200, 200]
        private_redis.start()
        Revoker(private_redis.client(), "t:").revoke_token(away, time.time() + 600, publish=False)
        for client in clients:
            wait_until(lambda c=client: status(c, away_token) == 401, "the resync")
        assert [status(c, old_token) for c in clients] == [401, 401]
        for gateway in pair:
            assert metric_value(gateway.metrics(), "gatehouse_revocation_store_up") == 1
            assert metric_value(gateway.metrics(), "gatehouse_revocation_resyncs_total") >= 2
    finally:
        for client in clients:
            client.close()


def test_a_drain_is_in_auth_audit_log_under_the_admin_who_asked(
    auth_pair: AuthPair, backend_pool: list[ServiceProcess]
) -> None:
    """The operator API records the drain at auth (POST /audit) with the admin's token."""
    backend = f"127.0.0.1:{backend_pool[0].port}"
    with auth_pair.auth.client() as client:
        root = login_token(client, ADMIN_EMAIL, ADMIN_PASSWORD)
        for action in ("drain", "restore"):
            response = httpx.post(
                f"{auth_pair.gateways[0].admin_url}{ADMIN}/routes/app/backends/{backend}/{action}",
                headers=bearer(root),
                timeout=10,
            )
            assert response.status_code == 200, response.text

        def recorded() -> list[dict[str, Any]]:
            rows = client.get(
                "/audit", params={"target": f"app/{backend}"}, headers=bearer(root)
            ).json()["items"]
            return list(rows)

        wait_until(lambda: len(recorded()) >= 2, "the drain and the restore in the audit log")
        rows = recorded()
    assert {row["action"] for row in rows[:2]} == {"backend_drained", "backend_undrained"}
    assert all(row["actor_email"] == ADMIN_EMAIL for row in rows[:2])
