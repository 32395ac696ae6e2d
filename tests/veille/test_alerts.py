"""Convergence alerts with time travel (the veille reads ``created_at``; the worker's clock is
injected), on SQLite and on real PostgreSQL: a wave raises exactly one explained alert, spread
reports or a single resident raise none, a new area behaves sensibly, waves end, and the full
recomputation decides like the per-report evaluation."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from veille_support import DIGNE, FORCALQUIER, MANE, NIOZELLES, NOW, aware, file_at

from webhook.store import tickets
from webhook.store.db import (
    OutboxMessage,
    Ticket,
    VeilleAlert,
    VeilleChannel,
    VeilleQueue,
)
from webhook.veille import alerts, present
from webhook.veille.config import get_config
from webhook.veille.worker import VeilleWorker

Sessions = async_sessionmaker[AsyncSession]
DAY = dt.timedelta(days=1)
WEEK = dt.timedelta(weeks=1)
MANOSQUE = "04112"


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


async def open_service(sessions: Sessions, worker: VeilleWorker) -> None:
    """A report in Digne twenty weeks ago: the service has a history in the département."""
    await file_at(sessions, NOW - 20 * WEEK, commune=DIGNE, report_type="incivilite", fields={})
    await worker.drain()


async def all_alerts(sessions: Sessions) -> list[VeilleAlert]:
    async with sessions() as session:
        return list((await session.execute(select(VeilleAlert).order_by(VeilleAlert.id))).scalars())


async def file_and_evaluate(
    sessions: Sessions,
    worker: VeilleWorker,
    clock: Clock,
    moments: list[dt.datetime],
    residents: list[str | None] | None = None,
    **kwargs: object,
) -> list[Ticket]:
    """File each report at its moment, in time order, and let the worker evaluate it a minute
    later, then refresh the waves it joined when that falls due, as its loop does."""
    filed = []
    people = residents if residents is not None else [f"r{n}" for n in range(len(moments))]
    refresh = dt.timedelta(seconds=get_config().alerts.refresh_seconds)
    for when, resident in sorted(zip(moments, people, strict=True), key=lambda p: p[0]):
        filed.append(await file_at(sessions, when, resident=resident, **kwargs))  # type: ignore[arg-type]
        clock.now = when + dt.timedelta(minutes=1)
        assert await worker.run_once() == 1
        clock.now += refresh
        await worker.refresh_if_due()
    return filed


async def test_a_wave_from_six_residents_raises_exactly_one_explained_alert(
    sessions: Sessions,
) -> None:
    async with sessions() as session, session.begin():
        session.add_all(
            [
                VeilleChannel(
                    agency_id="04-prefecture",
                    territory=territory,
                    kind="email",
                    target=f"veille-{n}@prefecture.example",
                    active=True,
                )
                for n, territory in enumerate(
                    ["departement:04", "commune:04088", "epci:240400440@04", "commune:04070"]
                )
            ]
        )
    clock = Clock(NOW)
    worker = VeilleWorker(sessions, clock=clock)
    moments = [NOW - 3 * DAY + n * 10 * dt.timedelta(hours=1) for n in range(6)]
    filed = await file_and_evaluate(sessions, worker, clock, moments)

    found = await all_alerts(sessions)
    assert len(found) == 1
    alert = found[0]
    assert (alert.area_kind, alert.area_code, alert.report_type, alert.subtype) == (
        "commune",
        FORCALQUIER,
        "arnaque",
        "faux_conseiller",
    )
    assert alert.count == 6 and alert.residents == 6 and alert.peak_count == 6
    assert alert.status == "open" and alert.ended_at is None
    assert alert.p_value < 0.001 and alert.floor_used and alert.expected == 0.2
    assert present.explanation(alert, get_config()) == (
        "Moins de 11 signalements d'arnaque (faux conseiller bancaire) à Forcalquier en 7 jours, "
        "contre 0,2 attendu."
    )
    async with sessions() as session:
        linked = set(
            (
                await session.execute(
                    select(Ticket.id).where(*alerts.alert_reports(alert, get_config()))
                )
            ).scalars()
        )
        deliveries = (
            (
                await session.execute(
                    select(OutboxMessage).where(OutboxMessage.alert_id.is_not(None))
                )
            )
            .scalars()
            .all()
        )
        queued = await session.scalar(select(func.count()).select_from(VeilleQueue))
    assert linked == {t.id for t in filed}
    assert queued == 0
    # the observers of the département, of Forcalquier and of its EPCI — not Digne's; once each
    assert sorted(d.payload["document"]["area"]["code"] for d in deliveries) == [FORCALQUIER] * 3
    targets = set()
    async with sessions() as session:
        for delivery in deliveries:
            channel = await session.get(VeilleChannel, delivery.payload["veille_channel_id"])
            assert channel is not None
            targets.add(channel.territory)
    assert targets == {"departement:04", "commune:04088", "epci:240400440@04"}
    for delivery in deliveries:
        assert delivery.ticket_id is None and delivery.kind == "email"
        assert delivery.payload["document"]["count"] == "< 11"
        assert "Jean Martin" not in str(delivery.payload)


async def test_the_alert_is_raised_at_the_fourth_report_and_followed_by_the_next(
    sessions: Sessions,
) -> None:
    clock = Clock(NOW)
    worker = VeilleWorker(sessions, clock=clock)
    moments = [NOW - 3 * DAY + n * 6 * dt.timedelta(hours=1) for n in range(6)]
    for n, when in enumerate(moments):
        await file_and_evaluate(sessions, worker, clock, [when], residents=[f"r{n}"])
        found = await all_alerts(sessions)
        # P(X >= 3 | 0.2) = 0.0011 is not below 0.001; P(X >= 4 | 0.2) = 0.00006 is
        assert len(found) == (0 if n < 3 else 1), n
    assert found[0].count == 6 and aware(found[0].raised_at) == moments[3] + dt.timedelta(minutes=1)


async def test_reports_joining_a_wave_wait_for_one_refresh_while_a_new_wave_is_raised_at_once(
    sessions: Sessions,
) -> None:
    """At a peak, a report that joins a wave going on is not recounted one by one: the worker
    refreshes that wave's figures in one batch, ``refresh_seconds`` after the first report it
    left waiting. The report that makes a wave raises it at once."""
    refresh = dt.timedelta(seconds=get_config().alerts.refresh_seconds)
    assert dt.timedelta(0) < refresh <= dt.timedelta(minutes=1)
    clock = Clock(NOW)
    worker = VeilleWorker(sessions, clock=clock)
    for n in range(4):
        await file_at(sessions, NOW - dt.timedelta(hours=2, minutes=-n), resident=f"r{n}")
        assert await worker.run_once() == 1
    (alert,) = await all_alerts(sessions)
    assert alert.count == 4 and aware(alert.raised_at) == NOW
    assert worker.deferred == set()

    clock.now = NOW + dt.timedelta(seconds=5)
    for n in range(4, 6):
        await file_at(sessions, NOW, resident=f"r{n}")
        assert await worker.run_once() == 1
    key = alerts.AlertKey("04", "commune", FORCALQUIER, "arnaque", "faux_conseiller")
    assert key in worker.deferred
    assert await worker.refresh_if_due() is None  # not due yet: the figures wait
    (alert,) = await all_alerts(sessions)
    assert alert.count == 4

    clock.now = NOW + dt.timedelta(seconds=5) + refresh
    outcome = await worker.refresh_if_due()
    assert outcome is not None and alert.id in outcome.updated and not outcome.created
    (alert,) = await all_alerts(sessions)
    assert alert.count == 6 and alert.residents == 6 and alert.peak_count == 6
    assert aware(alert.updated_at) == clock.now
    assert worker.deferred == set() and await worker.refresh_if_due(force=True) is None


async def test_six_reports_spread_over_twelve_weeks_raise_nothing(sessions: Sessions) -> None:
    clock = Clock(NOW)
    worker = VeilleWorker(sessions, clock=clock)
    moments = [NOW - 12 * WEEK + n * 2 * WEEK for n in range(6)]
    await file_and_evaluate(sessions, worker, clock, moments)
    assert await all_alerts(sessions) == []


async def test_six_reports_from_one_resident_raise_nothing(sessions: Sessions) -> None:
    clock = Clock(NOW)
    worker = VeilleWorker(sessions, clock=clock)
    moments = [NOW - 2 * DAY + n * dt.timedelta(hours=3) for n in range(6)]
    await file_and_evaluate(sessions, worker, clock, moments, residents=["r1"] * 6)
    assert await all_alerts(sessions) == []
    # a seventh report from someone else makes two residents: the wave is real
    await file_and_evaluate(sessions, worker, clock, [NOW - DAY], residents=["r2"])
    (alert,) = await all_alerts(sessions)
    assert alert.count == 7 and alert.residents == 2


async def test_reports_without_a_conversation_count_as_different_residents(
    sessions: Sessions,
) -> None:
    clock = Clock(NOW)
    worker = VeilleWorker(sessions, clock=clock)
    moments = [NOW - 2 * DAY + n * dt.timedelta(hours=3) for n in range(4)]
    await file_and_evaluate(sessions, worker, clock, moments, residents=[None] * 4)
    (alert,) = await all_alerts(sessions)
    assert alert.residents == 4


async def test_a_new_area_gets_the_floor_and_alerts_only_on_a_real_wave(
    sessions: Sessions,
) -> None:
    clock = Clock(NOW)
    worker = VeilleWorker(sessions, clock=clock)
    # the very first reports of a brand new area: two, then three, raise nothing
    await file_and_evaluate(sessions, worker, clock, [NOW - 2 * DAY, NOW - DAY, NOW - 3 * DAY])
    assert await all_alerts(sessions) == []
    # a fourth in the same week is a wave even without history (expected: the floor, 0.2)
    await file_and_evaluate(sessions, worker, clock, [NOW - dt.timedelta(hours=2)])
    (alert,) = await all_alerts(sessions)
    assert alert.floor_used and alert.expected == 0.2 and alert.baseline_weeks == 0
    figures = present.public_figures(alert, get_config())
    assert figures.expected == 0.2 and figures.count == "< 11" and figures.p_value == "< 0.001"


async def test_an_area_with_a_busy_baseline_needs_many_more_reports(sessions: Sessions) -> None:
    clock = Clock(NOW)
    worker = VeilleWorker(sessions, clock=clock)
    await open_service(sessions, worker)
    # Manosque: two scams a week for the twelve weeks before the window
    baseline = [NOW - 8 * DAY - n * 3.5 * DAY for n in range(24)]
    for n, when in enumerate(baseline):
        await file_at(sessions, when, commune=MANOSQUE, resident=f"b{n}")
    await worker.drain()
    assert await all_alerts(sessions) == []
    # six in the window are within what the baseline explains (P(X >= 6 | 2) = 0.017)
    await file_and_evaluate(
        sessions, worker, clock, [NOW - n * DAY for n in range(6)], commune=MANOSQUE
    )
    assert await all_alerts(sessions) == []
    # six more make twelve in seven days (P(X >= 12 | 2) < 0.0001)
    await file_and_evaluate(
        sessions,
        worker,
        clock,
        [NOW - n * DAY + dt.timedelta(hours=1) for n in range(6)],
        residents=[f"x{n}" for n in range(6)],
        commune=MANOSQUE,
    )
    found = await all_alerts(sessions)
    assert [(a.area_code, a.subtype) for a in found] == [(MANOSQUE, "faux_conseiller")]
    alert = found[0]
    assert alert.count == 12 and alert.baseline_count == 24 and not alert.floor_used
    assert abs(alert.expected - 2.0) < 0.01
    figures = present.public_figures(alert, get_config())
    assert figures.count == 12 and figures.expected == 2.0 and isinstance(figures.p_value, float)
    assert present.explanation(alert, get_config()).startswith(
        "12 signalements d'arnaque (faux conseiller bancaire) à Manosque en 7 jours, contre 2,0"
    )


async def test_a_small_baseline_is_not_given_back_by_the_expectation(sessions: Sessions) -> None:
    clock = Clock(NOW)
    worker = VeilleWorker(sessions, clock=clock)
    await open_service(sessions, worker)
    # five scams in Forcalquier in the twelve weeks before: expected 5/12 = 0.42 would give 5 back
    for n in range(5):
        await file_at(sessions, NOW - 20 * DAY - n * 10 * DAY, resident=f"b{n}")
    await worker.drain()
    await file_and_evaluate(sessions, worker, clock, [NOW - n * DAY for n in range(6)])
    (alert,) = await all_alerts(sessions)
    assert alert.baseline_count == 5 and not alert.floor_used
    figures = present.public_figures(alert, get_config())
    assert figures.expected == "< 0.9" and figures.p_value == "< 0.001"
    assert "contre moins de 0,9 attendu" in present.explanation(alert, get_config())


async def test_one_wave_one_alert_then_it_ends_and_a_new_wave_is_a_new_alert(
    sessions: Sessions,
) -> None:
    clock = Clock(NOW)
    worker = VeilleWorker(sessions, clock=clock)
    await open_service(sessions, worker)
    await file_and_evaluate(sessions, worker, clock, [NOW - n * DAY for n in range(5)])
    (first,) = await all_alerts(sessions)
    # still going on two days later: a new report updates the same alert
    await file_and_evaluate(sessions, worker, clock, [NOW + 2 * DAY], residents=["late"])
    (same,) = await all_alerts(sessions)
    assert same.id == first.id and same.count == 6 and same.ended_at is None
    # ten days later the window holds fewer than three reports: the sweep ends the wave
    clock.now = NOW + 10 * DAY
    outcome = await worker.sweep_if_due(force=True)
    assert outcome is not None and outcome.ended == [first.id]
    (ended,) = await all_alerts(sessions)
    assert aware(ended.ended_at) == NOW + 10 * DAY and ended.status == "open"
    # a month later, a new wave: a new alert. The area has a history now (the first wave: six
    # reports in the twelve weeks before, 0.5 expected): four reports are not enough, five are
    later = NOW + 30 * DAY
    moments = [later + n * dt.timedelta(hours=5) for n in range(5)]
    await file_and_evaluate(sessions, worker, clock, moments[:4])
    assert len(await all_alerts(sessions)) == 1
    await file_and_evaluate(sessions, worker, clock, moments[4:], residents=["r9"])
    found = await all_alerts(sessions)
    assert [a.id for a in found] == [first.id, first.id + 1]
    assert found[1].ended_at is None and found[1].expected == 0.5 and not found[1].floor_used


async def test_a_wave_across_an_epci_is_the_epci_s_alert(sessions: Sessions) -> None:
    clock = Clock(NOW)
    worker = VeilleWorker(sessions, clock=clock)
    communes = [FORCALQUIER, FORCALQUIER, NIOZELLES, NIOZELLES, "04106", "04106"]  # one EPCI
    for n, commune in enumerate(communes):
        await file_and_evaluate(
            sessions,
            worker,
            clock,
            [NOW + n * dt.timedelta(hours=7)],
            residents=[f"r{n}"],
            commune=commune,
        )
    found = await all_alerts(sessions)
    assert [(a.area_kind, a.area_code, a.subtype) for a in found] == [
        ("epci", "240400440", "faux_conseiller")
    ]
    assert (
        present.where(found[0], get_config())
        == "dans l'EPCI CC Pays Forcalquier et Montagne de Lure"
    )


async def test_the_running_worker_refreshes_the_waves_it_left_waiting(sessions: Sessions) -> None:
    """The worker's own loop (as in the gateway): a wave raised at once, then two reports that
    join it wait, then the loop refreshes them once refresh_seconds have passed."""
    refresh = dt.timedelta(seconds=get_config().alerts.refresh_seconds)
    clock = Clock(NOW)
    worker = VeilleWorker(sessions, clock=clock)

    async def counts() -> list[int]:
        return [a.count for a in await all_alerts(sessions)]

    async def until(check: Callable[[], Awaitable[bool]]) -> None:
        for _ in range(400):
            if await check():
                return
            await asyncio.sleep(0.025)
        raise AssertionError("the worker did not get there in 10 s")

    worker.start()
    try:
        for n in range(4):
            await file_at(sessions, NOW - dt.timedelta(hours=2, minutes=-n), resident=f"r{n}")
        worker.wake()
        await until(lambda: _equals(counts(), [4]))
        for n in range(4, 6):
            await file_at(sessions, NOW, resident=f"r{n}")
        worker.wake()
        await until(lambda: _true(bool(worker.deferred)))
        assert await counts() == [4]
        clock.now = NOW + refresh + dt.timedelta(seconds=1)
        worker.wake()
        await until(lambda: _equals(counts(), [6]))
        assert worker.deferred == set()
    finally:
        await worker.stop()


async def _equals(value: Awaitable[object], expected: object) -> bool:
    return await value == expected


async def _true(value: bool) -> bool:
    return value


async def test_a_report_explained_by_a_wave_under_a_wider_key_leaves_that_key_alone(
    sessions: Sessions,
) -> None:
    """The EPCI's keys decide on the reports no narrower wave explains: a report of
    Forcalquier's wave adds none, so the worker does not recount the EPCI for it; reports of its
    other communes do, and raise the EPCI's wave. The end state is the full recomputation's."""
    clock = Clock(NOW)
    worker = VeilleWorker(sessions, clock=clock)
    start = NOW - 2 * DAY
    forcalquier = [start + n * dt.timedelta(hours=2) for n in range(5)]
    await file_and_evaluate(sessions, worker, clock, forcalquier)
    wave = alerts.AlertKey("04", "commune", FORCALQUIER, "arnaque", "faux_conseiller")
    epci = [
        alerts.AlertKey("04", "epci", "240400440", "arnaque", subtype)
        for subtype in ("faux_conseiller", "")
    ]
    assert [alerts.AlertKey.of(a) for a in await all_alerts(sessions)] == [wave]

    ticket_keys = [wave, dataclasses.replace(wave, subtype=""), *epci]
    outcome = alerts.Outcome()
    async with sessions() as session:
        wanted = await alerts._to_evaluate(session, "04", [ticket_keys], outcome)
    assert outcome.deferred == [wave]
    assert wanted == set()  # the commune's whole type and the EPCI's keys: all explained
    elsewhere = [dataclasses.replace(k, area_code=NIOZELLES) for k in ticket_keys[:2]] + epci
    async with sessions() as session:
        assert await alerts._to_evaluate(session, "04", [elsewhere], alerts.Outcome()) == set(
            elsewhere
        )

    others = [(NIOZELLES, 11), (NIOZELLES, 13), (NIOZELLES, 15), ("04106", 17)]
    for n, (commune, hours) in enumerate(others):
        await file_and_evaluate(
            sessions,
            worker,
            clock,
            [start + dt.timedelta(hours=hours)],
            residents=[f"o{n}"],
            commune=commune,
        )
    await file_and_evaluate(sessions, worker, clock, [start + dt.timedelta(hours=20)])
    await worker.refresh_if_due(force=True)
    incremental = {
        (alerts.AlertKey.of(a), a.count, a.ended_at is None) for a in await all_alerts(sessions)
    }
    assert {k for k, _, going_on in incremental if going_on} == {wave, epci[0]}
    async with sessions() as session, session.begin():
        await session.execute(VeilleAlert.__table__.delete())
    await alerts.recompute(sessions, "04", clock.now, get_config(), deliver=False)
    recomputed = {
        (alerts.AlertKey.of(a), a.count, a.ended_at is None) for a in await all_alerts(sessions)
    }
    assert incremental == recomputed


async def test_a_mixed_wave_of_scams_is_the_type_s_alert(sessions: Sessions) -> None:
    clock = Clock(NOW)
    worker = VeilleWorker(sessions, clock=clock)
    kinds = ["faux_conseiller", "faux_policier", "faux_artisan", "sms_internet", "coucou_maman"]
    for n, kind in enumerate(kinds):
        await file_and_evaluate(
            sessions,
            worker,
            clock,
            [NOW + n * dt.timedelta(hours=9)],
            residents=[f"r{n}"],
            fields={"type_arnaque": kind},
        )
    found = await all_alerts(sessions)
    assert [(a.area_kind, a.area_code, a.subtype) for a in found] == [("commune", FORCALQUIER, "")]


async def test_violence_is_watched_at_departement_level_only(sessions: Sessions) -> None:
    clock = Clock(NOW)
    worker = VeilleWorker(sessions, clock=clock)
    await file_and_evaluate(
        sessions,
        worker,
        clock,
        [NOW - n * dt.timedelta(hours=10) for n in range(5)],
        report_type="violences_conjugales",
        fields={"description": "il me frappe"},
    )
    found = await all_alerts(sessions)
    assert [(a.area_kind, a.area_code, a.report_type) for a in found] == [
        ("departement", "04", "violences_conjugales")
    ]


async def test_holiday_declarations_and_duplicates_are_not_waves(sessions: Sessions) -> None:
    clock = Clock(NOW)
    worker = VeilleWorker(sessions, clock=clock)
    await file_and_evaluate(
        sessions,
        worker,
        clock,
        [NOW - n * dt.timedelta(hours=5) for n in range(8)],
        report_type="absence_vacances",
        fields={},
    )
    assert await all_alerts(sessions) == []
    filed = []
    for n in range(4):
        filed.append(await file_at(sessions, NOW - n * DAY, resident=f"d{n}"))
    async with sessions() as session, session.begin():
        await session.execute(
            update(Ticket)
            .where(Ticket.id.in_([t.id for t in filed[1:]]))
            .values(status="rejected_duplicate")
        )
    await worker.drain()
    assert await all_alerts(sessions) == []


async def test_full_recomputation_decides_like_the_evaluation_per_report(
    sessions: Sessions,
) -> None:
    config = get_config()
    scenario = [
        *[(FORCALQUIER, NOW - n * dt.timedelta(hours=9), "faux_conseiller") for n in range(5)],
        *[(MANE, NOW - 20 * DAY - n * DAY, "faux_policier") for n in range(5)],
        *[(DIGNE, NOW - n * dt.timedelta(hours=20), "sms_internet") for n in range(4)],
        *[(MANOSQUE, NOW - n * 6 * DAY, "faux_artisan") for n in range(12)],
    ]
    for n, (commune, when, kind) in enumerate(scenario):
        await file_at(
            sessions, when, commune=commune, resident=f"s{n}", fields={"type_arnaque": kind}
        )
    outcome = await alerts.recompute(sessions, "04", NOW, config, deliver=False)
    recomputed = {
        (a.area_kind, a.area_code, a.subtype, a.count, a.baseline_count)
        for a in await all_alerts(sessions)
    }
    assert len(outcome.created) == len(recomputed) == 2
    async with sessions() as session, session.begin():
        await session.execute(VeilleAlert.__table__.delete())
    worker = VeilleWorker(sessions, clock=Clock(NOW))
    await worker.drain()
    incremental = {
        (a.area_kind, a.area_code, a.subtype, a.count, a.baseline_count)
        for a in await all_alerts(sessions)
    }
    assert incremental == recomputed
    assert {k[:3] for k in recomputed} == {
        ("commune", FORCALQUIER, "faux_conseiller"),
        ("commune", DIGNE, "sms_internet"),
    }


async def test_a_report_filed_without_its_sub_kind_gets_it_from_the_worker(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a process that files without loading the veille (no sub-kind hook)
    monkeypatch.setattr(tickets, "subtype_of", None)
    filed = await file_at(sessions, NOW - DAY, fields={"type_arnaque": "faux_policier"})
    async with sessions() as session:
        assert (await session.get(Ticket, filed.id)).subtype is None  # type: ignore[union-attr]
    await VeilleWorker(sessions, clock=Clock(NOW)).drain()
    async with sessions() as session:
        ticket = await session.get(Ticket, filed.id)
    assert ticket is not None and ticket.subtype == "faux_policier"


async def test_a_sweep_over_many_waves_reads_the_tickets_in_one_pass(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(NOW)
    worker = VeilleWorker(sessions, clock=clock)
    await file_and_evaluate(sessions, worker, clock, [NOW - n * DAY for n in range(5)])
    await file_and_evaluate(
        sessions,
        worker,
        clock,
        [NOW - n * DAY for n in range(5)],
        residents=[f"d{n}" for n in range(5)],
        commune=DIGNE,
    )
    assert len(await all_alerts(sessions)) == 2
    monkeypatch.setattr(alerts, "SWEEP_IN_ONE_PASS", 1)
    clock.now = NOW + 10 * DAY
    outcome = await worker.sweep_if_due(force=True)
    assert outcome is not None and len(outcome.ended) == 2
    assert all(a.ended_at is not None for a in await all_alerts(sessions))
