"""Security: tickets' tracking codes, server-side dashboard sessions, durable Telegram updates.

Revision ID: 0003_security
Revises: 0002
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_security"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Tickets filed before this revision have no tracking code: they are followed from the
    # conversation that filed them (agencies keep the reference).
    # A plain column and a unique index: SQLite adds both in place (a unique constraint would
    # make batch mode recreate "tickets", and dropping it with foreign keys on would
    # cascade-delete the history).
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("tracking_code", sa.String(16), nullable=True))
    op.create_index("ix_tickets_tracking_code", "tickets", ["tracking_code"], unique=True)
    op.create_table(
        "agent_sessions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column(
            "agent_id",
            sa.Integer(),
            sa.ForeignKey("agents.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "telegram_updates",
        sa.Column("update_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("telegram_updates")
    op.drop_table("agent_sessions")
    op.drop_index("ix_tickets_tracking_code", table_name="tickets")
    if op.get_bind().dialect.name == "sqlite":
        # in place (SQLite >= 3.35), not batch mode: see upgrade()
        op.execute('ALTER TABLE "tickets" DROP COLUMN "tracking_code"')
    else:
        op.drop_column("tickets", "tracking_code")
