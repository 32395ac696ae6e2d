"""Agency dashboard (server-rendered HTML, French): login, tickets of the agent's agency (list,
filters, detail, acknowledge, status, answer), statistics for observers, and a small admin page
(agents, API tokens, delivery channels) for agency admins.

No script at all (CSP ``script-src 'none'``); every POST form carries a CSRF token. A ticket that
is not routed to the agent's agency answers 404, like a ticket that does not exist. Sessions are
kept on the server (logout ends them); failed logins slow down the next attempts per account and
per address (:mod:`webhook.agency.throttle`); no input — a date at the end of time, an id of
5,000 digits — makes a page fail.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

import reports
import routing
from webhook.agency import auth, queries, throttle
from webhook.agency.auth import AuthError, Principal
from webhook.security import clients
from webhook.store import lifecycle, tickets
from webhook.store.db import Ticket
from webhook.store.text import storable

logger = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).parent / "templates" / "dashboard"
PAGE_SIZE = 50
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'; script-src 'none'"
)
# Messages shown after an action (keys in the redirect URL; never user input).
NOTICES = {
    "ack": "Le signalement est pris en compte ; le citoyen en est informé.",
    "status": "Le statut est modifié ; le citoyen en est informé.",
    "answer": "La réponse est enregistrée et sera transmise au citoyen.",
    "agent": "Le compte est créé.",
    "agent-off": "Le compte est désactivé.",
    "agent-on": "Le compte est réactivé.",
    "token-off": "Le jeton est révoqué.",
    "channel-off": "Le canal est désactivé.",
    "channel-on": "Le canal est réactivé.",
    "channel": "Le canal est ajouté.",
}

_env = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
# Agents work in France: every time is shown, and every filter day read, in Paris time.
PARIS = ZoneInfo("Europe/Paris")
CHANNEL_LABELS = {
    "web": "discussion du site",
    "telegram": "Telegram",
    "api": "API d'un service",
    "open311": "outil Open311",
}
LANGUAGE_LABELS = {
    "fr": "français",
    "en": "anglais",
    "de": "allemand",
    "nl": "néerlandais",
    "it": "italien",
    "es": "espagnol",
}
DELIVERY_LABELS = {
    "dashboard": "tableau de bord",
    "email": "e-mail",
    "webhook": "webhook",
    "citizen": "message au déclarant",
}
PREVIEW_CHARS = 160
# What the outbox writes in a ticket's history (webhook.delivery.outbox), read back in words
_DELIVERED_RE = re.compile(r"^(?P<kind>[a-z_]+) delivered to (?P<target>\S+)$")
_FAILED_RE = re.compile(
    r"^(?P<kind>[a-z_]+) delivery to (?P<target>\S+) failed after (?P<attempts>\d+) attempts"
)


def _fmt_dt(value: dt.datetime | None) -> str:
    """``01/12/2026 à 14:05``, Paris time (summer time included)."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)  # SQLite gives naive UTC datetimes back
    return value.astimezone(PARIS).strftime("%d/%m/%Y à %H:%M")


def _iso(value: dt.datetime | None) -> str:
    """The instant for a ``<time datetime>`` attribute."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(PARIS).isoformat(timespec="minutes")


def preview(ticket: Ticket) -> str:
    """One line about a ticket for the list: its description, else its answers in words."""
    fields = ticket.fields or {}
    text = str(fields.get("description") or "").strip()
    if not text:
        text = " · ".join(
            reports.display(key, value) for key, value in fields.items() if value not in ("", None)
        )
    text = " ".join(text.split())
    if len(text) > PREVIEW_CHARS:
        text = text[: PREVIEW_CHARS - 1].rstrip() + "…"
    return text


def actor_label(actor: str) -> str:
    """Who did it, in words (the history keeps ids such as ``system:outbox``)."""
    kind, _, rest = actor.partition(":")
    if kind == "system":
        return "Envoi automatique" if rest == "outbox" else "Tranquillité (automatique)"
    if kind == "citizen":
        channel = CHANNEL_LABELS.get(rest, rest)
        return f"Le déclarant ({channel})" if channel else "Le déclarant"
    if kind == "agent":
        return f"Agent « {rest} »"
    if kind == "token":
        return f"Outil connecté (jeton {rest}…)"
    if "/" in actor:  # Open311 filings: "<agency>/<actor>"
        agency, _, who = actor.partition("/")
        return f"{auth.agency_name(agency)} — {actor_label(who)}"
    return actor


def event_label(event: Any) -> str:
    """What happened, in words."""
    if event.kind == "answer":
        return "Réponse au déclarant"
    if event.kind == "status":
        to = lifecycle.STATUS_LABELS.get(event.status_to, event.status_to)
        if event.status_from is None:
            return f"Signalement {to}"
        before = lifecycle.STATUS_LABELS.get(event.status_from, event.status_from)
        return f"Statut : {before} → {to}"
    if event.kind == "delivery":
        note = event.note or ""
        delivered = _DELIVERED_RE.match(note)
        if delivered:
            how = DELIVERY_LABELS.get(delivered["kind"], delivered["kind"])
            return f"Transmis ({how}) à {auth.agency_name(delivered['target'])}"
        failed = _FAILED_RE.match(note)
        if failed:
            how = DELIVERY_LABELS.get(failed["kind"], failed["kind"])
            return (
                f"Échec de la transmission ({how}) à {auth.agency_name(failed['target'])} "
                f"après {failed['attempts']} tentatives"
            )
        return "Transmission"
    if event.kind == "note":
        return "Note interne"
    return event.kind


def event_note(event: Any) -> str:
    """The note worth showing beside an event: the agency's words (answers, notes for the
    citizen, internal notes), not the outbox's technical line (already in words)."""
    if event.kind == "delivery":
        return ""
    return str(event.note or "")


def language_label(code: str) -> str:
    return LANGUAGE_LABELS.get(code, code)


_env.filters["datetime"] = _fmt_dt
_env.filters["iso"] = _iso
_env.globals.update(
    STATUS_LABELS=lifecycle.STATUS_LABELS,
    TYPE_LABELS=lifecycle.REPORT_TYPE_LABELS,
    ROLE_LABELS=auth.ROLE_LABELS,
    CHANNEL_LABELS=CHANNEL_LABELS,
    field_label=reports.label,
    field_value=reports.display,
    commune_label=queries.commune_label,
    agency_name=auth.agency_name,
    status_group=queries.status_group,
    is_danger=queries.is_danger,
    preview=preview,
    actor_label=actor_label,
    event_label=event_label,
    event_note=event_note,
    language_label=language_label,
)

router = APIRouter(prefix="/agence", include_in_schema=False)


# ---------------------------------------------------------------------------------- helpers


def _render(
    request: Request,
    template: str,
    status_code: int = 200,
    principal: Principal | None = None,
    **context: Any,
) -> HTMLResponse:
    ctx = auth.context(request.app.state)
    csrf = ""
    session = getattr(request.state, "agency_session", None)
    if session is not None:
        csrf = ctx.sessions.csrf_token(session)
    html = _env.get_template(template).render(
        principal=principal,
        csrf_token=csrf,
        request_path=request.url.path,
        # a database filled by `tranquillite veille-demo`: every page says so
        demo=bool(getattr(request.app.state, "demo", False)),
        **context,
    )
    response = HTMLResponse(html, status_code=status_code)
    _harden(response)
    return response


def _harden(response: Response) -> None:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"


def _redirect(url: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    _harden(response)
    return response


def _sessions(request: Request) -> auth.Sessions:
    sessions: auth.Sessions = request.app.state.sessions
    return sessions


async def _principal(request: Request) -> Principal | None:
    ctx = auth.context(request.app.state)
    record = await ctx.sessions.read(_sessions(request), request.cookies.get(auth.SESSION_COOKIE))
    if record is None:
        return None
    principal = await auth.principal_for_agent(_sessions(request), record.agent_id)
    if principal is not None:
        request.state.agency_session = record
    return principal


async def _form(request: Request) -> dict[str, str]:
    """The form's text fields, as the database can keep them (no NUL, no lone surrogate)."""
    form = await request.form()
    return {k: storable(v) for k, v in form.items() if isinstance(v, str)}


def _csrf_ok(request: Request, form: dict[str, str]) -> bool:
    ctx = auth.context(request.app.state)
    session = getattr(request.state, "agency_session", None)
    return session is not None and ctx.sessions.check_csrf(session, form.get("csrf_token"))


def _error(
    request: Request, status_code: int, message: str, principal: Principal | None = None
) -> HTMLResponse:
    return _render(
        request, "error.html", status_code, principal, message=message, status=status_code
    )


def _not_found(request: Request, principal: Principal) -> HTMLResponse:
    return _error(
        request, 404, "Ce signalement n'existe pas ou n'est pas adressé à votre service.", principal
    )


def _csrf_failed(request: Request, principal: Principal | None) -> HTMLResponse:
    return _error(
        request,
        403,
        "Le formulaire a expiré ou n'est pas valide. Rechargez la page et recommencez.",
        principal,
    )


def _set_cookie(
    request: Request, response: Response, name: str, value: str, max_age: int, path: str
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="strict",
        secure=auth.context(request.app.state).cookie_secure,
    )


# ---------------------------------------------------------------------------------- other rooms
# Pages of other rooms under /agence (the cellule de veille, webhook.veille) share the layout,
# the session and the CSRF protection of the dashboard through these functions.


def register_templates(directory: Path) -> None:
    """Let the dashboard's templates environment find another room's templates too."""
    loaders = [_env.loader] if _env.loader is not None else []
    if not any(isinstance(x, FileSystemLoader) and str(directory) in x.searchpath for x in loaders):
        _env.loader = ChoiceLoader([*loaders, FileSystemLoader(directory)])


async def current_principal(request: Request) -> Principal | None:
    """Who is logged in on this request (None: nobody)."""
    return await _principal(request)


def render(
    request: Request,
    template: str,
    status_code: int = 200,
    principal: Principal | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page in the dashboard's layout, headers and CSRF token included."""
    return _render(request, template, status_code, principal, **context)


async def read_form(request: Request) -> dict[str, str]:
    return await _form(request)


def csrf_ok(request: Request, form: dict[str, str]) -> bool:
    return _csrf_ok(request, form)


def error_page(
    request: Request, status_code: int, message: str, principal: Principal | None = None
) -> HTMLResponse:
    return _error(request, status_code, message, principal)


def redirect(url: str) -> RedirectResponse:
    return _redirect(url)


def harden(response: Response) -> None:
    """The dashboard's security headers on a response that is not a page (SVG, CSV)."""
    _harden(response)


# ---------------------------------------------------------------------------------- static


@router.get("/static/dashboard.css")
async def stylesheet() -> FileResponse:
    return FileResponse(TEMPLATES_DIR / "dashboard.css", media_type="text/css")


# ---------------------------------------------------------------------------------- login


@router.get("")
@router.get("/")
async def home(request: Request) -> Response:
    principal = await _principal(request)
    if principal is None:
        return _redirect("/agence/login")
    if principal.role == "observer":
        return _redirect("/agence/veille")
    return _redirect("/agence/tickets")


def _login_page(request: Request, status_code: int = 200, error: str = "") -> HTMLResponse:
    import secrets

    token = secrets.token_urlsafe(24)
    response = _render(request, "login.html", status_code, None, login_csrf=token, error=error)
    _set_cookie(request, response, auth.LOGIN_CSRF_COOKIE, token, 3600, "/agence/login")
    return response


@router.get("/login")
async def login_form(request: Request) -> Response:
    if await _principal(request) is not None:
        return _redirect("/agence/")
    return _login_page(request)


@router.post("/login")
async def login(request: Request) -> Response:
    import hmac

    form = await _form(request)
    cookie = request.cookies.get(auth.LOGIN_CSRF_COOKIE, "")
    submitted = form.get("csrf_token", "")
    if not cookie or not submitted or not hmac.compare_digest(cookie, submitted):
        return _login_page(
            request, 403, "Le formulaire a expiré. Saisissez à nouveau vos identifiants."
        )
    ctx = auth.context(request.app.state)
    username = form.get("username", "").strip().lower()[:64]
    resolver: clients.ClientResolver = request.app.state.client_resolver
    address = clients.address_key(resolver.client(request))
    device = ctx.throttle.device_of(request.cookies.get(throttle.DEVICE_COOKIE), username)
    wait = await ctx.throttle.retry_after(username, address, device)
    if wait:
        response = _login_page(
            request,
            429,
            "Trop d'essais infructueux pour ce compte ou depuis cette connexion. Réessayez dans "
            + (f"{wait} s." if wait < 120 else f"environ {wait // 60} min."),
        )
        response.headers["Retry-After"] = str(wait)
        return response
    agent = await auth.authenticate(_sessions(request), username, form.get("password", ""))
    if agent is None:
        await ctx.throttle.failure(username, address, device)
        logger.info("dashboard login refused")
        return _login_page(request, 401, "Identifiant ou mot de passe incorrect.")
    await ctx.throttle.success(username, address, device)
    cookie_value, _ = await ctx.sessions.issue(_sessions(request), agent.id)
    logger.info("dashboard login: agent %s (agency %s)", agent.id, agent.agency_id)
    redirect = _redirect("/agence/")
    _set_cookie(
        request,
        redirect,
        auth.SESSION_COOKIE,
        cookie_value,
        ctx.sessions.max_age,
        auth.COOKIE_PATH,
    )
    if device is None:
        # this browser is now known for this account: its logins skip the account's and the
        # address's delays (an attacker elsewhere cannot lock the agent out)
        _set_cookie(
            request,
            redirect,
            throttle.DEVICE_COOKIE,
            ctx.throttle.device_cookie(username),
            throttle.DEVICE_MAX_AGE,
            "/agence/login",
        )
    redirect.delete_cookie(auth.LOGIN_CSRF_COOKIE, path="/agence/login")
    return redirect


@router.post("/logout")
async def logout(request: Request) -> Response:
    principal = await _principal(request)
    form = await _form(request)
    if principal is not None and not _csrf_ok(request, form):
        return _csrf_failed(request, principal)
    # the session ends on the server: a copy of the cookie is worth nothing from now on
    await auth.context(request.app.state).sessions.revoke(
        _sessions(request), request.cookies.get(auth.SESSION_COOKIE)
    )
    response = _redirect("/agence/login")
    response.delete_cookie(auth.SESSION_COOKIE, path=auth.COOKIE_PATH)
    return response


# ---------------------------------------------------------------------------------- tickets


def _parse_date(value: str, *, end_of_day: bool = False) -> dt.datetime | None:
    """A filter date (AAAA-MM-JJ), a day in Paris, as a UTC instant: its midnight, or with
    ``end_of_day`` the next midnight (the last day of the calendar has none: the filter then
    has no upper bound)."""
    try:
        day = dt.date.fromisoformat(value[:10])
        if end_of_day:
            day += dt.timedelta(days=1)
    except OverflowError:
        return dt.datetime.max.replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    try:
        return dt.datetime.combine(day, dt.time(0), tzinfo=PARIS).astimezone(dt.UTC)
    except OverflowError:
        # the first days of year 1 in Paris are before the first instant in UTC
        return dt.datetime.min.replace(tzinfo=dt.UTC)


def _item_id(value: str) -> int | None:
    """A row id from a URL: digits, within the database's integer range, else None (404)."""
    if not value.isdigit() or len(value) > 10:
        return None
    number = int(value)
    return number if 0 < number < 2**31 else None


def _resolve_commune(value: str) -> str | None:
    engine = routing.get_engine()
    if engine.commune(value) is not None:
        return value
    resolution = engine.resolve_commune(value)
    if resolution.status == "found" and resolution.candidates:
        return resolution.candidates[0].insee
    return None


@router.get("/tickets")
async def ticket_list(request: Request) -> Response:
    principal = await _principal(request)
    if principal is None:
        return _redirect("/agence/login")
    if not principal.can_work_tickets:
        return _error(request, 403, "Votre rôle donne accès aux statistiques seulement.", principal)
    q = request.query_params
    problems: list[str] = []
    status = q.get("statut", "")
    report_type = q.get("type", "")
    commune = q.get("commune", "").strip()[:100]
    since_raw, until_raw = q.get("du", ""), q.get("au", "")
    statuses: set[str] | None = None
    if status in ("open", "closed"):
        statuses = set(queries.OPEN_STATUSES if status == "open" else queries.OPEN311_CLOSED)
    elif status in lifecycle.STATUSES:
        statuses = {status}
    elif status:
        problems.append("Statut inconnu : filtre ignoré.")
        status = ""
    if report_type and report_type not in routing.REPORT_TYPES:
        problems.append("Type inconnu : filtre ignoré.")
        report_type = ""
    commune_insee = None
    if commune:
        commune_insee = _resolve_commune(commune)
        if commune_insee is None:
            problems.append("Commune introuvable ou ambiguë (indiquez le code INSEE).")
    since = _parse_date(since_raw) if since_raw else None
    until = _parse_date(until_raw, end_of_day=True) if until_raw else None
    if (since_raw and since is None) or (until_raw and until is None):
        problems.append("Date invalide (format AAAA-MM-JJ) : filtre ignoré.")
    try:
        page = max(1, min(int(q.get("page", "1")), 10_000))
    except ValueError:
        page = 1
    tickets, total = await queries.list_for_agency(
        _sessions(request),
        principal.agency_id,
        queries.TicketFilter(
            statuses=statuses,
            report_type=report_type or None,
            commune_insee=commune_insee if commune else None,
            since=since,
            until=until,
            limit=PAGE_SIZE,
            offset=(page - 1) * PAGE_SIZE,
        )
        if not (commune and commune_insee is None)
        else queries.TicketFilter(references=[], limit=0),
        danger_first=True,
    )
    return _render(
        request,
        "tickets.html",
        principal=principal,
        tickets=tickets,
        total=total,
        page=page,
        pages=max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE),
        problems=problems,
        filters={
            "statut": status,
            "type": report_type,
            "commune": commune,
            "du": since_raw if since else "",
            "au": until_raw if until else "",
        },
        statuses=lifecycle.STATUSES,
        report_types=routing.REPORT_TYPES,
    )


def _allowed_statuses(ticket: Ticket) -> list[str]:
    return [
        s
        for s in lifecycle.STATUSES
        if s in lifecycle.TRANSITIONS.get(ticket.status, frozenset())
        and s in lifecycle.AGENCY_STATUSES
    ]


async def _ticket_context(
    request: Request, reference: str
) -> tuple[Principal | None, Ticket | None, Response | None]:
    principal = await _principal(request)
    if principal is None:
        return None, None, _redirect("/agence/login")
    if not principal.can_work_tickets:
        return (
            principal,
            None,
            _error(request, 403, "Votre rôle donne accès aux statistiques seulement.", principal),
        )
    ticket = await queries.get_for_agency(_sessions(request), principal.agency_id, reference)
    if ticket is None:
        return principal, None, _not_found(request, principal)
    return principal, ticket, None


@router.get("/tickets/{reference}")
async def ticket_detail(request: Request, reference: str) -> Response:
    principal, ticket, early = await _ticket_context(request, reference)
    if early is not None:
        return early
    assert principal is not None and ticket is not None
    notice = NOTICES.get(request.query_params.get("ok", ""))
    return _render(
        request,
        "ticket.html",
        principal=principal,
        ticket=ticket,
        notice=notice,
        error=None,
        allowed_statuses=_allowed_statuses(ticket),
    )


async def _ticket_action(request: Request, reference: str, action: str) -> Response:
    principal, ticket, early = await _ticket_context(request, reference)
    if early is not None:
        return early
    assert principal is not None and ticket is not None
    form = await _form(request)
    if not _csrf_ok(request, form):
        return _csrf_failed(request, principal)
    sessions = _sessions(request)
    try:
        if action == "ack":
            await lifecycle.acknowledge(sessions, ticket.id, principal.actor)
        elif action == "status":
            await lifecycle.change_status(
                sessions,
                ticket.id,
                form.get("status", ""),
                principal.actor,
                form.get("note") or None,
            )
        else:
            await lifecycle.answer(sessions, ticket.id, principal.actor, form.get("text", ""))
    except lifecycle.TransitionError:
        return _render(
            request,
            "ticket.html",
            409 if action != "answer" else 422,
            principal,
            ticket=ticket,
            notice=None,
            error=(
                "Ce changement de statut n'est pas possible depuis le statut actuel."
                if action != "answer"
                else "La réponse ne peut pas être vide."
            ),
            allowed_statuses=_allowed_statuses(ticket),
        )
    logger.info("dashboard: ticket %s %s by agent %s", ticket.reference, action, principal.agent_id)
    return _redirect(f"/agence/tickets/{ticket.reference}?ok={action}")


@router.post("/tickets/{reference}/prise-en-compte")
async def ticket_acknowledge(request: Request, reference: str) -> Response:
    return await _ticket_action(request, reference, "ack")


@router.post("/tickets/{reference}/statut")
async def ticket_status(request: Request, reference: str) -> Response:
    return await _ticket_action(request, reference, "status")


@router.post("/tickets/{reference}/reponse")
async def ticket_answer(request: Request, reference: str) -> Response:
    return await _ticket_action(request, reference, "answer")


# ---------------------------------------------------------------------------------- statistics


@router.get("/statistiques")
async def statistics(request: Request) -> Response:
    """The observers' figures are the cellule de veille's (webhook.veille): territory, small
    counts protected."""
    return _redirect("/agence/veille")


# ---------------------------------------------------------------------------------- admin


async def _admin(request: Request) -> tuple[Principal | None, Response | None]:
    principal = await _principal(request)
    if principal is None:
        return None, _redirect("/agence/login")
    if not principal.is_admin:
        return principal, _error(
            request, 403, "Cette page est réservée aux administrateurs de l'agence.", principal
        )
    return principal, None


async def _admin_page(
    request: Request,
    principal: Principal,
    status_code: int = 200,
    error: str = "",
    secret: dict[str, str] | None = None,
) -> HTMLResponse:
    sessions = _sessions(request)
    return _render(
        request,
        "admin.html",
        status_code,
        principal,
        agents=await auth.list_agents(sessions, principal.agency_id),
        tokens=await auth.list_tokens(sessions, principal.agency_id),
        channels=await auth.list_channels(sessions, principal.agency_id),
        stranded=await _stranded_agencies(sessions, principal),
        roles=auth.ROLES,
        notice=NOTICES.get(request.query_params.get("ok", "")),
        error=error,
        secret=secret,
    )


async def _stranded_agencies(sessions: auth.Sessions, principal: Principal) -> list[dict[str, Any]]:
    """Agencies of the administrator's département that reports are routed to and that cannot
    receive them (nobody set up): a warning list, with what the reports do meanwhile."""
    engine = routing.get_engine()
    known = {a.id for a in engine.agencies()}
    departement = (
        engine.agency(principal.agency_id).departement if principal.agency_id in known else None
    )
    found = await tickets.agencies_without_channel(sessions)
    for entry in found:
        entry["latest_local"] = _fmt_dt(entry["latest"])
    if departement is None:
        return found
    return [
        e
        for e in found
        if e["agency_id"] in known and engine.agency(e["agency_id"]).departement == departement
    ]


@router.get("/admin")
async def admin(request: Request) -> Response:
    principal, early = await _admin(request)
    if early is not None:
        return early
    assert principal is not None
    return await _admin_page(request, principal)


@router.post("/admin/{what}")
async def admin_create(request: Request, what: str) -> Response:
    principal, early = await _admin(request)
    if early is not None:
        return early
    assert principal is not None
    form = await _form(request)
    if not _csrf_ok(request, form):
        return _csrf_failed(request, principal)
    sessions = _sessions(request)
    try:
        if what == "agents":
            # the agency's own namespace: a name taken elsewhere is never revealed
            await auth.create_agent(
                sessions,
                principal.agency_id,
                auth.agency_username(form.get("username", ""), principal.agency_id),
                form.get("password", ""),
                form.get("role", ""),
                form.get("display_name", ""),
            )
            return _redirect("/agence/admin?ok=agent")
        if what == "jetons":
            token, clear = await auth.create_api_token(
                sessions, principal.agency_id, form.get("name", ""), form.get("role", "agent")
            )
            return await _admin_page(
                request,
                principal,
                201,
                secret={"title": f"Jeton « {token.name} »", "value": clear},
            )
        if what == "canaux":
            _channel, hmac_secret = await auth.add_channel(
                sessions, principal.agency_id, form.get("kind", ""), form.get("target", "")
            )
            if hmac_secret is None:
                return _redirect("/agence/admin?ok=channel")
            return await _admin_page(
                request,
                principal,
                201,
                secret={"title": "Clé de signature du webhook", "value": hmac_secret},
            )
    except AuthError as exc:
        return await _admin_page(request, principal, 422, error=str(exc))
    return _error(request, 404, "Page introuvable.", principal)


@router.post("/admin/{what}/{item}/{action}")
async def admin_update(request: Request, what: str, item: str, action: str) -> Response:
    principal, early = await _admin(request)
    if early is not None:
        return early
    assert principal is not None
    form = await _form(request)
    if not _csrf_ok(request, form):
        return _csrf_failed(request, principal)
    item_id = _item_id(item)
    if item_id is None:
        return _error(request, 404, "Élément introuvable.", principal)
    sessions = _sessions(request)
    done = False
    notice = ""
    if what == "agents" and action in ("desactiver", "activer"):
        if item_id == principal.agent_id:
            return await _admin_page(
                request, principal, 422, error="Vous ne pouvez pas désactiver votre propre compte."
            )
        active = action == "activer"
        done = await auth.set_agent_active(sessions, principal.agency_id, item_id, active)
        notice = "agent-on" if active else "agent-off"
    elif what == "jetons" and action == "revoquer":
        done = await auth.revoke_token(sessions, principal.agency_id, item_id)
        notice = "token-off"
    elif what == "canaux" and action in ("desactiver", "activer"):
        active = action == "activer"
        done = await auth.set_channel_active(sessions, principal.agency_id, item_id, active)
        notice = "channel-on" if active else "channel-off"
    if not done:
        return _error(request, 404, "Élément introuvable.", principal)
    return _redirect(f"/agence/admin?ok={notice}")
