"""``tranquillite veille-demo --database-url URL``: a separate database with a plausible year of
synthetic reports for the Alpes-de-Haute-Provence (04) and the Jura (39), a few waves among them,
the alerts the cellule de veille would have raised day after day (the past ones closed), and demo
accounts — so that a préfecture can try the pages before any real report exists.

- The database is marked as demo data (``store_meta.demo``): every page of the agency space
  carries a banner, every CSV a first comment line and a header, every alert a ``demo`` flag and
  a "[DÉMONSTRATION]" explanation.
- It refuses the database the gateway is configured with (TRANQUILLITE_DATABASE_URL), and any
  database holding tickets that is not a demo database. Run again on a demo database, it starts
  over.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import secrets
import sys
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from reports.clock import PARIS
from webhook.agency import auth
from webhook.agency import territory as territories
from webhook.config import Settings
from webhook.store.db import (
    Base,
    StoreMeta,
    Ticket,
    VeilleAlert,
    create_engine,
    migrate,
    session_factory,
    utcnow,
)
from webhook.veille import alerts, figures, synthetic
from webhook.veille.config import VeilleConfig, get_config
from webhook.veille.synthetic import Wave

logger = logging.getLogger(__name__)

DEPARTEMENTS = ("04", "39")
# Reports per 1,000 inhabitants and per year (all types).
DEFAULT_RATE = 9.0
CLOSING_NOTE = (
    "Démonstration : vague examinée en cellule de veille ; information des communes et "
    "prévention auprès des personnes âgées."
)


class DemoRefused(Exception):
    """The database must not receive demo data (message in French)."""


def waves(departement: str, now: dt.datetime) -> list[Wave]:
    """The planted waves: recent ones (alerts open at the end), older ones (closed)."""
    day = dt.timedelta(days=1)
    if departement == "04":
        forcalquier_epci = ("04065", "04138", "04106", "04178")
        return [
            Wave(("04088",), "arnaque", "faux_conseiller", now - 5 * day, 4, 7),
            Wave(("04112",), "vol_cambriolage", "cambriolage", now - 70 * day, 6, 12),
            Wave(("04070",), "arnaque", "coucou_maman", now - 180 * day, 5, 9),
            Wave(forcalquier_epci, "vol_cambriolage", "autre", now - 40 * day, 6, 9),
        ]
    if departement == "39":
        champagnole = ("39097", "39009", "39015", "39083")
        return [
            Wave(("39300",), "arnaque", "faux_policier", now - 4 * day, 3, 8),
            Wave(("39198",), "incivilite", "rodeo", now - 25 * day, 5, 11),
            Wave(champagnole, "arnaque", "faux_artisan", now - 100 * day, 6, 9),
        ]
    return []


@dataclass
class DemoResult:
    tickets: dict[str, int] = field(default_factory=dict)
    alerts: int = 0
    open_alerts: int = 0
    accounts: list[tuple[str, str, str]] = field(default_factory=list)  # (login, password, role)
    token: str = ""


async def _check_database(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions() as session:
        tickets = int(await session.scalar(select(func.count()).select_from(Ticket)) or 0)
        demo = await figures.is_demo_in(session)
    if tickets and not demo:
        raise DemoRefused(
            f"cette base contient {tickets} signalement(s) qui ne sont pas des données de "
            "démonstration : choisissez une base vide et séparée"
        )
    if demo:
        async with engine.begin() as connection:
            for table in reversed(Base.metadata.sorted_tables):
                await connection.execute(delete(table))


async def _accounts(sessions: figures.Sessions, result: DemoResult) -> None:
    plan = [
        ("demo-prefecture-04", "04-prefecture", "observer", None),
        ("demo-cispd-forcalquier", "04-prefecture", "observer", "epci:240400440@04"),
        ("demo-clspd-forcalquier", "04-prefecture", "observer", "commune:04088"),
        ("demo-admin-prefecture-04", "04-prefecture", "agency_admin", None),
        ("demo-gendarmerie-forcalquier", "gn-3004391", "agent", None),
        ("demo-prefecture-39", "39-prefecture", "observer", None),
        ("demo-clspd-lons", "39-prefecture", "observer", "commune:39300"),
    ]
    for login, agency, role, territory in plan:
        password = secrets.token_urlsafe(12)
        agent = await auth.create_agent(sessions, agency, login, password, role, login)
        if territory:
            await territories.set_agent_territory(sessions, agent.id, territory)
        result.accounts.append((login, password, role))
    _token, clear = await auth.create_api_token(
        sessions, "04-prefecture", "démonstration", "observer"
    )
    result.token = clear


def _status(now: dt.datetime):  # type: ignore[no-untyped-def]
    def status_of(row: dict[str, object]) -> str:
        age = now - row["created_at"]  # type: ignore[operator]
        if age > dt.timedelta(days=30):
            return "closed"
        if age > dt.timedelta(days=3):
            return "acknowledged"
        return "transmitted"

    return status_of


async def fill(
    engine: AsyncEngine,
    *,
    now: dt.datetime | None = None,
    seed: int = 2026,
    rate: float = DEFAULT_RATE,
    config: VeilleConfig | None = None,
    evaluate_every: dt.timedelta = dt.timedelta(days=1),
) -> DemoResult:
    """Fill an empty (or demo) database with a demo year; returns what was made."""
    config = config or get_config()
    now = (now or utcnow()).replace(microsecond=0)
    await migrate(engine)
    await _check_database(engine)
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        session.add(StoreMeta(key="demo", value="1"))
    result = DemoResult()
    start = now - dt.timedelta(days=365)
    for departement in DEPARTEMENTS:
        generator = synthetic.Generator(departement, config, seed)
        population = sum(c.population or 0 for c in territories.departement_communes(departement))
        rows = list(generator.background(start, now, round(population / 1000 * rate)))
        for wave in waves(departement, now):
            rows += list(generator.wave(wave))
        result.tickets[departement] = await synthetic.insert_rows(
            sessions, rows, status_of=_status(now)
        )
    # the alerts, as the worker would have raised them day after day (at 20:00, Paris)
    evening = now.astimezone(PARIS).replace(hour=20, minute=0, second=0)
    moment = (start + dt.timedelta(weeks=config.alerts.baseline_weeks)).astimezone(PARIS)
    moment = moment.replace(hour=20, minute=0, second=0)
    while moment <= evening:
        for departement in DEPARTEMENTS:
            await alerts.recompute(
                sessions, departement, moment.astimezone(dt.UTC), config, deliver=False
            )
        moment += evaluate_every
    for departement in DEPARTEMENTS:
        await alerts.recompute(sessions, departement, now, config, deliver=False)
    async with sessions() as session, session.begin():
        ended = (
            await session.execute(
                select(VeilleAlert).where(
                    VeilleAlert.ended_at.is_not(None),
                    VeilleAlert.ended_at < now - dt.timedelta(days=14),
                )
            )
        ).scalars()
        for alert in ended:
            # closed by the (fictitious) cellule de veille after the wave
            alert.status = "closed"
            alert.acknowledged_at = alert.raised_at + dt.timedelta(days=1)
            alert.acknowledged_by = "demo:cellule-de-veille"
            alert.closed_at = alert.ended_at
            alert.closed_by = "demo:cellule-de-veille"
            alert.note = CLOSING_NOTE
        await session.flush()
        result.alerts = int(
            await session.scalar(select(func.count()).select_from(VeilleAlert)) or 0
        )
        result.open_alerts = int(
            await session.scalar(
                select(func.count()).select_from(VeilleAlert).where(VeilleAlert.status != "closed")
            )
            or 0
        )
    await _accounts(sessions, result)
    return result


def _same_database(a: str, b: str) -> bool:
    return a.strip().rstrip("/") == b.strip().rstrip("/")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tranquillite veille-demo",
        description="Fill a separate database with a demo year of the cellule de veille (04, 39).",
    )
    parser.add_argument("--database-url", required=True, help="SQLAlchemy URL of the demo base")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--rate", type=float, default=DEFAULT_RATE, help="reports per 1,000 inhabitants a year"
    )
    args = parser.parse_args(argv)
    for noisy in ("webhook.veille.alerts", "webhook.agency.auth", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if _same_database(args.database_url, Settings.from_env().database_url):
        print(
            "erreur : c'est la base configurée pour le service (TRANQUILLITE_DATABASE_URL) ; "
            "la démonstration va dans une base séparée",
            file=sys.stderr,
        )
        return 2

    async def run() -> DemoResult:
        engine = create_engine(args.database_url)
        try:
            return await fill(engine, seed=args.seed, rate=args.rate)
        finally:
            await engine.dispose()

    try:
        result = asyncio.run(run())
    except DemoRefused as exc:
        print(f"erreur : {exc}", file=sys.stderr)
        return 2
    print("Base de démonstration remplie (données fictives, marquées comme telles).")
    for departement, count in result.tickets.items():
        print(f"  {departement} : {count} signalements sur un an")
    print(f"  alertes : {result.alerts} dont {result.open_alerts} en cours")
    print("Comptes de démonstration (mots de passe affichés une seule fois) :")
    for login, password, role in result.accounts:
        print(f"  {login:32} {password}  ({role})")
    print(f"Jeton d'API observateur (04) : {result.token}")
    print(
        "Lancez la passerelle sur cette base (TRANQUILLITE_DATABASE_URL=...) puis ouvrez "
        "/agence/veille."
    )
    return 0
