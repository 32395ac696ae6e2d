"""Open311 GeoReport v2 (JSON) under ``/open311/v2/``.

- ``services.json``: the report types of SPEC §2 (French names); ``metadata: true``: every type
  has attributes, listed by ``services/{service_code}.json`` (the fields each type collects).
- ``requests.json`` GET: the caller agency's tickets only (``api_key`` = a per-agency API token),
  filters ``service_request_id``, ``service_code`` (comma-delimited), ``start_date``,
  ``end_date`` (default: the 90 days before ``end_date``), ``status`` (open/closed).
- ``requests.json`` POST (form-encoded, ``api_key``): files a report through
  :func:`webhook.store.tickets.file_report` with channel ``open311``; the commune comes from
  ``attribute[commune]`` or ``address_string`` and decides the routing. Returns the ticket
  reference as ``service_request_id``. An ``Idempotency-Key`` header makes retries safe.
- ``requests/{service_request_id}.json``: one ticket, 404 unless routed to the caller's agency.

The API key may come in the ``X-Api-Key`` header (or ``Authorization: Bearer``), which is what
new clients should use: a key in a query string ends up in proxies' and servers' logs. The
``api_key`` parameter of the standard stays for existing GeoReport clients; the gateway masks it
in any access log (:mod:`webhook.security.logredact`). Text is cleaned as the chat cleans it
(control and bidi characters dropped). Filings are limited per token and globally
(:mod:`webhook.conversation.admission`) and the history names the token that filed.

Errors are a JSON list of ``{"code", "description"}`` (400 invalid request, 403 bad api_key or
role, 404 unknown, 429 too many filings). Extended statuses map to ``open``/``closed`` (closed,
redirected and rejected_duplicate are closed); ``status_notes`` gives the detailed status in
French.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Form, Header, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, create_model

import reports
import routing
from reports import communes, otv, reference
from reports.model import SKIP
from webhook.agency import auth, queries
from webhook.agency.auth import Principal
from webhook.agency.queries import ReportType
from webhook.conversation import turn
from webhook.conversation.ratelimit import retry_after_header
from webhook.store import lifecycle, tickets
from webhook.store.db import Ticket

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attribute:
    """An ``attribute[<code>]`` of a service: a question of the report model (reports/)."""

    code: str
    description: str
    datatype: Literal["string", "text", "datetime", "singlevaluelist"] = "string"
    values: tuple[tuple[str, str], ...] = ()
    required: bool = False


COMMUNE_CODE = "commune"


def _attribute(report_type: str, qid: str) -> Attribute:
    model = reports.model()
    question = model.questions[qid]
    ask = model.ask_text(report_type, qid, "fr")
    if qid == COMMUNE_CODE:
        return Attribute(
            COMMUNE_CODE,
            "Commune des faits : code INSEE, code postal ou nom (sinon déduite de address_string)",
        )
    values = tuple((c.id, c.label("fr")) for c in question.choices)
    required = not model.is_optional(report_type, qid)
    if question.has_buttons and not question.free_text:
        return Attribute(qid, ask, "singlevaluelist", values, required)
    if question.free_text:
        listed = ", ".join(k for k, _ in values)
        return Attribute(qid, f"{ask} (une de : {listed} ; ou un texte libre)", "string")
    if question.kind == "date":
        return Attribute(qid, ask, "datetime", required=required)
    return Attribute(qid, ask, "text" if qid == "description" else "string", required=required)


# The fields each report type collects (SPEC §2), from the report model. The free description is
# the standard GeoReport ``description`` parameter, so it is not an attribute.
SERVICE_ATTRIBUTES: dict[str, tuple[Attribute, ...]] = {
    report_type: tuple(_attribute(report_type, q) for q in form.questions if q != "description")
    for report_type, form in reports.model().forms.items()
}
ALL_ATTRIBUTES: dict[str, Attribute] = {
    a.code: a for attributes in SERVICE_ATTRIBUTES.values() for a in attributes
}
SERVICE_DESCRIPTIONS: dict[str, str] = {
    "harcelement": "Harcèlement scolaire, en ligne, de rue ou de voisinage.",
    "enfant_en_danger": "Un enfant maltraité, négligé, victime de violences ou qui y est exposé.",
    "violences_conjugales": "Violences au sein du couple.",
    "arnaque": "Arnaque ou tentative, notamment visant des personnes âgées.",
    "personne_vulnerable": "Une personne âgée ou handicapée maltraitée, exploitée ou isolée.",
    "absence_vacances": "Opération Tranquillité Vacances : déclarer une absence.",
    "incivilite": "Bruit, dépôts sauvages, rodéos, tags, stationnement gênant, voisinage.",
    "vol_cambriolage": "Vol, cambriolage, vol dans un véhicule.",
    "drogue_trafic": "Trafic de stupéfiants, points de deal.",
    "autre": "Un signalement qui n'entre dans aucune autre catégorie.",
}
SERVICE_GROUPS: dict[str, str] = {
    "enfant_en_danger": "Personnes vulnérables",
    "personne_vulnerable": "Personnes vulnérables",
    "violences_conjugales": "Personnes vulnérables",
    "harcelement": "Atteintes aux personnes",
    "arnaque": "Atteintes aux biens",
    "vol_cambriolage": "Atteintes aux biens",
    "absence_vacances": "Prévention",
    "incivilite": "Tranquillité publique",
    "drogue_trafic": "Tranquillité publique",
    "autre": "Autres",
}
REFERENCE_PATTERN = rf"^{reference.PATTERN}$"
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
POSTAL_RE = re.compile(r"\b(\d{5})\b\s*(.*)$")
MAX_RESULTS = 1000
DEFAULT_WINDOW = dt.timedelta(days=90)


# ---------------------------------------------------------------------------------- models


class Open311Error(BaseModel):
    code: int = Field(description="Code HTTP de l'erreur")
    description: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": list[Open311Error], "description": "Requête invalide"},
    403: {"model": list[Open311Error], "description": "api_key invalide ou rôle insuffisant"},
    404: {"model": list[Open311Error], "description": "Introuvable"},
}
FILING_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    429: {"model": list[Open311Error], "description": "Trop de signalements déposés"},
}
API_KEY_HEADER_DOC = "Jeton d'API de l'agence (à préférer au paramètre api_key)"


class Service(BaseModel):
    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: Literal["realtime", "batch", "blackbox"]
    keywords: str
    group: str


class AttributeValue(BaseModel):
    key: str
    name: str


class ServiceAttribute(BaseModel):
    variable: bool
    code: str
    datatype: Literal["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]
    required: bool
    datatype_description: str
    order: int
    description: str
    values: list[AttributeValue] = Field(default_factory=list)


class ServiceDefinition(BaseModel):
    service_code: str
    attributes: list[ServiceAttribute]


class ServiceRequest(BaseModel):
    service_request_id: str = Field(description="Référence du signalement (ex. 39-2026-000123)")
    status: Literal["open", "closed"]
    status_notes: str | None = Field(description="Statut détaillé, en français")
    service_name: str
    service_code: str
    description: str | None
    agency_responsible: str
    service_notice: str | None
    requested_datetime: dt.datetime
    updated_datetime: dt.datetime
    expected_datetime: dt.datetime | None
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float | None
    long: float | None
    media_url: str | None


class ServiceRequestCreated(BaseModel):
    service_request_id: str
    service_notice: str
    account_id: str | None = None


Text = Annotated[str | None, Field(default=None, max_length=4000)]
Short = Annotated[str | None, Field(default=None, max_length=200)]


class _NewRequestBase(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    api_key: str | None = Field(
        default=None,
        max_length=200,
        description="Jeton d'API de l'agence (ou en-tête X-Api-Key, préférable)",
    )
    service_code: ReportType = Field(description="Type de signalement (services.json)")
    jurisdiction_id: Short = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    long: float | None = Field(default=None, ge=-180, le=180)
    address_string: Short = None
    address_id: Short = None
    email: Short = None
    device_id: Short = None
    account_id: Short = None
    first_name: Short = None
    last_name: Short = None
    phone: Short = None
    description: Text = None
    media_url: Short = None


# attribute[<code>] form fields of every service, typed as strings.
NewServiceRequest: type[_NewRequestBase] = create_model(  # type: ignore[call-overload]
    "NewServiceRequest",
    __base__=_NewRequestBase,
    **{
        f"attr_{code}": (
            str | None,
            Field(
                default=None, alias=f"attribute[{code}]", max_length=1000, description=a.description
            ),
        )
        for code, a in ALL_ATTRIBUTES.items()
    },
)


class RequestQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    api_key: str | None = Field(
        default=None,
        max_length=200,
        description="Jeton d'API de l'agence (ou en-tête X-Api-Key, préférable)",
    )
    jurisdiction_id: str | None = Field(default=None, max_length=200)
    service_request_id: str | None = Field(
        default=None,
        max_length=2000,
        description="Une ou plusieurs références, séparées par des virgules",
    )
    service_code: str | None = Field(
        default=None, max_length=400, description="Un ou plusieurs types, séparés par des virgules"
    )
    start_date: dt.datetime | None = None
    end_date: dt.datetime | None = None
    status: str | None = Field(
        default=None, pattern=r"^(open|closed)(,(open|closed))?$", description="open, closed"
    )


# ---------------------------------------------------------------------------------- errors


class Open311Failure(Exception):
    def __init__(
        self, status_code: int, description: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(description)
        self.status_code = status_code
        self.description = description
        self.headers = headers


def _errors(
    status_code: int, *descriptions: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        [{"code": status_code, "description": d} for d in descriptions]
        or [{"code": status_code, "description": "erreur"}],
        status_code=status_code,
        headers=headers,
    )


def _validation_text(error: Any) -> str:
    location = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body", "query"))
    return f"{location}: {error.get('msg', 'invalide')}" if location else str(error.get("msg"))


class Open311Route(APIRoute):
    """Every error of these routes is a GeoReport error list."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return _errors(400, *[_validation_text(e) for e in exc.errors()][:20])
            except Open311Failure as exc:
                return _errors(exc.status_code, exc.description, headers=exc.headers)
            except HTTPException as exc:
                return _errors(exc.status_code, str(exc.detail))

        return route


router = APIRouter(prefix="/open311/v2", tags=["open311"], route_class=Open311Route)


# ---------------------------------------------------------------------------------- helpers


def _clean(value: str | None) -> str | None:
    """Text as the chat keeps it: control characters, lone surrogates and bidi overrides
    dropped (an RLO would show a phone number or an address reversed to the agent), NFC."""
    if value is None:
        return None
    value = turn.clean_text(CONTROL_RE.sub("", value))
    return value or None


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        raise Open311Failure(400, "date hors limites") from None


def _api_key(request: Request, parameter: str | None) -> str | None:
    """The key from the X-Api-Key header, else Authorization: Bearer, else the parameter."""
    header = request.headers.get("x-api-key")
    if header:
        return header
    authorization = request.headers.get("authorization", "")
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return parameter


async def _principal(request: Request, api_key: str | None) -> Principal:
    clear = _clean(_api_key(request, api_key))
    principal = await auth.authenticate_token(request.app.state.sessions, clear)
    if principal is None:
        raise Open311Failure(403, "api_key invalide ou révoquée")
    if not principal.can_work_tickets:
        raise Open311Failure(403, "ce jeton donne accès aux statistiques seulement")
    return principal


def _service(code: str) -> Service:
    return Service(
        service_code=code,
        service_name=lifecycle.REPORT_TYPE_LABELS.get(code, code),
        description=SERVICE_DESCRIPTIONS.get(code, ""),
        metadata=bool(SERVICE_ATTRIBUTES.get(code)),
        type="realtime",
        keywords=code.replace("_", ", "),
        group=SERVICE_GROUPS.get(code, "Autres"),
    )


def _address(ticket: Ticket) -> str | None:
    fields = ticket.fields or {}
    parts = [str(fields[k]) for k in ("adresse", "lieu", "localisation") if fields.get(k)]
    commune = routing.get_engine().commune(ticket.commune_insee) if ticket.commune_insee else None
    if commune is not None:
        parts.append(commune.name)
    return ", ".join(parts) or None


def _as_request(ticket: Ticket, agency_id: str) -> ServiceRequest:
    commune = routing.get_engine().commune(ticket.commune_insee) if ticket.commune_insee else None
    names = [d.agency_name for d in ticket.destinations if d.agency_id == agency_id]
    answers = [e for e in ticket.events if e.kind == "answer"]
    return ServiceRequest(
        service_request_id=ticket.reference,
        status="closed" if ticket.status in queries.OPEN311_CLOSED else "open",
        status_notes=lifecycle.STATUS_LABELS.get(ticket.status, ticket.status),
        service_name=lifecycle.REPORT_TYPE_LABELS.get(ticket.report_type, ticket.report_type),
        service_code=ticket.report_type,
        description=(ticket.fields or {}).get("description"),
        agency_responsible=names[0] if names else agency_id,
        service_notice=answers[-1].note if answers else None,
        requested_datetime=_aware(ticket.created_at),
        updated_datetime=_aware(ticket.updated_at),
        expected_datetime=None,
        address=_address(ticket),
        address_id=ticket.commune_insee,
        zipcode=commune.postal_codes[0] if commune and commune.postal_codes else None,
        lat=None,
        long=None,
        media_url=None,
    )


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def resolve_commune(commune: str | None, address: str | None) -> str | None:
    """INSEE code from ``attribute[commune]`` or from an address; raises on ambiguity (the
    commune policy of every channel: reports.communes)."""
    queries: list[str] = []
    if commune:
        queries.append(commune)
    if address:
        match = POSTAL_RE.search(address)
        if match:
            queries.append(f"{match.group(1)} {match.group(2)}".strip())
            queries.append(match.group(1))
        segments = [s.strip() for s in address.split(",") if s.strip()]
        if segments:
            queries.append(segments[-1])
        queries.append(address)
    ambiguous: list[str] = []
    for query in queries:
        answer = communes.resolve(query[:200])
        if answer.found is not None:
            return answer.found.insee
        if answer.ambiguous and not ambiguous:
            ambiguous = [f"{c.name} ({c.insee})" for c in answer.communes[:5]]
        if commune and query == commune:
            break
    if ambiguous:
        raise Open311Failure(
            400,
            "commune ambiguë : précisez attribute[commune] avec le code INSEE ou le code postal "
            f"({', '.join(ambiguous)})",
        )
    return None


# ---------------------------------------------------------------------------------- routes


@router.get("/services.json", response_model=list[Service], responses={400: ERROR_RESPONSES[400]})
async def services(
    jurisdiction_id: Annotated[str | None, Query(max_length=200)] = None,
) -> list[Service]:
    """Les types de signalement (SPEC §2)."""
    return [_service(code) for code in routing.REPORT_TYPES]


@router.get(
    "/services/{service_code}.json",
    response_model=ServiceDefinition,
    responses={400: ERROR_RESPONSES[400], 404: ERROR_RESPONSES[404]},
)
async def service_definition(
    service_code: Annotated[str, Path(max_length=64, examples=["incivilite"])],
    jurisdiction_id: Annotated[str | None, Query(max_length=200)] = None,
) -> ServiceDefinition:
    """Les champs recueillis pour un type de signalement."""
    attributes = SERVICE_ATTRIBUTES.get(service_code)
    if attributes is None:
        raise Open311Failure(404, "service_code inconnu")
    return ServiceDefinition(
        service_code=service_code,
        attributes=[
            ServiceAttribute(
                variable=True,
                code=a.code,
                datatype=a.datatype,
                required=a.required,
                datatype_description=(
                    "Date ISO 8601"
                    if a.datatype == "datetime"
                    else "Texte libre"
                    if a.datatype in ("string", "text")
                    else "Une valeur de la liste"
                ),
                order=order,
                description=a.description,
                values=[AttributeValue(key=k, name=n) for k, n in a.values],
            )
            for order, a in enumerate(attributes, start=1)
        ],
    )


def _split(value: str | None) -> list[str]:
    return [p for p in (_clean(x) for x in (value or "").split(",")) if p]


@router.get("/requests.json", response_model=list[ServiceRequest], responses=ERROR_RESPONSES)
async def list_requests(
    request: Request,
    query: Annotated[RequestQuery, Query()],
    x_api_key: Annotated[str | None, Header(max_length=200, description=API_KEY_HEADER_DOC)] = None,
) -> list[ServiceRequest]:
    """Les signalements adressés à l'agence du jeton (les plus récents d'abord, 1000 au plus)."""
    principal = await _principal(request, query.api_key)
    references = _split(query.service_request_id)
    if any(not re.fullmatch(REFERENCE_PATTERN, r) for r in references):
        return []
    codes = _split(query.service_code)
    if any(c not in routing.REPORT_TYPES for c in codes):
        codes = [c for c in codes if c in routing.REPORT_TYPES]
        if not codes:
            return []
    statuses: set[str] | None = None
    if query.status:
        wanted = set(query.status.split(","))
        statuses = set()
        if "open" in wanted:
            statuses |= queries.OPEN_STATUSES
        if "closed" in wanted:
            statuses |= queries.OPEN311_CLOSED
    end = _utc(query.end_date)
    start = _utc(query.start_date)
    if start is None and not references:
        try:
            start = (end or dt.datetime.now(dt.UTC)) - DEFAULT_WINDOW
        except OverflowError:
            start = None
    sessions = request.app.state.sessions
    found: list[Ticket] = []
    report_types: list[str | None] = list(codes) if codes else [None]
    for code in report_types:
        page, _ = await queries.list_for_agency(
            sessions,
            principal.agency_id,
            queries.TicketFilter(
                statuses=statuses,
                report_type=code,
                since=start,
                until=end,
                references=references or None,
                limit=MAX_RESULTS,
            ),
        )
        found.extend(page)
    found.sort(key=lambda t: (_aware(t.created_at), t.id), reverse=True)
    return [_as_request(t, principal.agency_id) for t in found[:MAX_RESULTS]]


@router.get(
    "/requests/{service_request_id}.json",
    response_model=list[ServiceRequest],
    responses=ERROR_RESPONSES,
)
async def get_request(
    request: Request,
    service_request_id: Annotated[str, Path(max_length=64, examples=["39-2026-000001"])],
    api_key: Annotated[str | None, Query(max_length=200)] = None,
    jurisdiction_id: Annotated[str | None, Query(max_length=200)] = None,
    x_api_key: Annotated[str | None, Header(max_length=200, description=API_KEY_HEADER_DOC)] = None,
) -> list[ServiceRequest]:
    """Un signalement adressé à l'agence du jeton."""
    principal = await _principal(request, api_key)
    reference = _clean(service_request_id) or ""
    ticket = None
    if re.fullmatch(REFERENCE_PATTERN, reference):
        ticket = await queries.get_for_agency(
            request.app.state.sessions, principal.agency_id, reference
        )
    if ticket is None:
        raise Open311Failure(404, "signalement introuvable")
    return [_as_request(ticket, principal.agency_id)]


def _answers(
    service_code: str, attributes: dict[str, str], description: str | None
) -> dict[str, Any]:
    """The answers of a request, read like the chat reads typed answers (same synonyms: "Oui",
    "tous les jours"); a value no question accepts is refused with the question's name."""
    model = reports.model()
    answers: dict[str, Any] = {}
    if description:
        answers["description"] = description
    for code, value in attributes.items():
        question = model.questions[code]
        if question.kind == "date":
            try:
                answers[code] = dt.date.fromisoformat(value[:10]).isoformat()
            except ValueError:
                raise Open311Failure(400, f"date invalide pour attribute[{code}]") from None
            continue
        answer = reports.read_answer(
            question,
            value=value,
            optional=model.is_optional(service_code, code),
            today=reports.today(),
        )
        if not answer.ok or answer.value == SKIP:
            raise Open311Failure(400, f"valeur invalide pour attribute[{code}]")
        answers[code] = answer.value
    return answers


@router.post(
    "/requests.json",
    response_model=list[ServiceRequestCreated],
    status_code=201,
    responses=FILING_RESPONSES,
)
async def create_request(
    request: Request,
    body: Annotated[NewServiceRequest, Form()],  # type: ignore[valid-type]
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    x_api_key: Annotated[str | None, Header(max_length=200, description=API_KEY_HEADER_DOC)] = None,
) -> list[ServiceRequestCreated]:
    """Déposer un signalement (formulaire ``application/x-www-form-urlencoded``)."""
    form = cast(_NewRequestBase, body)
    principal = await _principal(request, form.api_key)
    service_code = _clean(form.service_code) or ""
    if service_code not in SERVICE_ATTRIBUTES:
        raise Open311Failure(400, "service_code inconnu")
    values = form.model_dump(by_alias=False)
    attributes = {
        code: cleaned
        for code in ALL_ATTRIBUTES
        if (cleaned := _clean(values.get(f"attr_{code}"))) is not None
    }
    allowed = {a.code: a for a in SERVICE_ATTRIBUTES[service_code]}
    sent = {k[len("attribute[") : -1] for k in (await request.form()) if k.startswith("attribute[")}
    unknown = sorted((set(attributes) | sent) - set(allowed))
    if unknown:
        raise Open311Failure(400, f"attribut inconnu pour ce service : {', '.join(unknown)}")
    address = _clean(form.address_string)
    commune_insee = resolve_commune(attributes.pop(COMMUNE_CODE, None), address)
    if commune_insee is None:
        raise Open311Failure(
            400,
            "commune introuvable : indiquez attribute[commune] (code INSEE, code postal ou nom) "
            "ou une adresse avec code postal dans address_string",
        )
    answers = _answers(service_code, attributes, _clean(form.description))
    if service_code == "absence_vacances":
        problems = otv.problems({**answers, "commune_insee": commune_insee}, reports.today())
        if problems:
            key, params = problems[0]
            raise Open311Failure(400, reports.problem_text(key, "fr", **params))
    fields = reports.ticket_fields(service_code, answers)
    if address:
        fields["localisation"] = address
    if form.lat is not None and form.long is not None:
        fields["coordonnees"] = f"{form.lat:.6f},{form.long:.6f}"
    contact = [
        v
        for v in (
            _clean(form.first_name),
            _clean(form.last_name),
            _clean(form.email),
            _clean(form.phone),
        )
        if v
    ]
    if contact:
        fields["contact"] = " ".join(contact)
    idempotency = _clean(idempotency_key)
    filing_key = (
        f"open311:{principal.agency_id}:{hashlib.sha256(idempotency.encode()).hexdigest()}"
        if idempotency
        else None
    )
    sessions = request.app.state.sessions
    existing = await tickets.get_by_idempotency_key(sessions, filing_key) if filing_key else None
    admission = getattr(getattr(request.app.state, "conversations", None), "admission", None)
    if existing is None and admission is not None:
        refusal = await admission.token_filing(f"token:{principal.token_id}")
        if refusal is not None:
            logger.info(
                "open311: filing by agency %s refused (%s limit)",
                principal.agency_id,
                refusal.scope,
            )
            raise Open311Failure(
                429,
                "trop de signalements déposés avec ce jeton : réessayez plus tard",
                headers={"Retry-After": retry_after_header(refusal.retry_after)},
            )
    try:
        ticket, _ = await tickets.file_report(
            sessions,
            tickets.NewReport(
                report_type=service_code,
                commune_insee=commune_insee,
                fields=_with_contact_choice(service_code, fields, contact),
                channel="open311",
                language="fr",
                anonymous=not contact,
                idempotency_key=filing_key,
                filed_by=f"{principal.agency_id}/{principal.actor}",
            ),
        )
    except tickets.InvalidReport:
        raise Open311Failure(400, "signalement invalide") from None
    destinations = ", ".join(d.agency_name for d in ticket.destinations) or "aucun service local"
    logger.info("open311: ticket %s filed by agency %s", ticket.reference, principal.agency_id)
    return [
        ServiceRequestCreated(
            service_request_id=ticket.reference,
            service_notice=f"Signalement transmis à : {destinations}.",
            account_id=None,
        )
    ]


def _with_contact_choice(
    report_type: str, fields: dict[str, str], contact: object
) -> dict[str, str]:
    """An Open311 request without contact details is the answer "stay anonymous" to the report
    model's ``recontact`` question, as in the chat (the same ticket fields in every channel)."""
    if contact or "recontact" not in reports.model().forms[report_type].questions:
        return fields
    return {**fields, "recontact": "anonyme"}
