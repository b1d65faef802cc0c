"""Create the accounts table.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("hashed_password", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False, server_default="user"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("uq_accounts_email", "accounts", ["email"], unique=True)
    op.create_index(
        "uq_accounts_username_lower", "accounts", [sa.text("lower(username)")], unique=True
    )
    op.create_index("ix_accounts_created_at", "accounts", ["created_at"])


def downgrade() -> None:
    op.drop_table("accounts")
