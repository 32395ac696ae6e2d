"""Routing rules: parsing and validation of ``rules.yml`` into compiled, immutable rules."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from routing.errors import DataError
from routing.yamlio import line_of

FLAGS: tuple[str, ...] = (
    "minor",
    "senior",
    "danger",
    "offence",
    "online",
    "neighbour_conflict",
    "money_lost",
    "repeated",
)
ROLES: tuple[str, ...] = ("force", "crip", "adult_cell", "mediation", "police_municipale", "mairie")
MESSAGE_KEYS: tuple[str, ...] = (
    "primary",
    "copy",
    "role_skipped",
    "split_force",
    "multi_service",
    "no_agency",
    "contact_unknown",
    "national_fallback",
)
FlagTest = tuple[tuple[int, bool], ...]  # (index in FLAGS, expected value)


@dataclass(frozen=True, slots=True)
class Condition:
    """``when`` (all must hold) and ``when_any`` (at least one must hold)."""

    report_types: frozenset[str] | None
    all_of: FlagTest
    any_of: FlagTest

    def matches(self, report_type: str, flags: tuple[bool, ...]) -> bool:
        if self.report_types is not None and report_type not in self.report_types:
            return False
        for index, expected in self.all_of:
            if flags[index] is not expected:
                return False
        if self.any_of:
            return any(flags[index] is expected for index, expected in self.any_of)
        return True

    @property
    def always(self) -> bool:
        return self.report_types is None and not self.all_of and not self.any_of


@dataclass(frozen=True, slots=True)
class ConditionalReferrals:
    ids: tuple[str, ...]
    condition: Condition


@dataclass(frozen=True, slots=True)
class Copy:
    id: str
    targets: tuple[str, ...]
    condition: Condition
    why: str


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    condition: Condition
    primary: tuple[str, ...]
    copies: tuple[Copy, ...]
    referrals: tuple[ConditionalReferrals, ...]
    reason: str
    go_on: bool
    force_notes: Mapping[str, str]
    line: int | None


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]
    report_type_names: Mapping[str, str]
    role_labels: Mapping[str, str]
    messages: Mapping[str, str]
    fallback_id: str
    fallback_referrals: tuple[str, ...]

    def for_report_type(self, report_type: str) -> tuple[Rule, ...]:
        return tuple(
            r
            for r in self.rules
            if r.condition.report_types is None or report_type in r.condition.report_types
        )


_RULE_KEYS = {
    "id",
    "description",
    "when",
    "when_any",
    "primary",
    "copies",
    "referrals",
    "reason",
    "continue",
    "force_notes",
}
_COPY_KEYS = {"id", "when", "when_any", "to", "why"}


class _Parser:
    def __init__(self, path: Path, report_types: Collection[str], helplines: Collection[str]):
        self.file = str(path)
        self.report_types = report_types
        self.helplines = helplines

    def error(self, message: str, node: Any, line: int | None = None) -> DataError:
        return DataError(message, file=self.file, line=line_of(node, line))

    def mapping(self, node: Any, what: str, line: int | None) -> Mapping[str, Any]:
        if node is None:
            return {}
        if not isinstance(node, Mapping):
            raise self.error(f"{what} doit être un dictionnaire", node, line)
        return node

    def flag_test(self, node: Mapping[str, Any], line: int | None) -> FlagTest:
        tests = []
        for key, value in node.items():
            if key == "report_type":
                continue
            if key not in FLAGS:
                raise self.error(
                    f"condition inconnue {key!r} (attendu : {', '.join(FLAGS)})", node, line
                )
            if not isinstance(value, bool):
                raise self.error(f"la condition {key!r} doit valoir true ou false", node, line)
            tests.append((FLAGS.index(key), value))
        return tuple(tests)

    def condition(self, parent: Mapping[str, Any], line: int | None) -> Condition:
        when = self.mapping(parent.get("when"), "when", line)
        when_any = self.mapping(parent.get("when_any"), "when_any", line)
        if "report_type" in when_any:
            raise self.error("report_type n'est pas permis dans when_any", when_any, line)
        report_types = None
        if "report_type" in when:
            raw = when["report_type"]
            values = [raw] if isinstance(raw, str) else raw
            if not isinstance(values, list) or not values:
                raise self.error("report_type doit être un id ou une liste d'ids", when, line)
            for value in values:
                if value not in self.report_types:
                    raise self.error(f"type de signalement inconnu {value!r}", when, line)
            report_types = frozenset(values)
        return Condition(report_types, self.flag_test(when, line), self.flag_test(when_any, line))

    def roles(self, node: Any, what: str, line: int | None) -> tuple[str, ...]:
        if not isinstance(node, list) or not node:
            raise self.error(f"{what} doit être une liste non vide de rôles", node, line)
        for role in node:
            if role not in ROLES:
                raise self.error(
                    f"rôle inconnu {role!r} (attendu : {', '.join(ROLES)})", node, line
                )
        return tuple(node)

    def helpline_ids(self, ids: Any, line: int | None) -> tuple[str, ...]:
        if not isinstance(ids, list):
            raise self.error("ids doit être une liste", ids, line)
        for value in ids:
            if str(value) not in self.helplines:
                raise self.error(f"renvoi inconnu {value!r} (absent de helplines.yml)", ids, line)
        return tuple(str(v) for v in ids)

    def referrals(self, node: Any, line: int | None) -> tuple[ConditionalReferrals, ...]:
        if node is None:
            return ()
        if not isinstance(node, list):
            raise self.error("referrals doit être une liste", node, line)
        result = []
        always = Condition(None, (), ())
        for item in node:
            if isinstance(item, (str, int)):
                result.append(
                    ConditionalReferrals(self.helpline_ids([item], line_of(node, line)), always)
                )
            elif isinstance(item, Mapping):
                item_line = line_of(item, line)
                unknown = set(item) - {"ids", "when", "when_any"}
                if unknown:
                    raise self.error(f"clé inconnue {sorted(unknown)}", item, line)
                result.append(
                    ConditionalReferrals(
                        self.helpline_ids(item.get("ids"), item_line),
                        self.condition(item, item_line),
                    )
                )
            else:
                raise self.error("renvoi invalide", item, line)
        return tuple(result)


def parse_rules(
    document: Any, path: Path, *, report_types: tuple[str, ...], helplines: Collection[str]
) -> RuleSet:
    """Validate ``rules.yml`` and compile it. Raises :class:`DataError` with file and line."""
    parser = _Parser(path, report_types, helplines)
    if not isinstance(document, Mapping):
        raise DataError("le fichier doit contenir un dictionnaire", file=str(path), line=1)
    names = parser.mapping(document.get("report_types"), "report_types", 1)
    for report_type in names:
        if report_type not in report_types:
            raise parser.error(f"type de signalement inconnu {report_type!r}", names, 1)
    missing = [t for t in report_types if t not in names]
    if missing:
        raise parser.error(f"types de signalement sans nom : {missing}", names, 1)
    roles = parser.mapping(document.get("roles"), "roles", 1)
    for role in ROLES:
        if role not in roles:
            raise parser.error(f"libellé manquant pour le rôle {role!r}", roles, 1)
    messages = parser.mapping(document.get("messages"), "messages", 1)
    for key in MESSAGE_KEYS:
        if not isinstance(messages.get(key), str):
            raise parser.error(f"message manquant : {key!r}", messages, 1)
    fallback = parser.mapping(document.get("national_fallback"), "national_fallback", 1)
    if not isinstance(fallback.get("id"), str):
        raise parser.error("national_fallback.id manquant", fallback, 1)

    raw_rules = document.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise parser.error("rules doit être une liste non vide", document, 1)
    seen: dict[str, int | None] = {fallback["id"]: line_of(fallback)}
    rules = []
    for raw in raw_rules:
        line = line_of(raw)
        if not isinstance(raw, Mapping):
            raise parser.error("chaque règle doit être un dictionnaire", raw, line)
        unknown = set(raw) - _RULE_KEYS
        if unknown:
            raise parser.error(f"clé inconnue {sorted(unknown)}", raw, line)
        rule_id = raw.get("id")
        if not isinstance(rule_id, str) or not rule_id:
            raise parser.error("règle sans id", raw, line)
        if rule_id in seen:
            raise parser.error(
                f"id de règle en double {rule_id!r} (déjà en ligne {seen[rule_id]})", raw, line
            )
        seen[rule_id] = line
        go_on = raw.get("continue", False)
        if not isinstance(go_on, bool):
            raise parser.error("continue doit valoir true ou false", raw, line)
        primary: tuple[str, ...] = ()
        if not go_on:
            primary = parser.roles(raw.get("primary"), f"primary de {rule_id!r}", line)
        elif "primary" in raw or "copies" in raw:
            raise parser.error("une règle `continue` ne peut désigner que des renvois", raw, line)
        copies = []
        for copy in raw.get("copies") or []:
            copy_line = line_of(copy, line)
            if not isinstance(copy, Mapping):
                raise parser.error("copie invalide", copy, line)
            unknown = set(copy) - _COPY_KEYS
            if unknown:
                raise parser.error(f"clé inconnue {sorted(unknown)}", copy, line)
            copy_id = copy.get("id")
            if not isinstance(copy_id, str) or not copy_id:
                raise parser.error("copie sans id", copy, copy_line)
            if copy_id in seen:
                raise parser.error(
                    f"id de règle en double {copy_id!r} (déjà en ligne {seen[copy_id]})",
                    copy,
                    copy_line,
                )
            seen[copy_id] = copy_line
            copies.append(
                Copy(
                    copy_id,
                    parser.roles(copy.get("to"), f"to de {copy_id!r}", copy_line),
                    parser.condition(copy, copy_line),
                    str(copy.get("why", "")),
                )
            )
        force_notes = parser.mapping(raw.get("force_notes"), "force_notes", line)
        if set(force_notes) - {"PN", "GN"}:
            raise parser.error("force_notes n'accepte que PN et GN", force_notes, line)
        rules.append(
            Rule(
                id=rule_id,
                condition=parser.condition(raw, line),
                primary=primary,
                copies=tuple(copies),
                referrals=parser.referrals(raw.get("referrals"), line),
                reason=str(raw.get("reason", "")),
                go_on=go_on,
                force_notes=dict(force_notes),
                line=line,
            )
        )
    last = rules[-1]
    if not last.condition.always or last.go_on:
        raise DataError(
            "la dernière règle doit être la règle par défaut, sans condition",
            file=str(path),
            line=last.line,
        )
    for rule in rules[:-1]:
        if rule.condition.always and not rule.go_on:
            raise DataError(
                f"la règle {rule.id!r} sans condition masque les règles suivantes",
                file=str(path),
                line=rule.line,
            )
    return RuleSet(
        rules=tuple(rules),
        report_type_names=dict(names),
        role_labels=dict(roles),
        messages=dict(messages),
        fallback_id=fallback["id"],
        fallback_referrals=parser.helpline_ids(fallback.get("referrals") or [], line_of(fallback)),
    )
