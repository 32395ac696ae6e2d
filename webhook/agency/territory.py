"""Territories of observers (SPEC §7): a préfecture sees its département, a CISPD its EPCI, a
CLSPD its commune — aggregated figures of that territory only, never a ticket.

A territory is written ``departement:04``, ``epci:240400360@04`` or ``commune:04088``:

- the figures of the cellule de veille are computed per département (the préfecture's unit), so
  an EPCI territory is the part of the EPCI inside one département (``@04``); an EPCI that lies
  in one département may be written without it (``epci:240400360``);
- an observer's territory lies in the département of its agency (the préfecture of 04 creates
  the accounts of the CLSPD and CISPD of 04);
- an observer (account or API token) without a stored territory sees its agency's département
  (the behaviour before territories existed).

Communes, their département and EPCI come from the routing reference data; EPCI names from
``epci_names.csv`` (DGCL 2026, written by ``scripts/gen_epci_names.py``).
"""

from __future__ import annotations

import csv
import functools
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import routing
from webhook.store.db import Agent, ApiToken

EPCI_NAMES = Path(__file__).parent / "epci_names.csv"
KINDS: tuple[str, ...] = ("departement", "epci", "commune")
KIND_LABELS = {"departement": "Département", "epci": "EPCI", "commune": "Commune"}
_TEXT_RE = re.compile(
    r"^(?P<kind>departement|epci|commune):(?P<code>[0-9A-Za-z]{2,9})(?:@(?P<dep>[0-9AB]{2,3}))?$"
)

Sessions = async_sessionmaker[AsyncSession]


class TerritoryError(ValueError):
    """An invalid territory (message in French, safe to show)."""


@dataclass(frozen=True)
class Territory:
    kind: str  # "departement" | "epci" | "commune"
    code: str  # département code, EPCI SIREN or commune INSEE code
    departement: str

    def __str__(self) -> str:
        if self.kind == "epci":
            return f"epci:{self.code}@{self.departement}"
        return f"{self.kind}:{self.code}"

    @property
    def label(self) -> str:
        return area_label(self.kind, self.code, self.departement)

    def communes(self) -> frozenset[str]:
        """INSEE codes of the communes of the territory (all in ``self.departement``)."""
        if self.kind == "commune":
            return frozenset({self.code})
        if self.kind == "epci":
            return frozenset(epci_communes(self.code, self.departement))
        return frozenset(c.insee for c in departement_communes(self.departement))

    def covers(self, kind: str, code: str, departement: str) -> bool:
        """Whether an area (commune, EPCI part or département) lies inside the territory."""
        if departement != self.departement:
            return False
        if self.kind == "departement":
            return True
        if self.kind == "epci":
            return (kind == "epci" and code == self.code) or (
                kind == "commune" and code in self.communes()
            )
        return kind == "commune" and code == self.code


# ------------------------------------------------------------------------------ reference data


@functools.cache
def _epci_names() -> dict[str, str]:
    with EPCI_NAMES.open(encoding="utf-8", newline="") as handle:
        return {row["epci_siren"]: row["epci_nom"] for row in csv.DictReader(handle)}


@functools.cache
def _communes_by_departement() -> dict[str, tuple[routing.Commune, ...]]:
    grouped: dict[str, list[routing.Commune]] = {}
    for commune in routing.get_engine().communes():
        if commune.kind == "commune":
            grouped.setdefault(commune.departement, []).append(commune)
    return {dep: tuple(sorted(items, key=lambda c: c.insee)) for dep, items in grouped.items()}


def departements() -> dict[str, str]:
    """Code → name of every département of the reference data."""
    return dict(routing.get_engine().departements)


def departement_communes(departement: str) -> tuple[routing.Commune, ...]:
    return _communes_by_departement().get(departement, ())


@functools.cache
def epci_communes(siren: str, departement: str) -> tuple[str, ...]:
    return tuple(c.insee for c in departement_communes(departement) if c.epci_siren == siren)


@functools.cache
def epci_departements(siren: str) -> tuple[str, ...]:
    return tuple(
        sorted(
            dep
            for dep, communes in _communes_by_departement().items()
            if any(c.epci_siren == siren for c in communes)
        )
    )


def epci_name(siren: str) -> str:
    return _epci_names().get(siren, f"EPCI {siren}")


def area_label(kind: str, code: str, departement: str) -> str:
    """The French name of an area: a commune, the part of an EPCI in a département, a
    département."""
    if kind == "commune":
        commune = routing.get_engine().commune(code)
        return commune.name if commune is not None else code
    if kind == "epci":
        name = epci_name(code)
        if len(epci_departements(code)) > 1:
            return f"{name} (partie {departement})"
        return name
    name = departements().get(code, "")
    return f"{name} ({code})" if name else code


# ------------------------------------------------------------------------------ parsing


def parse(text: str, departement: str | None = None) -> Territory:
    """Read ``departement:DD``, ``epci:SIREN[@DD]`` or ``commune:INSEE``. ``departement``, when
    given, is where the territory must lie (the observer's agency's département)."""
    match = _TEXT_RE.fullmatch(text.strip())
    if match is None:
        raise TerritoryError(
            "Territoire invalide : attendu departement:DD, epci:SIREN ou commune:INSEE."
        )
    kind, code, at = match["kind"], match["code"].upper(), match["dep"]
    if kind == "departement":
        if code not in departements():
            raise TerritoryError(f"Département inconnu : {code}.")
        territory = Territory("departement", code, code)
    elif kind == "commune":
        commune = routing.get_engine().commune(code)
        if commune is None or commune.kind != "commune":
            raise TerritoryError(f"Commune inconnue : {code}.")
        territory = Territory("commune", commune.insee, commune.departement)
    else:
        deps = epci_departements(code)
        if not deps:
            raise TerritoryError(f"EPCI inconnu : {code}.")
        if at is None:
            if len(deps) > 1 and departement in deps:
                at = departement
            elif len(deps) > 1:
                raise TerritoryError(
                    f"Cet EPCI s'étend sur plusieurs départements ({', '.join(deps)}) : "
                    f"précisez lequel, par exemple epci:{code}@{deps[0]}."
                )
            else:
                at = deps[0]
        if at not in deps:
            raise TerritoryError(f"L'EPCI {code} n'a pas de commune dans le département {at}.")
        territory = Territory("epci", code, at)
    if departement is not None and territory.departement != departement:
        raise TerritoryError(f"Ce territoire est hors du département de l'agence ({departement}).")
    return territory


def agency_departement(agency_id: str) -> str | None:
    try:
        return routing.get_engine().agency(agency_id).departement or None
    except KeyError:
        return None


def for_agency(agency_id: str, stored: str | None) -> Territory | None:
    """The territory of an observer of ``agency_id``: the stored one, else the agency's
    département (None when the agency has none)."""
    departement = agency_departement(agency_id)
    if departement is None:
        return None
    if stored:
        try:
            return parse(stored, departement)
        except TerritoryError:
            return None  # reference data changed under a stored territory: see nothing
    return Territory("departement", departement, departement)


def check_for_agency(agency_id: str, text: str | None) -> str | None:
    """Validate the territory of a new observer of ``agency_id``; returns its stored form (None:
    the agency's département)."""
    if not text or not text.strip():
        return None
    departement = agency_departement(agency_id)
    if departement is None:
        raise TerritoryError("Cette agence n'a pas de département : pas de territoire possible.")
    return str(parse(text, departement))


# ------------------------------------------------------------------------------ storage


async def set_agent_territory(sessions: Sessions, agent_id: int, territory: str | None) -> None:
    async with sessions() as session, session.begin():
        await session.execute(update(Agent).where(Agent.id == agent_id).values(territory=territory))


async def set_token_territory(sessions: Sessions, token_id: int, territory: str | None) -> None:
    async with sessions() as session, session.begin():
        await session.execute(
            update(ApiToken).where(ApiToken.id == token_id).values(territory=territory)
        )


async def stored_territory(
    sessions: Sessions, *, agent_id: int | None = None, token_id: int | None = None
) -> str | None:
    async with sessions() as session:
        if agent_id is not None:
            agent = await session.get(Agent, agent_id)
            return agent.territory if agent is not None else None
        if token_id is not None:
            token = await session.get(ApiToken, token_id)
            return token.territory if token is not None else None
    return None
