"""Account administration: disabled accounts, token cut-off, TOTP, password resets, audit log.

Revision ID: 0003_admin
Revises: 0002_sessions
Create Date: 2026-12-01
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0003_admin"
down_revision = "0002_sessions"
branch_labels = None
depends_on = None


def _when(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _account_id() -> sa.Column[int]:
    return sa.Column(
        "account_id",
        sa.Integer(),
        sa.ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
    )


def upgrade() -> None:
    # Plain ADD COLUMN (SQLite has it too): no table copy, which would reflect
    # the accounts table and trip over its expression index on SQLite.
    op.add_column(
        "accounts", sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column("accounts", sa.Column("tokens_not_before", sa.Float(), nullable=True))
    op.add_column("accounts", sa.Column("totp_secret", sa.String(length=255), nullable=True))
    op.add_column(
        "accounts", sa.Column("totp_pending_secret", sa.String(length=255), nullable=True)
    )
    op.add_column("accounts", sa.Column("totp_last_step", sa.BigInteger(), nullable=True))

    op.create_table(
        "password_resets",
        sa.Column("id", sa.Integer(), primary_key=True),
        _account_id(),
        sa.Column("token_hash", sa.String(length=64), nullable=False, unique=True),
        _when("created_at"),
        _when("expires_at"),
        _when("used_at", nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
    )
    op.create_index("ix_password_resets_account_id", "password_resets", ["account_id"])

    op.create_table(
        "totp_recovery_codes",
        sa.Column("id", sa.Integer(), primary_key=True),
        _account_id(),
        sa.Column("code_hash", sa.String(length=64), nullable=False, unique=True),
        _when("used_at", nullable=True),
    )
    op.create_index("ix_totp_recovery_codes_account_id", "totp_recovery_codes", ["account_id"])

    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        _when("at"),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_email", sa.String(length=254), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=254), nullable=True),
        sa.Column("client_address", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.create_index("ix_audit_events_action_at", "audit_events", ["action", "at"])
    op.create_index("ix_audit_events_target_at", "audit_events", ["target", "at"])
    op.create_index("ix_audit_events_actor_at", "audit_events", ["actor_id", "at"])


def downgrade() -> None:
    op.drop_table("audit_events")
    op.drop_table("totp_recovery_codes")
    op.drop_table("password_resets")
    with op.batch_alter_table("accounts") as batch:
        for column in (
            "totp_last_step",
            "totp_pending_secret",
            "totp_secret",
            "tokens_not_before",
            "disabled",
        ):
            batch.drop_column(column)
