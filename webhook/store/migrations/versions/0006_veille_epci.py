"""Cellule de veille, third step: a ticket keeps the EPCI it is counted in.

- ``tickets.epci_siren``: the SIREN of the EPCI of the ticket's commune, when its code is that
  of a current commune (a former code or a municipal arrondissement: none, as the veille counts
  them), written when the report is filed. An EPCI's alert counts read one range of an index
  instead of a list of communes (at a national peak, tens of thousands of reports a week);
- the alerts' counts of an EPCI part read an index (EPCI, département, type, date), those of
  the types watched only per département another (département, type, date). On SQLite both
  also hold status, sub-kind, commune and resident: the alerts count on them alone. On
  PostgreSQL both are narrow (the EPCI's keeps the sub-kind, for a sub-kind's residents): at a
  peak the reports of the last hours are not all-visible yet (no vacuum since), an index-only
  scan would read the table anyway, and the planner prefers the index on the report type to a
  wide one.

The tickets filed before this revision get their EPCI from the routing reference data shipped
with it (one UPDATE per EPCI).

Revision ID: 0006_veille_epci
Revises: 0005_veille_waves
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import routing

revision = "0006_veille_epci"
down_revision = "0005_veille_waves"
branch_labels = None
depends_on = None

# communes per UPDATE statement (bound parameters stay well under SQLite's limit)
CHUNK = 500


def _epci(code: str) -> str | None:
    """As webhook.store.tickets.epci_of when this revision was written."""
    commune = routing.get_engine().commune(code)
    if commune is None or commune.insee != code or commune.kind != "commune":
        return None
    return commune.epci_siren or None


def upgrade() -> None:
    op.add_column("tickets", sa.Column("epci_siren", sa.String(9), nullable=True))
    tickets = sa.table(
        "tickets", sa.column("commune_insee", sa.String()), sa.column("epci_siren", sa.String())
    )
    bind = op.get_bind()
    codes = bind.execute(
        sa.select(tickets.c.commune_insee).where(tickets.c.commune_insee.is_not(None)).distinct()
    ).scalars()
    by_epci: dict[str, list[str]] = {}
    for code in codes:
        siren = _epci(str(code))
        if siren is not None:
            by_epci.setdefault(siren, []).append(str(code))
    for siren, communes in sorted(by_epci.items()):
        communes.sort()
        for begin in range(0, len(communes), CHUNK):
            bind.execute(
                tickets.update()
                .where(tickets.c.commune_insee.in_(communes[begin : begin + CHUNK]))
                .values(epci_siren=siren)
            )
    epci = ["epci_siren", "departement", "report_type", "created_at"]
    departement = ["departement", "report_type", "created_at"]
    if bind.dialect.name == "sqlite":
        # what the alerts read too: their counts are index-only
        epci += ["status", "subtype", "commune_insee", "conversation_id"]
        departement += ["status", "subtype", "conversation_id"]
    else:
        # the residents of a sub-kind are found in the index
        epci += ["subtype"]
    op.create_index("ix_tickets_veille_epci", "tickets", epci)
    op.create_index("ix_tickets_veille_departement", "tickets", departement)


def downgrade() -> None:
    op.drop_index("ix_tickets_veille_departement", table_name="tickets")
    op.drop_index("ix_tickets_veille_epci", table_name="tickets")
    # No batch mode on SQLite: recreating the tickets table would cascade-delete the rows that
    # reference it.
    if op.get_bind().dialect.name == "sqlite":
        op.execute('ALTER TABLE "tickets" DROP COLUMN "epci_siren"')
    else:
        op.drop_column("tickets", "epci_siren")
