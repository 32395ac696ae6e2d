"""Cellule de veille, second step:

- an alert's reports are those of its key over its wave (``wave_start`` to ``window_end``), read
  when needed, instead of rows linking every report to its alerts (at a national peak, thousands
  of rows per alert and per evaluation);
- a ticket keeps its sub-kind (``tickets.subtype``: the answer to its type's sub-kind question,
  a category, not personal data) in a column of its own: the purge, which empties the fields,
  leaves it, and the veille reads it from an index;
- the alerts' window counts read one covering index (commune, type, date, status,
  conversation, sub-kind).

Revision ID: 0005_veille_waves
Revises: 0004_veille
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_veille_waves"
down_revision = "0004_veille"
branch_labels = None
depends_on = None

# the sub-kind questions of webhook/veille/veille.yml when this revision was written
SUBTYPE_QUESTIONS = {
    "arnaque": "type_arnaque",
    "vol_cambriolage": "type_vol",
    "incivilite": "type_incivilite",
}


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    # No batch mode on SQLite: recreating a table referenced by others would cascade-delete
    # their rows. New columns stay nullable there (the application always sets them).
    op.add_column("veille_alerts", sa.Column("wave_start", sa.DateTime(timezone=True)))
    op.execute(
        "UPDATE veille_alerts SET wave_start = COALESCE("
        "(SELECT MIN(t.created_at) FROM veille_alert_tickets l JOIN tickets t ON t.id = l.ticket_id"
        " WHERE l.alert_id = veille_alerts.id), window_start)"
    )
    if not sqlite:
        op.alter_column("veille_alerts", "wave_start", nullable=False)
    op.drop_table("veille_alert_tickets")

    op.add_column("tickets", sa.Column("subtype", sa.String(48), nullable=True))
    tickets = sa.table(
        "tickets",
        sa.column("report_type", sa.String()),
        sa.column("fields", sa.JSON()),
        sa.column("subtype", sa.String()),
    )
    for report_type, question in SUBTYPE_QUESTIONS.items():
        op.execute(
            tickets.update()
            .where(tickets.c.report_type == report_type)
            .values(subtype=tickets.c.fields[question].as_string())
        )
    op.drop_index("ix_tickets_commune_type_created", table_name="tickets")
    op.create_index(
        "ix_tickets_veille_window",
        "tickets",
        ["commune_insee", "report_type", "created_at", "status", "conversation_id", "subtype"],
    )


def _drop_column(table: str, column: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f'ALTER TABLE "{table}" DROP COLUMN "{column}"')
    else:
        op.drop_column(table, column)


def downgrade() -> None:
    op.drop_index("ix_tickets_veille_window", table_name="tickets")
    op.create_index(
        "ix_tickets_commune_type_created", "tickets", ["commune_insee", "report_type", "created_at"]
    )
    _drop_column("tickets", "subtype")
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
    _drop_column("veille_alerts", "wave_start")
