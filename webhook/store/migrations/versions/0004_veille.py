"""Cellule de veille: observers' territories, convergence alerts (and their outbox deliveries),
the queue of tickets to evaluate, the territories' delivery channels, store facts (demo data),
indexes for the veille's reads.

Revision ID: 0004_veille
Revises: 0003_security
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_veille"
down_revision = "0003_security"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("territory", sa.String(40), nullable=True))
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("territory", sa.String(40), nullable=True))
    op.create_table(
        "veille_alerts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("departement", sa.String(3), nullable=False),
        sa.Column("area_kind", sa.String(16), nullable=False),
        sa.Column("area_code", sa.String(16), nullable=False),
        sa.Column("report_type", sa.String(32), nullable=False),
        sa.Column("subtype", sa.String(48), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("residents", sa.Integer(), nullable=False),
        sa.Column("baseline_count", sa.Integer(), nullable=False),
        sa.Column("baseline_weeks", sa.Float(), nullable=False),
        sa.Column("expected", sa.Float(), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=False),
        sa.Column("floor_used", sa.Boolean(), nullable=False),
        sa.Column("peak_count", sa.Integer(), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(100), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(100), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
    )
    op.create_index("ix_veille_alerts_dep_status", "veille_alerts", ["departement", "status"])
    op.create_index(
        "ux_veille_alerts_ongoing",
        "veille_alerts",
        ["departement", "area_kind", "area_code", "report_type", "subtype"],
        unique=True,
        sqlite_where=sa.text("ended_at IS NULL"),
        postgresql_where=sa.text("ended_at IS NULL"),
    )
    op.create_table(
        "veille_alert_tickets",
        sa.Column(
            "alert_id",
            sa.Integer(),
            sa.ForeignKey("veille_alerts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "ticket_id",
            sa.Integer(),
            sa.ForeignKey("tickets.id", ondelete="CASCADE"),
            primary_key=True,
            index=True,
        ),
    )
    op.create_table(
        "veille_queue",
        sa.Column(
            "ticket_id",
            sa.Integer(),
            sa.ForeignKey("tickets.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "veille_channels",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("agency_id", sa.String(64), nullable=False, index=True),
        sa.Column("territory", sa.String(40), nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.String(500), nullable=False),
        sa.Column("secret", sa.String(200), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("territory", "kind", "target"),
    )
    op.create_table(
        "store_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(500), nullable=False),
    )
    # An outbox row is now a ticket's delivery or an alert's. On SQLite the batch recreates the
    # outbox table (nothing references it, so nothing cascades).
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("ticket_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("alert_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_outbox_alert_id", "veille_alerts", ["alert_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_index("ix_outbox_alert_id", ["alert_id"])
    op.create_index("ix_tickets_departement_created", "tickets", ["departement", "created_at"])
    op.create_index(
        "ix_tickets_commune_type_created",
        "tickets",
        ["commune_insee", "report_type", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_tickets_commune_type_created", table_name="tickets")
    op.drop_index("ix_tickets_departement_created", table_name="tickets")
    op.execute("DELETE FROM outbox WHERE ticket_id IS NULL")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_alert_id")
        batch.drop_constraint("fk_outbox_alert_id", type_="foreignkey")
        batch.drop_column("alert_id")
        batch.alter_column("ticket_id", existing_type=sa.Integer(), nullable=False)
    op.drop_table("store_meta")
    op.drop_table("veille_channels")
    op.drop_table("veille_queue")
    op.drop_table("veille_alert_tickets")
    op.drop_index("ux_veille_alerts_ongoing", table_name="veille_alerts")
    op.drop_index("ix_veille_alerts_dep_status", table_name="veille_alerts")
    op.drop_table("veille_alerts")
    for table in ("api_tokens", "agents"):
        if op.get_bind().dialect.name == "sqlite":
            # not batch mode: recreating "agents" would cascade-delete its sessions
            op.execute(f'ALTER TABLE "{table}" DROP COLUMN "territory"')
        else:
            op.drop_column(table, "territory")
