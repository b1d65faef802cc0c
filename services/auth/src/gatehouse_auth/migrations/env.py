"""Alembic environment: runs online against the connection ``upgrade()`` hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text
from sqlmodel import SQLModel

from gatehouse_auth import audit, resets, totp  # noqa: F401  (registers the tables)
from gatehouse_auth.models import Account  # noqa: F401  (registers the table)
from gatehouse_auth.session_models import LoginSession  # noqa: F401  (registers the tables)

# Any constant; replicas migrating at once serialize on it.
ADVISORY_LOCK_ID = 0x6761_7465  # "gate"

config = context.config
connection = config.attributes["connection"]
is_postgres = connection.dialect.name == "postgresql"

if is_postgres:
    connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": ADVISORY_LOCK_ID})

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    # SQLite cannot ALTER most things; batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
