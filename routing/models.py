"""Value objects returned by the routing engine (all immutable)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ResolutionStatus = Literal["found", "ambiguous", "not_found"]
Role = Literal["primary", "copy"]


@dataclass(frozen=True, slots=True)
class Commune:
    """A current commune (or a municipal arrondissement of Paris, Lyon or Marseille)."""

    insee: str
    name: str
    departement: str
    postal_codes: tuple[str, ...]
    population: int | None
    epci_siren: str | None
    kind: Literal["commune", "arrondissement"] = "commune"
    parent_insee: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "insee": self.insee,
            "name": self.name,
            "departement": self.departement,
            "postal_codes": list(self.postal_codes),
            "population": self.population,
            "epci_siren": self.epci_siren,
            "kind": self.kind,
            "parent_insee": self.parent_insee,
        }


@dataclass(frozen=True, slots=True)
class Resolution:
    """Result of :meth:`routing.Engine.resolve_commune`.

    ``matched_by`` gives, for each candidate, how it matched: ``insee``, ``former_insee``,
    ``postal_code``, ``name`` or ``former_name`` (a commune déléguée/associée).
    """

    query: str
    status: ResolutionStatus
    candidates: list[Commune]
    matched_by: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "status": self.status,
            "candidates": [c.to_dict() for c in self.candidates],
            "matched_by": list(self.matched_by),
        }


@dataclass(frozen=True, slots=True)
class Agency:
    """An agency that can receive reports. Empty strings mean "unknown" (never invented)."""

    id: str
    name: str
    kind: str
    departement: str
    address: str = ""
    phone: str = ""
    email: str = ""
    hours: str = ""
    website: str = ""
    contact_known: bool = False
    source: str = ""
    notes: str = ""
    placeholder: bool = False
    # a configured service the sources did not identify ("non identifié, contact à
    # configurer"): it stays the competent destination, but nobody receives for it until an
    # operator sets it up
    unidentified: bool = False

    @property
    def to_configure(self) -> bool:
        """Nobody receives reports for it in the reference data: a generated placeholder or a
        configured service the sources did not identify."""
        return self.placeholder or self.unidentified

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "departement": self.departement,
            "address": self.address,
            "phone": self.phone,
            "email": self.email,
            "hours": self.hours,
            "website": self.website,
            "contact_known": self.contact_known,
            "placeholder": self.placeholder,
            "unidentified": self.unidentified,
            "source": self.source,
            "notes": self.notes,
        }


@dataclass(frozen=True, slots=True)
class Helpline:
    """A national number or online service given to the citizen as a referral."""

    id: str
    number: str
    name: str
    purpose: str
    availability: str
    url: str
    channel: str = ""
    sources: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "number": self.number,
            "name": self.name,
            "purpose": self.purpose,
            "availability": self.availability,
            "url": self.url,
            "channel": self.channel,
            "sources": list(self.sources),
        }


@dataclass(frozen=True, slots=True)
class Destination:
    """One agency a report is sent to, and the rule that put it there."""

    agency_id: str
    role: Role
    rule_id: str
    agency_name: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "agency_id": self.agency_id,
            "role": self.role,
            "rule_id": self.rule_id,
            "agency_name": self.agency_name,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """A routing decision: destinations, referrals for the citizen and the reason why."""

    report_type: str
    commune_insee: str | None
    destinations: list[Destination]
    referrals: list[str]
    reason: str
    rule_ids: list[str]
    needs_address: bool = False
    flags: dict[str, bool] = field(default_factory=dict)

    @property
    def primary(self) -> list[Destination]:
        return [d for d in self.destinations if d.role == "primary"]

    @property
    def copies(self) -> list[Destination]:
        return [d for d in self.destinations if d.role == "copy"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "report_type": self.report_type,
            "commune_insee": self.commune_insee,
            "destinations": [d.to_dict() for d in self.destinations],
            "referrals": list(self.referrals),
            "reason": self.reason,
            "rule_ids": list(self.rule_ids),
            "needs_address": self.needs_address,
            "flags": dict(self.flags),
        }
