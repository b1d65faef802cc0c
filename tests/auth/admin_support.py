"""What the account administration tests share: an auth instance on PostgreSQL and Redis
with a revocation prefix of its own, accounts made through the API, and audit look-ups."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg2
import redis
from support.auth import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, AuthService, auth_env, launch
from support.databases import (
    REDIS_URL,
    drop_redis_prefix,
    temporary_database,
    unique_redis_prefix,
)

PUBLIC_URL = "https://gatehouse.example.test"
PER_EMAIL_CLIENT = 3


@dataclass
class AdminStack:
    """A running auth instance, its database URL and the revocation prefix it publishes under."""

    service: AuthService
    database_url: str
    revocation_prefix: str

    def client(self) -> httpx.Client:
        return self.service.client()

    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        """Run one statement against the instance's database (psycopg2), committed."""
        dsn = self.database_url.replace("postgresql+psycopg2://", "postgresql://", 1)
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute(query, args)
            return list(cur.fetchall()) if cur.description else []

    def revoked_subjects(self) -> dict[str, float]:
        client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
        try:
            pairs = client.zrange(f"{self.revocation_prefix}{{rev}}:sub", 0, -1, withscores=True)
        finally:
            client.close()
        return {str(member): float(score) for member, score in pairs}


@contextmanager
def admin_stack(data_dir: Path, label: str, **settings: str) -> Iterator[AdminStack]:
    """Auth on a PostgreSQL database of its own, with Redis under prefixes of its own."""
    prefix = unique_redis_prefix(label)
    revocation_prefix = unique_redis_prefix(f"{label}-rev")
    with temporary_database(label) as url:
        env = auth_env(
            data_dir,
            database_url=url,
            redis_prefix=prefix,
            revocation_prefix=revocation_prefix,
            public_url=PUBLIC_URL,
            rate_limit_window_seconds="600",
            rate_limit_per_email_client=str(PER_EMAIL_CLIENT),
            **settings,
        )
        service = launch(data_dir, label, env)
        try:
            yield AdminStack(service, url, revocation_prefix)
        finally:
            service.process.stop()
            drop_redis_prefix(prefix)
            drop_redis_prefix(revocation_prefix)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(
    client: httpx.Client, email: str, password: str = PASSWORD, **extra: str
) -> httpx.Response:
    return client.post("/login", json={"email": email, "password": password, **extra})


def tokens(
    client: httpx.Client, email: str, password: str = PASSWORD, **extra: str
) -> dict[str, Any]:
    response = login(client, email, password, **extra)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def admin_headers(client: httpx.Client) -> dict[str, str]:
    return bearer(tokens(client, ADMIN_EMAIL, ADMIN_PASSWORD)["access_token"])


def account_id(client: httpx.Client, token: str) -> int:
    response = client.get("/me", headers=bearer(token))
    assert response.status_code == 200, response.text
    return int(response.json()["id"])


def next_second() -> None:
    """Wait into the next whole second: access tokens carry ``iat`` in whole seconds, and a
    revocation refuses those issued before it (iat < not-before), so one issued in the same
    second as a revocation is refused too."""
    time.sleep(1.05 - time.time() % 1)


def audit_rows(client: httpx.Client, admin: dict[str, str], **filters: str) -> list[dict[str, Any]]:
    response = client.get("/audit", params={"limit": "100", **filters}, headers=admin)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items
