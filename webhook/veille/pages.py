"""Pages of the cellule de veille under ``/agence/veille`` (server-rendered, French, no script;
the dashboard's layout, session and CSRF protection — :mod:`webhook.agency.dashboard`).

- ``/agence/veille``: for an observer, its territory at a glance — alerts going on, the last two
  weeks side by side, the last 12 weeks per type (SVG chart + the same numbers as a table),
  sub-kinds; for an agent, the alerts involving its agency's tickets, with their references.
- ``/agence/veille/communes``: one week's table per commune (or EPCI), sortable by type.
- ``/agence/veille/alertes`` and ``/agence/veille/alertes/{id}``: alerts, acknowledge, close
  with a note.
- ``/agence/veille/graphique.svg``, ``/agence/veille/export.csv``: a chart, the CSV export.
- ``/agence/veille/territoires``: (agency admins) the observers' territories and the channels
  where the alerts go.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from webhook.agency import dashboard
from webhook.agency import territory as territories
from webhook.agency.auth import Principal
from webhook.agency.territory import Territory, TerritoryError
from webhook.store.db import Agent, ApiToken, VeilleAlert, utcnow
from webhook.veille import access, alerts, channels, charts, figures, present, views
from webhook.veille.config import Category, VeilleConfig, get_config
from webhook.veille.figures import FiguresCache
from webhook.veille.weeks import Week, last_weeks, weeks_between

logger = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).parent / "templates"
dashboard.register_templates(TEMPLATES_DIR)

router = APIRouter(prefix="/agence/veille", include_in_schema=False)

NOTICES = {
    "ack": "L'alerte est prise en compte.",
    "close": "L'alerte est close ; la note est enregistrée.",
    "territory": "Le territoire est enregistré.",
    "channel": "Le canal est ajouté.",
    "channel-on": "Le canal est réactivé.",
    "channel-off": "Le canal est désactivé.",
}
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; script-src 'none'"


def figures_cache(request: Request) -> FiguresCache:
    cache: FiguresCache | None = getattr(request.app.state, "veille_figures", None)
    if cache is None:
        cache = request.app.state.veille_figures = FiguresCache(get_config())
    return cache


def is_demo(request: Request) -> bool:
    """The database holds demo data (read when the gateway starts)."""
    return bool(getattr(request.app.state, "demo", False))


def clock(request: Request) -> dt.datetime:
    """Now (tests set ``app.state.veille_clock`` to travel in time)."""
    custom = getattr(request.app.state, "veille_clock", None)
    return custom() if custom is not None else utcnow()


async def _context(request: Request) -> tuple[Principal | None, Response | None]:
    principal = await dashboard.current_principal(request)
    if principal is None:
        return None, dashboard.redirect("/agence/login")
    return principal, None


async def _observer(
    request: Request,
) -> tuple[Principal | None, Territory | None, Response | None]:
    principal, early = await _context(request)
    if early is not None:
        return None, None, early
    assert principal is not None
    territory = await access.observer_territory(request.app.state.sessions, principal)
    if territory is None:
        return (
            principal,
            None,
            dashboard.error_page(
                request, 403, "Cette page est réservée aux observateurs d'un territoire.", principal
            ),
        )
    return principal, territory, None


def _render(request: Request, template: str, principal: Principal, **context: Any) -> Response:
    status_code = int(context.pop("status_code", 200))
    return dashboard.render(request, template, status_code, principal, **context)


def _alert_view(alert: VeilleAlert, config: VeilleConfig) -> dict[str, Any]:
    return {
        "alert": alert,
        "explanation": present.explanation(alert, config),
        "figures": present.public_figures(alert, config),
        "area": present.area_name(alert),
        "category": present.category_label(alert, config),
        "status": alerts.STATUS_LABELS.get(alert.status, alert.status),
        "going_on": alert.ended_at is None,
    }


# ---------------------------------------------------------------------------------- overview


@router.get("")
@router.get("/")
async def overview(request: Request) -> Response:
    principal, early = await _context(request)
    if early is not None:
        return early
    assert principal is not None
    sessions = request.app.state.sessions
    config = get_config()
    territory = await access.observer_territory(sessions, principal)
    if territory is None:
        involved = await access.alerts_for_agency(
            sessions, principal.agency_id, config, now=clock(request)
        )
        return _render(
            request,
            "veille/agency.html",
            principal,
            items=[(_alert_view(a, config), refs) for a, refs in involved],
        )
    now = clock(request)
    weeks = last_weeks(now, config.weeks)
    tables = await figures_cache(request).weeks(sessions, territory.departement, weeks)
    kind, code = figures.own_area(territory)
    types: list[dict[str, Any]] = []
    quiet: list[str] = []
    for category in figures.categories(territory, config, kind):
        if category.subtype:
            continue
        if not views.has_reports(tables, kind, code, category.id):
            quiet.append(config.type_label(category.report_type))
            continue
        subtypes = [
            (config.subtype_label(s.report_type, s.subtype), views.series(tables, territory, s.id))
            for s in figures.categories(territory, config, kind)
            if s.report_type == category.report_type
            and s.subtype
            and views.has_reports(tables, kind, code, s.id)
        ]
        types.append(
            {
                "category": category,
                "label": config.type_label(category.report_type),
                "values": views.series(tables, territory, category.id),
                "subtypes": subtypes,
                "src": "/agence/veille/graphique.svg?" + urlencode({"categorie": category.id}),
            }
        )
    going_on = await access.alerts_for_territory(
        sessions, territory, statuses=("open", "acknowledged")
    )
    return _render(
        request,
        "veille/overview.html",
        principal,
        territory=territory,
        weeks=weeks,
        types=types,
        quiet=quiet,
        comparison=views.comparison(tables, territory, config),
        alerts=[_alert_view(a, config) for a in going_on],
        notice=NOTICES.get(request.query_params.get("ok", "")),
        has_areas=territory.kind != "commune",
        export_from=weeks[0].monday.isoformat(),
        export_to=weeks[-1].monday.isoformat(),
        levels=[lvl for lvl in ("commune", "epci", "departement") if figures.areas(territory, lvl)],
        level_labels=views.LEVELS,
    )


@router.get("/graphique.svg")
async def chart(request: Request) -> Response:
    principal, territory, early = await _observer(request)
    if early is not None:
        return early
    assert territory is not None
    config = get_config()
    wanted = request.query_params.get("categorie", "")
    kind, _code = figures.own_area(territory)
    allowed = {c.id: c for c in figures.categories(territory, config, kind)}
    if wanted not in allowed:
        return dashboard.error_page(request, 404, "Graphique introuvable.", principal)
    weeks = last_weeks(clock(request), config.weeks)
    tables = await figures_cache(request).weeks(
        request.app.state.sessions, territory.departement, weeks
    )
    import asyncio

    svg = await asyncio.to_thread(
        charts.weekly_bars,
        [f"S{w.number:02d}" for w in weeks],
        views.series(tables, territory, wanted),
        small_max=config.small_count_max,
        description=f"{config.category_label(allowed[wanted])} — {territory.label}",
    )
    response = Response(svg, media_type="image/svg+xml")
    dashboard.harden(response)
    response.headers["Content-Security-Policy"] = SVG_CSP
    return response


# ---------------------------------------------------------------------------------- communes


@router.get("/communes")
async def communes(request: Request) -> Response:
    principal, territory, early = await _observer(request)
    if early is not None:
        return early
    assert principal is not None and territory is not None
    config = get_config()
    q = request.query_params
    weeks = last_weeks(clock(request), config.weeks)
    week = weeks[-1]
    try:
        asked = Week.parse(q.get("semaine", week.label))
        if asked in weeks:
            week = asked
    except ValueError:
        pass
    level = q.get("niveau", "commune")
    if level not in ("commune", "epci") or not figures.areas(territory, level):
        level = "commune"
    sort_by = q.get("tri") or None
    descending = q.get("ordre", "desc") != "asc"
    (table,) = await figures_cache(request).weeks(
        request.app.state.sessions, territory.departement, [week]
    )
    categories, rows, empty = views.area_table(table, territory, config, level, sort_by, descending)

    def sort_link(category: Category) -> str:
        order = "asc" if sort_by == category.id and descending else "desc"
        return "?" + urlencode(
            {"semaine": week.label, "niveau": level, "tri": category.id, "ordre": order}
        )

    return _render(
        request,
        "veille/communes.html",
        principal,
        territory=territory,
        week=week,
        weeks=weeks,
        level=level,
        levels=[lvl for lvl in ("commune", "epci") if figures.areas(territory, lvl)],
        level_labels=views.LEVELS,
        categories=categories,
        labels={c.id: config.type_label(c.report_type) for c in categories},
        rows=rows,
        empty=empty,
        sort_by=sort_by,
        descending=descending,
        sort_link=sort_link,
    )


# ---------------------------------------------------------------------------------- export


@router.get("/export.csv")
async def export(request: Request) -> Response:
    principal, territory, early = await _observer(request)
    if early is not None:
        return early
    assert territory is not None
    q = request.query_params
    body, status_code = await csv_export(
        request, territory, q.get("du"), q.get("au"), q.get("niveau", "commune")
    )
    if status_code != 200:
        return dashboard.error_page(request, status_code, body, principal)
    return csv_response(body, territory, is_demo(request))


# no figures exist before the service did; earlier dates are refused, not computed
EARLIEST_DAY = dt.date(2000, 1, 1)


async def csv_export(
    request: Request, territory: Territory, start: str | None, end: str | None, level: str
) -> tuple[str, int]:
    """(CSV, 200) or (French error message, status)."""
    config = get_config()
    if level not in views.LEVELS:
        return "Niveau inconnu : commune, epci ou departement.", 422
    if not figures.areas(territory, level):
        return "Ce niveau est hors de votre territoire.", 403
    last = Week.last_complete(clock(request))
    try:
        first_day = dt.date.fromisoformat(start) if start else None
        last_day = dt.date.fromisoformat(end) if end else None
    except ValueError:
        return "Date invalide (format AAAA-MM-JJ).", 422
    if any(day is not None and day < EARLIEST_DAY for day in (first_day, last_day)):
        # (a Monday of year 1 in Paris time is no instant in UTC: it raised before)
        return f"Date trop ancienne : indiquez une date à partir du {EARLIEST_DAY:%d/%m/%Y}.", 422
    if last_day is None or last_day > last.monday:
        last_day = last.monday
    if first_day is None:
        first_day = last_weeks(clock(request), config.weeks)[0].monday
    if first_day > last_day:
        return "La date de début est après la date de fin.", 422
    if (last_day - first_day).days // 7 + 1 > config.max_export_weeks:
        return f"Au plus {config.max_export_weeks} semaines par export.", 422
    weeks = weeks_between(first_day, last_day)
    tables = await figures_cache(request).weeks(
        request.app.state.sessions, territory.departement, weeks
    )
    return views.csv_text(tables, territory, config, level, demo=is_demo(request)), 200


def csv_response(body: str, territory: Territory, demo: bool) -> Response:
    name = f"veille-{'demo-' if demo else ''}{str(territory).replace(':', '-').replace('@', '-')}"
    response = Response(body, media_type="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    response.headers["Cache-Control"] = "no-store"
    if demo:
        response.headers["X-Tranquillite-Demo"] = "1"
    return response


# ---------------------------------------------------------------------------------- alerts


@router.get("/alertes")
async def alert_list(request: Request) -> Response:
    principal, territory, early = await _observer(request)
    if early is not None:
        return early
    assert principal is not None and territory is not None
    config = get_config()
    status = request.query_params.get("statut", "")
    statuses = {status} if status in alerts.STATUSES else None
    found = await access.alerts_for_territory(
        request.app.state.sessions, territory, statuses=statuses
    )
    return _render(
        request,
        "veille/alerts.html",
        principal,
        territory=territory,
        alerts=[_alert_view(a, config) for a in found],
        status=status,
        statuses=alerts.STATUSES,
        status_labels=alerts.STATUS_LABELS,
    )


def _alert_id(raw: str) -> int | None:
    return int(raw) if raw.isdigit() and len(raw) < 12 else None


async def _alert_context(
    request: Request, raw_id: str
) -> tuple[Principal | None, VeilleAlert | None, Territory | None, list[str], Response | None]:
    principal, early = await _context(request)
    if early is not None:
        return None, None, None, [], early
    assert principal is not None
    sessions = request.app.state.sessions
    alert_id = _alert_id(raw_id)
    alert = await access.get_alert(sessions, alert_id) if alert_id is not None else None
    territory = await access.observer_territory(sessions, principal)
    references: list[str] = []
    if alert is not None and territory is None:
        references = await access.agency_references(
            sessions, alert, principal.agency_id, get_config()
        )
    visible = alert is not None and (
        (territory is not None and access.covers(territory, alert)) or references
    )
    if not visible:
        message = "Cette alerte n'existe pas ou ne concerne pas votre territoire."
        return principal, None, None, [], dashboard.error_page(request, 404, message, principal)
    return principal, alert, territory, references, None


@router.get("/alertes/{alert_id}")
async def alert_detail(request: Request, alert_id: str) -> Response:
    principal, alert, territory, references, early = await _alert_context(request, alert_id)
    if early is not None:
        return early
    assert principal is not None and alert is not None
    return _alert_page(request, principal, alert, territory, references)


def _alert_page(
    request: Request,
    principal: Principal,
    alert: VeilleAlert,
    territory: Territory | None,
    references: list[str],
    *,
    error: str = "",
    status_code: int = 200,
) -> Response:
    return _render(
        request,
        "veille/alert.html",
        principal,
        status_code=status_code,
        view=_alert_view(alert, get_config()),
        observer=territory is not None,
        references=references,
        notice=NOTICES.get(request.query_params.get("ok", "")),
        error=error,
        window_days=get_config().alerts.window_days,
    )


async def _alert_action(request: Request, alert_id: str, action: str) -> Response:
    principal, alert, territory, references, early = await _alert_context(request, alert_id)
    if early is not None:
        return early
    assert principal is not None and alert is not None
    form = await dashboard.read_form(request)
    if not dashboard.csrf_ok(request, form):
        return dashboard.error_page(
            request, 403, "Le formulaire a expiré. Rechargez la page et recommencez.", principal
        )
    if territory is None:
        return dashboard.error_page(
            request, 403, "Seuls les observateurs du territoire traitent les alertes.", principal
        )
    sessions = request.app.state.sessions
    try:
        if action == "ack":
            await alerts.acknowledge(sessions, alert.id, principal.actor, clock(request))
        else:
            await alerts.close(
                sessions, alert.id, principal.actor, form.get("note", ""), clock(request)
            )
    except alerts.AlertError as exc:
        fresh = await access.get_alert(sessions, alert.id) or alert
        return _alert_page(
            request, principal, fresh, territory, references, error=str(exc), status_code=409
        )
    return dashboard.redirect(f"/agence/veille/alertes/{alert.id}?ok={action}")


@router.post("/alertes/{alert_id}/prise-en-compte")
async def alert_acknowledge(request: Request, alert_id: str) -> Response:
    return await _alert_action(request, alert_id, "ack")


@router.post("/alertes/{alert_id}/cloture")
async def alert_close(request: Request, alert_id: str) -> Response:
    return await _alert_action(request, alert_id, "close")


# ---------------------------------------------------------------------------------- territories


async def _admin(request: Request) -> tuple[Principal | None, Response | None]:
    principal, early = await _context(request)
    if early is not None:
        return None, early
    assert principal is not None
    if not principal.is_admin:
        return principal, dashboard.error_page(
            request, 403, "Cette page est réservée aux administrateurs de l'agence.", principal
        )
    return principal, None


async def _territories_page(
    request: Request,
    principal: Principal,
    *,
    status_code: int = 200,
    error: str = "",
    secret: str = "",
) -> Response:
    sessions = request.app.state.sessions
    async with sessions() as session:
        agents = (
            await session.execute(
                select(Agent)
                .where(Agent.agency_id == principal.agency_id, Agent.role == "observer")
                .order_by(Agent.username)
            )
        ).scalars()
        tokens = (
            await session.execute(
                select(ApiToken)
                .where(
                    ApiToken.agency_id == principal.agency_id,
                    ApiToken.role == "observer",
                    ApiToken.revoked_at.is_(None),
                )
                .order_by(ApiToken.id)
            )
        ).scalars()
        observers = [("agent", a.id, a.display_name or a.username, a.territory) for a in agents] + [
            ("jeton", t.id, f"Jeton « {t.name} »", t.territory) for t in tokens
        ]
    listed = await channels.list_channels(sessions, principal.agency_id)

    def label(stored: str | None) -> str:
        found = territories.for_agency(principal.agency_id, stored)
        return f"{found.label} ({found})" if found else "aucun"

    return _render(
        request,
        "veille/territories.html",
        principal,
        status_code=status_code,
        observers=observers,
        channels=listed,
        territory_label=label,
        departement=territories.agency_departement(principal.agency_id) or "",
        notice=NOTICES.get(request.query_params.get("ok", "")),
        error=error,
        secret=secret,
    )


@router.get("/territoires")
async def territories_page(request: Request) -> Response:
    principal, early = await _admin(request)
    if early is not None:
        return early
    assert principal is not None
    return await _territories_page(request, principal)


@router.post("/territoires/{kind}/{item_id}")
async def set_territory(request: Request, kind: str, item_id: str) -> Response:
    principal, early = await _admin(request)
    if early is not None:
        return early
    assert principal is not None
    form = await dashboard.read_form(request)
    if not dashboard.csrf_ok(request, form):
        return dashboard.error_page(request, 403, "Le formulaire a expiré.", principal)
    number = _alert_id(item_id)
    sessions = request.app.state.sessions
    try:
        stored = territories.check_for_agency(principal.agency_id, form.get("territory", ""))
    except TerritoryError as exc:
        return await _territories_page(request, principal, status_code=422, error=str(exc))
    async with sessions() as session:
        row: Agent | ApiToken | None = None
        if number is not None and kind == "agent":
            row = await session.get(Agent, number)
        elif number is not None and kind == "jeton":
            row = await session.get(ApiToken, number)
    if row is None or row.agency_id != principal.agency_id or row.role != "observer":
        return dashboard.error_page(request, 404, "Observateur introuvable.", principal)
    if kind == "agent":
        await territories.set_agent_territory(sessions, row.id, stored)
    else:
        await territories.set_token_territory(sessions, row.id, stored)
    logger.info("veille: territory of observer %s %s set by %s", kind, row.id, principal.actor)
    return dashboard.redirect("/agence/veille/territoires?ok=territory")


@router.post("/canaux")
async def add_channel(request: Request) -> Response:
    principal, early = await _admin(request)
    if early is not None:
        return early
    assert principal is not None
    form = await dashboard.read_form(request)
    if not dashboard.csrf_ok(request, form):
        return dashboard.error_page(request, 403, "Le formulaire a expiré.", principal)
    try:
        _channel, secret = await channels.add_channel(
            request.app.state.sessions,
            principal.agency_id,
            form.get("territory", ""),
            form.get("kind", ""),
            form.get("target", ""),
        )
    except channels.ChannelError as exc:
        return await _territories_page(request, principal, status_code=422, error=str(exc))
    if secret:
        return await _territories_page(request, principal, status_code=201, secret=secret)
    return dashboard.redirect("/agence/veille/territoires?ok=channel")


@router.post("/canaux/{item_id}/{action}")
async def channel_state(request: Request, item_id: str, action: str) -> Response:
    principal, early = await _admin(request)
    if early is not None:
        return early
    assert principal is not None
    form = await dashboard.read_form(request)
    if not dashboard.csrf_ok(request, form):
        return dashboard.error_page(request, 403, "Le formulaire a expiré.", principal)
    number = _alert_id(item_id)
    done = False
    if number is not None and action in ("activer", "desactiver"):
        done = await channels.set_active(
            request.app.state.sessions, principal.agency_id, number, action == "activer"
        )
    if not done:
        return dashboard.error_page(request, 404, "Canal introuvable.", principal)
    notice = "channel-on" if action == "activer" else "channel-off"
    return dashboard.redirect(f"/agence/veille/territoires?ok={notice}")
