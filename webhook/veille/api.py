"""API of the cellule de veille (SPEC §7), for observer tokens (``Authorization: Bearer tq_…``):

- ``GET /api/v1/veille/alerts?departement=DD`` — the alerts of the token's territory;
- ``GET /api/v1/veille/stats.csv?departement=DD[&from=…&to=…&by=commune|epci|departement]`` —
  ``week,area_code,area_name,report_type,count``, small counts hidden;
- ``GET /api/v1/agency/statistics`` — the territory's own weekly figures as JSON (this path gave
  a whole département's exact counts before the cellule de veille; it keeps its place).

A département outside the token's territory answers 403; counts from 1 to 10 are "< 11" and the
counts hidden so that a total gives no small one back are "secret", in every answer.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from webhook.agency.api import token_principal
from webhook.agency.auth import Principal
from webhook.agency.territory import Territory
from webhook.veille import access, pages, present, views
from webhook.veille.config import get_config
from webhook.veille.weeks import last_weeks

logger = logging.getLogger(__name__)

router = APIRouter(tags=["veille"])


class ErrorOut(BaseModel):
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "jeton manquant ou invalide"},
    403: {"model": ErrorOut, "description": "pas un jeton d'observateur, ou hors du territoire"},
}

Departement = Annotated[str, Query(pattern=r"^(\d{2}|2A|2B|97\d)$", description="ex. 04")]
HiddenCount = Literal["< 11", "secret"]


class Area(BaseModel):
    kind: Literal["commune", "epci", "departement"]
    code: str
    name: str


class AlertOut(BaseModel):
    id: int
    report_type: str
    subtype: str | None
    area: Area
    departement: str
    window_start: dt.datetime
    window_end: dt.datetime
    count: int | Literal["< 11"] = Field(description='"< 11" for a count from 1 to 10')
    expected: float | str = Field(
        description='expected count over the window; a bound (e.g. "< 0.9") when it would '
        "give a small baseline count back"
    )
    p_value: float | str = Field(description='exact, or "< 0.001" when a figure is hidden')
    status: Literal["open", "acknowledged", "closed"]
    explanation: str
    raised_at: dt.datetime
    updated_at: dt.datetime
    ended_at: dt.datetime | None
    demo: bool


class Cell(BaseModel):
    week: str
    report_type: str
    count: int | HiddenCount


class StatisticsOut(BaseModel):
    territory: Area
    departement: str
    weeks: list[str]
    cells: list[Cell]
    demo: bool


async def observer(
    request: Request, principal: Annotated[Principal, Depends(token_principal)]
) -> Territory:
    territory = await access.observer_territory(request.app.state.sessions, principal)
    if territory is None:
        raise HTTPException(status_code=403, detail="réservé aux jetons d'observateur")
    return territory


ObserverTerritory = Annotated[Territory, Depends(observer)]


def _check(territory: Territory, departement: str) -> None:
    if departement != territory.departement:
        raise HTTPException(status_code=403, detail="ce département est hors de votre territoire")


@router.get("/api/v1/veille/alerts", response_model=list[AlertOut], responses=ERRORS)
async def list_alerts(
    request: Request,
    territory: ObserverTerritory,
    departement: Departement,
    status: Annotated[Literal["open", "acknowledged", "closed"] | None, Query()] = None,
    since: Annotated[dt.date | None, Query(description="raised on or after")] = None,
) -> list[dict[str, Any]]:
    """Les alertes de convergence du territoire du jeton, les plus récentes d'abord."""
    _check(territory, departement)
    sessions = request.app.state.sessions
    demo = pages.is_demo(request)
    found = await access.alerts_for_territory(
        sessions,
        territory,
        statuses={status} if status else None,
        since=dt.datetime(since.year, since.month, since.day, tzinfo=dt.UTC) if since else None,
    )
    config = get_config()
    return [present.alert_document(a, config, demo=demo) for a in found]


@router.get(
    "/api/v1/veille/stats.csv",
    response_class=Response,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "week,area_code,area_name,report_type,count",
        },
        **ERRORS,
        422: {"model": ErrorOut, "description": "période ou niveau invalide"},
    },
)
async def stats_csv(
    request: Request,
    territory: ObserverTerritory,
    departement: Departement,
    from_: Annotated[dt.date | None, Query(alias="from")] = None,
    to: Annotated[dt.date | None, Query()] = None,
    by: Annotated[Literal["commune", "epci", "departement"], Query()] = "commune",
) -> Response:
    """Chiffres par semaine, territoire et type (secret statistique appliqué)."""
    _check(territory, departement)
    body, status_code = await pages.csv_export(
        request,
        territory,
        from_.isoformat() if from_ else None,
        to.isoformat() if to else None,
        by,
    )
    if status_code != 200:
        raise HTTPException(status_code=status_code, detail=body)
    return pages.csv_response(body, territory, pages.is_demo(request))


@router.get(
    "/api/v1/agency/statistics", response_model=StatisticsOut, tags=["agency"], responses=ERRORS
)
async def statistics(
    request: Request,
    territory: ObserverTerritory,
    weeks: Annotated[int, Query(ge=1, le=104)] = 12,
) -> StatisticsOut:
    """Chiffres agrégés du territoire de l'observateur, par semaine complète et par type."""
    config = get_config()
    wanted = last_weeks(pages.clock(request), weeks)
    sessions = request.app.state.sessions
    tables = await pages.figures_cache(request).weeks(sessions, territory.departement, wanted)
    return StatisticsOut(
        territory=Area(kind=territory.kind, code=territory.code, name=territory.label),  # type: ignore[arg-type]
        departement=territory.departement,
        weeks=[w.label for w in wanted],
        cells=[Cell(**c) for c in views.cells(tables, territory, config)],
        demo=pages.is_demo(request),
    )
