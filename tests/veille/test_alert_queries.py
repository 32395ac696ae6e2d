"""How the alerts read the tickets, on SQLite and on real PostgreSQL: a ticket keeps the EPCI it
is counted in (filed, filled in by the worker, re-aligned after a change of the reference data);
the evaluation per filing reads one aggregate per area and type and finds the same figures as a
query per key over the EPCI's communes; reports without a sub-kind are not explained by a
sub-kind's wave, per filing as in the full recomputation."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String, cast, func, literal, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from veille_support import DIGNE, FORCALQUIER, MANE, NIOZELLES, NOW, aware, file_at

from webhook.store import tickets
from webhook.store.db import Ticket, VeilleAlert
from webhook.veille import alerts, figures
from webhook.veille.config import get_config
from webhook.veille.worker import VeilleWorker

Sessions = async_sessionmaker[AsyncSession]
DAY = dt.timedelta(days=1)
WEEK = dt.timedelta(weeks=1)
MANOSQUE = "04112"
EPCI_FORCALQUIER = "240400440"


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


async def epci_of_ticket(sessions: Sessions, ticket_id: int) -> str | None:
    async with sessions() as session:
        return await session.scalar(select(Ticket.epci_siren).where(Ticket.id == ticket_id))


def test_the_epci_of_a_ticket_is_its_current_commune_s() -> None:
    assert tickets.epci_of(FORCALQUIER) == EPCI_FORCALQUIER
    assert tickets.epci_of("13055") == "200054807"  # Marseille
    # an arrondissement and a former code are counted under no EPCI by the veille
    assert tickets.epci_of("13201") is None
    assert tickets.epci_of("01003") is None  # merged into 01165
    assert tickets.epci_of(None) is None


async def test_a_filed_report_keeps_its_epci_and_the_worker_fills_in_a_missing_one(
    sessions: Sessions,
) -> None:
    filed = await file_at(sessions, NOW - DAY)
    assert await epci_of_ticket(sessions, filed.id) == EPCI_FORCALQUIER
    # filed by a process older than migration 0006
    async with sessions() as session, session.begin():
        await session.execute(update(Ticket).where(Ticket.id == filed.id).values(epci_siren=None))
        before = aware(await session.scalar(select(Ticket.updated_at).where(Ticket.id == filed.id)))
    await VeilleWorker(sessions, clock=Clock(NOW)).drain()
    assert await epci_of_ticket(sessions, filed.id) == EPCI_FORCALQUIER
    async with sessions() as session:
        after = aware(await session.scalar(select(Ticket.updated_at).where(Ticket.id == filed.id)))
    assert after == before


async def test_a_change_of_the_reference_data_is_followed_by_veille_recompute(
    sessions: Sessions,
) -> None:
    moved = await file_at(sessions, NOW - DAY)
    kept = await file_at(sessions, NOW - DAY, commune=DIGNE)
    # as if Forcalquier had belonged to another EPCI when the report was filed
    async with sessions() as session, session.begin():
        await session.execute(
            update(Ticket).where(Ticket.id == moved.id).values(epci_siren="200067437")
        )
    assert await tickets.align_epcis(sessions, "04") == 1
    assert await epci_of_ticket(sessions, moved.id) == EPCI_FORCALQUIER
    assert await epci_of_ticket(sessions, kept.id) == tickets.epci_of(DIGNE)
    assert await tickets.align_epcis(sessions, "04") == 0


async def reference(
    session: AsyncSession, key: alerts.AlertKey, now: dt.datetime
) -> tuple[int, int, set[str]]:
    """A key's window count, baseline count and window residents, one plain query each, the
    EPCI read as the list of its communes."""
    settings = get_config().alerts
    geo = figures.geography(key.departement)
    if key.area_kind == "commune":
        area = Ticket.commune_insee == key.area_code
    elif key.area_kind == "epci":
        area = Ticket.commune_insee.in_(geo.epcis[key.area_code])
    else:
        area = Ticket.departement == key.departement
    filters = [area, Ticket.report_type == key.report_type, Ticket.status != "rejected_duplicate"]
    if key.subtype:
        filters.append(Ticket.subtype == key.subtype)
    window_start = now - dt.timedelta(days=settings.window_days)
    in_window = [Ticket.created_at > window_start, Ticket.created_at <= now]
    count = await session.scalar(select(func.count()).where(*filters, *in_window))
    opened = await session.scalar(
        select(func.min(Ticket.created_at)).where(Ticket.departement == key.departement)
    )
    baseline_start = max(window_start - settings.baseline_weeks * WEEK, aware(opened))  # type: ignore[type-var]
    baseline = await session.scalar(
        select(func.count()).where(
            *filters, Ticket.created_at >= baseline_start, Ticket.created_at <= window_start
        )
    )
    resident = func.coalesce(Ticket.conversation_id, literal("t:") + cast(Ticket.id, String))
    people = set((await session.execute(select(resident).where(*filters, *in_window))).scalars())
    return int(count or 0), int(baseline or 0), people


async def test_one_aggregate_per_area_and_type_finds_the_figures_of_a_query_per_key(
    sessions: Sessions,
) -> None:
    config = get_config()
    scenario = [
        # (commune, days ago, sub-kind answer, resident)
        *[(FORCALQUIER, 0.2 * n, "faux_conseiller", f"a{n}") for n in range(6)],
        *[(NIOZELLES, 0.5 + n, "faux_policier", f"b{n % 2}") for n in range(4)],
        *[("04106", 1 + n, "", f"c{n}") for n in range(3)],
        *[(FORCALQUIER, 10 + 7 * n, "faux_conseiller", f"d{n}") for n in range(8)],
        *[(MANE, 2 + n, "sms_internet", f"e{n}") for n in range(5)],
        *[(MANOSQUE, 20 + 9 * n, "faux_artisan", f"f{n}") for n in range(6)],
        (DIGNE, 140, "", "g0"),
    ]
    for commune, days, answer, resident in scenario:
        await file_at(
            sessions,
            NOW - dt.timedelta(days=days),
            commune=commune,
            resident=resident,
            fields={"type_arnaque": answer},
        )
    for n in range(5):
        await file_at(
            sessions,
            NOW - n * DAY,
            commune=[FORCALQUIER, MANE, DIGNE][n % 3],
            report_type="violences_conjugales",
            resident=None,
            fields={},
        )
    geo = figures.geography("04")
    keys: set[alerts.AlertKey] = set()
    for commune in (FORCALQUIER, NIOZELLES, "04106", MANE, MANOSQUE, DIGNE):
        for answer in ("faux_conseiller", "faux_policier", None):
            keys.update(alerts.keys_for(geo, config, commune, "arnaque", answer))
        keys.update(alerts.keys_for(geo, config, commune, "violences_conjugales", None))
    async with sessions() as session:
        # all at once (a batch of the worker), then one by one (a sweep of single keys)
        together = await alerts.observe_all(session, sorted(keys), NOW, config, alerts.History())
        assert not any(o.residents_known for o in together)
        await alerts.count_residents(session, together, config)
        alone = [
            await alerts.observe(session, key, NOW, config, alerts.History())
            for key in sorted(keys)
        ]
        decided = 0
        for observation, single in zip(together, alone, strict=True):
            count, baseline, people = await reference(session, observation.key, NOW)
            figures_found = (observation.count, observation.baseline_count)
            assert figures_found == (count, baseline), observation.key
            assert (single.count, single.baseline_count, single.residents) == (
                count,
                baseline,
                observation.residents,
            )
            evaluation = alerts.assess(observation, config, residents=len(people))
            if alerts._residents_decide(count, evaluation.expected, config):
                decided += 1
                assert observation.residents == len(people), observation.key
            else:
                assert observation.residents == 0
    assert decided >= 4
    assert any(o.count and o.baseline_count for o in together)


async def test_reports_without_a_sub_kind_are_not_explained_by_a_sub_kind_s_wave(
    sessions: Sessions,
) -> None:
    """Four "faux conseiller" scams across the EPCI (an EPCI sub-kind wave) and four scams of no
    stated kind in four of its other communes: those four are a wave of the EPCI's scams of
    their own, per filing as in the full recomputation."""
    config = get_config()
    scenario = [
        (FORCALQUIER, "faux_conseiller"),
        (FORCALQUIER, "faux_conseiller"),
        (NIOZELLES, "faux_conseiller"),
        (NIOZELLES, "faux_conseiller"),
        ("04065", ""),
        ("04087", ""),
        ("04101", ""),
        ("04104", ""),
    ]
    for n, (commune, answer) in enumerate(scenario):
        await file_at(
            sessions,
            NOW - dt.timedelta(hours=5 * n + 1),
            commune=commune,
            resident=f"s{n}",
            fields={"type_arnaque": answer},
        )
    await alerts.recompute(sessions, "04", NOW, config, deliver=False)
    async with sessions() as session, session.begin():
        recomputed = {
            (a.area_kind, a.area_code, a.subtype, a.count)
            for a in (await session.execute(select(VeilleAlert))).scalars()
        }
        await session.execute(VeilleAlert.__table__.delete())
    await VeilleWorker(sessions, clock=Clock(NOW)).drain()
    async with sessions() as session:
        incremental = {
            (a.area_kind, a.area_code, a.subtype, a.count)
            for a in (await session.execute(select(VeilleAlert))).scalars()
        }
    assert (
        incremental
        == recomputed
        == {
            ("epci", EPCI_FORCALQUIER, "faux_conseiller", 4),
            ("epci", EPCI_FORCALQUIER, "", 8),
        }
    )


async def test_on_sqlite_the_counts_of_an_epci_read_an_index_alone(sessions: Sessions) -> None:
    async with sessions() as session:
        if session.get_bind().dialect.name != "sqlite":
            return
        config = get_config()
        key = alerts.AlertKey("04", "epci", EPCI_FORCALQUIER, "arnaque", "faux_conseiller")
        explained = alerts._Explained.of(
            [alerts.AlertKey("04", "commune", FORCALQUIER, "arnaque", "faux_policier")]
        )
        statements = [
            select(func.count()).where(*alerts._filters(key, config), Ticket.created_at > NOW),
            select(func.count()).where(
                *alerts._filters(key, config), ~explained.condition(), Ticket.created_at > NOW
            ),
            select(alerts._residents_among([*alerts._filters(key, config)])),
        ]
        for statement in statements:
            compiled = statement.compile(
                dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}
            )
            plan = (await session.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))).all()
            details = " ".join(str(row[-1]) for row in plan)
            assert "COVERING INDEX ix_tickets_veille_epci" in details, details
