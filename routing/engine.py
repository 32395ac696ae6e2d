"""The routing engine: commune resolution and rule-based decisions (pure, deterministic)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from routing.errors import UnknownCommuneError, UnknownReportTypeError
from routing.models import Agency, Commune, Decision, Destination, Helpline, Resolution
from routing.resolver import CommuneResolver, QueryKind
from routing.rules import FLAGS, Rule, RuleSet

REPORT_TYPES: tuple[str, ...] = (
    "harcelement",
    "enfant_en_danger",
    "violences_conjugales",
    "arnaque",
    "personne_vulnerable",
    "absence_vacances",
    "incivilite",
    "vol_cambriolage",
    "drogue_trafic",
    "autre",
)
_REPORT_TYPE_SET = frozenset(REPORT_TYPES)
_FORCE_CODES = {"police_nationale": "PN", "gendarmerie": "GN"}


@dataclass(frozen=True, slots=True)
class Areas:
    """Who plays which role where (kept apart from the agencies themselves)."""

    force: Mapping[str, tuple[str, ...]]
    split_force: frozenset[str]
    multi_service: frozenset[str]
    departement_roles: Mapping[str, Mapping[str, str]]
    commune_roles: Mapping[str, Mapping[str, str]]


class Engine:
    """Loaded reference data + rules. Build it with :func:`routing.load_engine`."""

    def __init__(
        self,
        *,
        communes: Mapping[str, Commune],
        aliases: Mapping[str, str],
        resolver: CommuneResolver,
        agencies: Mapping[str, Agency],
        areas: Areas,
        helplines: Mapping[str, Helpline],
        rules: RuleSet,
        departements: Mapping[str, str],
    ) -> None:
        self._communes = communes
        self._aliases = aliases
        self._resolver = resolver
        self._agencies = agencies
        self._areas = areas
        self._helplines = helplines
        self.rules = rules
        self.departements = departements
        self._rules_by_type = {t: rules.for_report_type(t) for t in REPORT_TYPES}

    # ------------------------------------------------------------------ lookups

    def resolve_commune(self, query: str, kind: QueryKind = "auto") -> Resolution:
        """Resolve a name, postal code or INSEE code; homonyms come back as "ambiguous".

        ``kind`` ("auto", "insee", "postal_code", "name") restricts how the query is read.
        """
        return self._resolver.resolve(query, kind)

    def commune(self, insee: str) -> Commune | None:
        """The current commune of an INSEE code (former codes map to their current commune)."""
        found = self._communes.get(insee)
        if found is None and insee in self._aliases:
            found = self._communes[self._aliases[insee]]
        return found

    def communes(self) -> Sequence[Commune]:
        """All current communes and municipal arrondissements."""
        return list(self._communes.values())

    def agency(self, agency_id: str) -> Agency:
        """An agency by id (``KeyError`` if unknown)."""
        return self._agencies[agency_id]

    def agencies(self) -> Sequence[Agency]:
        return list(self._agencies.values())

    def helpline(self, helpline_id: str) -> Helpline:
        """A helpline by id (``KeyError`` if unknown)."""
        return self._helplines[helpline_id]

    def helplines(self) -> Sequence[Helpline]:
        return list(self._helplines.values())

    def force_agencies(self, insee: str) -> tuple[str, ...]:
        """Ids of the competent PN/GN unit(s) of a commune (two for a split commune)."""
        commune = self.commune(insee)
        return self._areas.force.get(commune.insee, ()) if commune else ()

    def role_agencies(self, role: str, commune: Commune) -> tuple[str, ...]:
        """Agencies playing ``role`` for ``commune`` (empty if none is configured)."""
        if role == "force":
            return self._areas.force.get(commune.insee, ())
        if role in ("crip", "adult_cell"):
            agency_id = self._areas.departement_roles.get(commune.departement, {}).get(role)
        else:
            agency_id = self._areas.commune_roles.get(commune.insee, {}).get(role)
        return (agency_id,) if agency_id else ()

    # ------------------------------------------------------------------ decisions

    def decide(
        self,
        report_type: str,
        commune_insee: str | None,
        minor: bool = False,
        senior: bool = False,
        danger: bool = False,
        offence: bool = False,
        online: bool = False,
        neighbour_conflict: bool = False,
        money_lost: bool = False,
        repeated: bool = False,
    ) -> Decision:
        """Route a report. ``commune_insee=None`` gives the national fallback (referrals only).

        Raises :class:`UnknownReportTypeError` or :class:`UnknownCommuneError`.
        """
        if report_type not in _REPORT_TYPE_SET:
            raise UnknownReportTypeError(f"type de signalement inconnu : {report_type!r}")
        commune = None
        if commune_insee is not None:
            commune = self.commune(commune_insee)
            if commune is None:
                raise UnknownCommuneError(f"code INSEE inconnu : {commune_insee!r}")
        flags = (minor, senior, danger, offence, online, neighbour_conflict, money_lost, repeated)
        rule_ids: list[str] = []
        referrals: list[str] = []
        reasons: list[str] = []
        destinations: list[Destination] = []
        needs_address = False
        for rule in self._rules_by_type[report_type]:
            if not rule.condition.matches(report_type, flags):
                continue
            rule_ids.append(rule.id)
            for group in rule.referrals:
                if group.condition.matches(report_type, flags):
                    referrals.extend(r for r in group.ids if r not in referrals)
            if rule.reason:
                reasons.append(rule.reason)
            if rule.go_on:
                continue
            if commune is None:
                rule_ids.append(self.rules.fallback_id)
                referrals.extend(r for r in self.rules.fallback_referrals if r not in referrals)
                reasons.append(self.rules.messages["national_fallback"])
            else:
                needs_address = self._destinations(
                    rule, commune, flags, report_type, destinations, reasons, rule_ids
                )
            break
        return Decision(
            report_type=report_type,
            commune_insee=commune.insee if commune else None,
            destinations=destinations,
            referrals=referrals,
            reason=" ".join(reasons),
            rule_ids=rule_ids,
            needs_address=needs_address,
            flags=dict(zip(FLAGS, flags, strict=True)),
        )

    def _destinations(
        self,
        rule: Rule,
        commune: Commune,
        flags: tuple[bool, ...],
        report_type: str,
        destinations: list[Destination],
        reasons: list[str],
        rule_ids: list[str],
    ) -> bool:
        """Fill destinations and reasons for the matching rule; return ``needs_address``."""
        messages = self.rules.messages
        labels = self.rules.role_labels
        used: set[str] = set()
        force_used = False
        skipped: list[str] = []
        primary: tuple[str, ...] = ()
        primary_role = ""
        for role in rule.primary:
            primary = self.role_agencies(role, commune)
            if primary:
                primary_role = role
                break
            skipped.append(role)
        if skipped and primary:
            reasons.append(
                messages["role_skipped"].format(
                    roles=", ".join(labels[r] for r in skipped),
                    chosen=labels[primary_role],
                    commune=commune.name,
                )
            )
        if not primary:
            reasons.append(messages["no_agency"].format(commune=commune.name))
        else:
            for agency_id in primary:
                agency = self._agencies[agency_id]
                destinations.append(Destination(agency_id, "primary", rule.id, agency.name))
                used.add(agency_id)
            reasons.append(messages["primary"].format(agencies=self._names(primary)))
            if primary_role == "force":
                force_used = True
                for agency_id in primary:
                    note = rule.force_notes.get(
                        _FORCE_CODES.get(self._agencies[agency_id].kind, "")
                    )
                    if note and note not in reasons:
                        reasons.append(note)
        for copy in rule.copies:
            if not copy.condition.matches(report_type, flags):
                continue
            for role in copy.targets:
                ids = [a for a in self.role_agencies(role, commune) if a not in used]
                if not ids:
                    continue
                rule_ids.append(copy.id)
                for agency_id in ids:
                    agency = self._agencies[agency_id]
                    destinations.append(Destination(agency_id, "copy", copy.id, agency.name))
                    used.add(agency_id)
                reasons.append(messages["copy"].format(agencies=self._names(ids), why=copy.why))
                force_used = force_used or role == "force"
                break
        needs_address = False
        if force_used and commune.insee in self._areas.split_force:
            needs_address = True
            reasons.append(messages["split_force"].format(commune=commune.name))
        if force_used and commune.insee in self._areas.multi_service:
            needs_address = True
            reasons.append(messages["multi_service"].format(commune=commune.name))
        for destination in destinations:
            agency = self._agencies[destination.agency_id]
            if not agency.contact_known:
                reasons.append(messages["contact_unknown"].format(agency=agency.name))
        return needs_address

    def _names(self, agency_ids: Sequence[str]) -> str:
        return " et ".join(self._agencies[a].name for a in agency_ids)
