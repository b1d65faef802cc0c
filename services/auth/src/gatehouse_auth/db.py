"""The database engine, tuned so an outage is a quick error and recovery is automatic.

PostgreSQL: a connect timeout of a few seconds, TCP keepalives (a dead peer is
noticed even mid-query), a statement timeout, and ``pool_pre_ping`` so a
connection broken while the database was away is replaced on checkout instead
of failing a request; together they mean "database down" answers 503 within
seconds and "database back" works again with no restart.

SQLite (the embedded default): a file under the data folder, WAL journaling
so readers do not block the writer, and a busy timeout so concurrent signups
queue instead of failing with "database is locked".
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from gatehouse_auth.settings import AuthSettings

SQLITE_BUSY_TIMEOUT_SECONDS = 15


def _sqlite_engine(url: str) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
        pool_pre_ping=True,
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.close()

    return engine


def create_db_engine(settings: AuthSettings) -> Engine:
    """An engine for ``settings``; opens no connection until first used."""
    url = settings.sqlalchemy_url
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    connect_args: dict[str, Any] = {}
    if url.startswith("postgresql"):
        connect_args = {
            # libpq's minimum is 2 seconds and it takes whole seconds.
            "connect_timeout": max(2, math.ceil(settings.db_connect_timeout)),
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 2,
            "keepalives_count": 2,
            # Sent data unacknowledged this long (a partition mid-query) fails the
            # connection instead of waiting for the kernel's 15-minute default.
            "tcp_user_timeout": 10_000,
            "application_name": "gatehouse-auth",
        }
        if settings.db_statement_timeout_ms:
            connect_args["options"] = f"-c statement_timeout={settings.db_statement_timeout_ms}"
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_timeout=settings.db_connect_timeout,
        pool_recycle=1800,
        connect_args=connect_args,
    )


def ping(engine: Engine) -> None:
    """One round trip; raises when the database cannot answer."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
