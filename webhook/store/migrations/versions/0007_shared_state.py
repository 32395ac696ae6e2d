"""Stateless gateways: conversation states, notes for a running turn, shared token buckets and
small expiring entries (webhook.store.state), so that any gateway instance serves any request
and a restart loses nothing.

Revision ID: 0007_shared_state
Revises: 0006_veille_epci
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_shared_state"
down_revision = "0006_veille_epci"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conversation_states",
        sa.Column("conversation_id", sa.String(128), primary_key=True),
        sa.Column("owner", sa.String(32), nullable=True),
        sa.Column("data", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("in_report", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("lock_token", sa.String(32), nullable=True),
        sa.Column("locked_until", sa.Float(), nullable=True),
    )
    op.create_index("ix_conversation_states_owner", "conversation_states", ["owner"])
    op.create_index("ix_conversation_states_updated_at", "conversation_states", ["updated_at"])
    op.create_table(
        "conversation_notes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("conversation_id", sa.String(128), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index(
        "ix_conversation_notes_conversation_id", "conversation_notes", ["conversation_id"]
    )
    op.create_index("ix_conversation_notes_created_at", "conversation_notes", ["created_at"])
    op.create_table(
        "rate_buckets",
        sa.Column("key", sa.String(32), primary_key=True),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated", sa.Float(), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("full_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_rate_buckets_full_at", "rate_buckets", ["full_at"])
    op.create_table(
        "state_entries",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_state_entries_expires_at", "state_entries", ["expires_at"])


def downgrade() -> None:
    op.drop_table("state_entries")
    op.drop_table("rate_buckets")
    op.drop_table("conversation_notes")
    op.drop_table("conversation_states")
