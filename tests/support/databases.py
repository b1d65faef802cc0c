"""A PostgreSQL database of the test run's own, and Redis key prefixes per test.

The servers on 127.0.0.1 are shared with whatever else runs on the machine, so
the suite never touches data it did not create: it makes a database with a
unique name and drops it afterwards, and gives every test its own Redis prefix.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import redis
from psycopg2 import sql

POSTGRES_ADMIN_DSN = os.environ.get(
    "GATEHOUSE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("GATEHOUSE_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _admin_connection() -> psycopg2.extensions.connection:
    conn = psycopg2.connect(POSTGRES_ADMIN_DSN)
    conn.autocommit = True
    return conn


def database_url(name: str) -> str:
    base = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0]
    return f"{base}/{name}".replace("postgresql://", "postgresql+psycopg2://", 1)


@contextmanager
def temporary_database(label: str = "test") -> Iterator[str]:
    """Create ``gatehouse_<label>_<random>``, yield its SQLAlchemy URL, drop it."""
    name = f"gatehouse_{label}_{uuid.uuid4().hex[:10]}"
    conn = _admin_connection()
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        yield database_url(name)
    finally:
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        conn.close()


def unique_redis_prefix(label: str = "test") -> str:
    return f"gatehouse-test:{label}:{uuid.uuid4().hex[:10]}:"


def drop_redis_prefix(prefix: str, url: str = REDIS_URL) -> None:
    """Delete the keys under ``prefix``, and only those."""
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
