"""The operator commands of the cellule de veille: veille-demo (a separate database, marked as
demo data in every page and export, refused on a real one), bench-veille (a short run: it prints
figures, nothing is timed here), veille-channel, veille-recompute, agency-user --territory."""

from __future__ import annotations

import datetime as dt
import io
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from agency_support import login
from sqlalchemy import func, select
from veille_support import NOW, csv_counts, file_at, running_gateway

from webhook.agency import cli as agency_cli
from webhook.agency import territory as territories
from webhook.store.db import (
    Agent,
    StoreMeta,
    Ticket,
    VeilleAlert,
    VeilleChannel,
    create_engine,
    session_factory,
)
from webhook.veille import bench, demo
from webhook.veille import cli as veille_cli


async def test_the_demo_fills_a_separate_base_marked_as_demo_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"
    engine = create_engine(url)
    try:
        result = await demo.fill(engine, now=NOW, rate=2.0, evaluate_every=dt.timedelta(days=7))
        sessions = session_factory(engine)
        async with sessions() as session:
            meta = await session.get(StoreMeta, "demo")
            tickets = await session.scalar(select(func.count()).select_from(Ticket))
            open_alerts = (
                (await session.execute(select(VeilleAlert).where(VeilleAlert.ended_at.is_(None))))
                .scalars()
                .all()
            )
            descriptions = {
                t.fields.get("description")
                for t in (await session.execute(select(Ticket))).scalars()
            }
    finally:
        await engine.dispose()
    assert meta is not None and meta.value == "1"
    assert result.tickets["04"] > 250 and result.tickets["39"] > 400
    assert tickets == sum(result.tickets.values())
    assert descriptions == {"Signalement de démonstration, fictif."}
    # the planted recent waves are going on at the end of the year
    assert {(a.area_code, a.subtype) for a in open_alerts} >= {
        ("04088", "faux_conseiller"),
        ("39300", "faux_policier"),
    }
    logins = {login_name: password for login_name, password, _role in result.accounts}

    monkeypatch.setenv("TRANQUILLITE_OUTBOX_WORKER", "off")
    monkeypatch.setenv("TRANQUILLITE_VEILLE_WORKER", "off")
    async with running_gateway(url, tmp_path) as (app, client):
        app.state.veille_clock = lambda: NOW
        assert (
            await login(client, "demo-clspd-forcalquier", logins["demo-clspd-forcalquier"])
        ).status_code == 303
        page = await client.get("/agence/veille")
        assert "Données de démonstration, fictives" in page.text
        assert "Forcalquier" in page.text and "[DÉMONSTRATION]" not in page.text
        export = await client.get("/agence/veille/export.csv")
        assert export.text.startswith("# Données de démonstration")
        assert export.headers["x-tranquillite-demo"] == "1"
        assert csv_counts(export.text)
        alerts = await client.get(
            "/api/v1/veille/alerts",
            params={"departement": "04"},
            headers={"Authorization": f"Bearer {result.token}"},
        )
        assert alerts.json() and all(a["demo"] for a in alerts.json())
        assert all(a["explanation"].startswith("[DÉMONSTRATION]") for a in alerts.json())

    # run again on the demo base: it starts over
    engine = create_engine(url)
    try:
        again = await demo.fill(engine, now=NOW, rate=2.0, evaluate_every=dt.timedelta(days=7))
        assert again.tickets == result.tickets
    finally:
        await engine.dispose()


async def test_the_demo_refuses_a_base_with_real_tickets(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'real.db'}")
    try:
        from webhook.store.db import migrate

        await migrate(engine)
        await file_at(session_factory(engine), NOW - dt.timedelta(days=1))
        with pytest.raises(demo.DemoRefused, match="1 signalement"):
            await demo.fill(engine, now=NOW, rate=2.0)
        async with session_factory(engine)() as session:
            assert await session.get(StoreMeta, "demo") is None
            assert await session.scalar(select(func.count()).select_from(Ticket)) == 1
    finally:
        await engine.dispose()


def test_the_demo_refuses_the_configured_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'service.db'}"
    monkeypatch.setenv("TRANQUILLITE_DATABASE_URL", url)
    assert veille_cli.demo_main(["--database-url", url]) == 2
    assert "base séparée" in capsys.readouterr().err
    assert not (tmp_path / "service.db").exists()


async def test_a_short_bench_run_reports_every_figure(tmp_path: Path) -> None:
    result = await bench.bench_url(
        f"sqlite+aiosqlite:///{tmp_path / 'bench.db'}",
        "sqlite",
        departement="39",
        year_reports=600,
        peak_rate=1.0,
        peak_seconds=300,
        filings=5,
        seed=3,
    )
    assert result.tickets == 900 and result.weeks == 52 and len(result.per_filing_ms) == 5
    lines = result.lines()
    assert lines[0].startswith("sqlite: 900 tickets") and "full recomputation" in lines[3]
    assert "evaluation per filing (5 filings)" in lines[4]


def test_channels_recompute_and_observer_territories_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("TRANQUILLITE_DATABASE_URL", url)
    assert (
        veille_cli.channel_main(
            [
                "add",
                "--agency",
                "04-prefecture",
                "--territory",
                "commune:04088",
                "--email",
                "a@b.fr",
            ]
        )
        == 0
    )
    assert (
        veille_cli.channel_main(
            [
                "add",
                "--agency",
                "04-prefecture",
                "--territory",
                "commune:39198",
                "--email",
                "c@d.fr",
            ]
        )
        == 2
    )
    assert "hors du département" in capsys.readouterr().err
    assert veille_cli.channel_main(["disable", "--agency", "04-prefecture", "--id", "1"]) == 0
    out = io.StringIO()
    with redirect_stdout(out):
        assert veille_cli.channel_main(["list"]) == 0
    assert "commune:04088\temail\ta@b.fr\tdésactivé" in out.getvalue()
    assert veille_cli.recompute_main(["--departement", "04"]) == 0
    assert "04 : 0 alerte(s) levée(s)" in capsys.readouterr().out

    monkeypatch.setattr("sys.stdin", io.StringIO("mot de passe de test 2026\n"))
    assert (
        agency_cli.user_main(
            [
                "add",
                "--agency",
                "04-prefecture",
                "--username",
                "cispd-sisteron",
                "--role",
                "observer",
                "--territory",
                "epci:200068765@04",
                "--password-stdin",
            ]
        )
        == 0
    )

    async def stored() -> tuple[str | None, str | None]:
        engine = create_engine(url)
        try:
            async with session_factory(engine)() as session:
                agent = (await session.execute(select(Agent))).scalar_one()
                channel = (await session.execute(select(VeilleChannel))).scalar_one()
            return agent.territory, channel.territory
        finally:
            await engine.dispose()

    import asyncio

    territory, channel_territory = asyncio.run(stored())
    assert territory == "epci:200068765@04" and channel_territory == "commune:04088"
    assert territories.parse(territory).label.startswith("CC")
