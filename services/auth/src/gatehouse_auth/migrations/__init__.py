"""Alembic migrations of the accounts schema, run by ``gatehouse-auth migrate``.

Deployments run it before the service starts (``make demo`` does it for
you); the service itself never creates tables. Several replicas may start it
at once: on PostgreSQL an advisory lock makes them take turns (see env.py).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from gatehouse_auth.db import create_db_engine
from gatehouse_auth.settings import AuthSettings

MIGRATIONS_DIR = Path(__file__).resolve().parent


def alembic_config(settings: AuthSettings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["settings"] = settings
    return config


def upgrade(settings: AuthSettings, revision: str = "head") -> None:
    """Bring the database of ``settings`` up to ``revision``."""
    config = alembic_config(settings)
    engine = create_db_engine(settings)
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def current_revision(settings: AuthSettings) -> str | None:
    """The revision the database is at (None before the first migration)."""
    from alembic.runtime.migration import MigrationContext

    engine = create_db_engine(settings)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
