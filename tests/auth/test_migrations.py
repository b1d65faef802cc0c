"""The migrations build exactly the tables the models describe (no drift), on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from gatehouse_auth import audit, resets, session_models, totp  # noqa: F401  (registers the tables)
from gatehouse_auth.db import create_db_engine
from gatehouse_auth.migrations import upgrade
from gatehouse_auth.settings import AuthSettings


# SQLite cannot reflect the expression index on lower(username); the models say it anyway.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings(
    "ignore:autogenerate skipping metadata-specified expression-based index"
)
@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
def test_the_migrated_schema_matches_the_models(
    backend: str, tmp_path: Path, fresh_postgres_url: str
) -> None:
    url = fresh_postgres_url if backend == "postgres" else None
    settings = AuthSettings(database_url=url, data_dir=tmp_path)
    upgrade(settings)
    engine = create_db_engine(settings)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection)
            differences = compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()
    assert differences == []
