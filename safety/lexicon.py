"""Load and validate the danger lexicon (``lexicon.yml``) into compiled, immutable rules."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml

from .errors import SafetyDataError
from .normalize import normalize_literal, squeeze_pattern

DEFAULT_LEXICON_PATH = Path(__file__).with_name("lexicon.yml")

Level = Literal["strong", "weak"]
_LEVELS: frozenset[str] = frozenset({"strong", "weak"})
_TERM_KINDS: frozenset[str] = frozenset({"child", "young_child", "elder", "partner"})
_FORBIDDEN_ESCAPES = re.compile(r"\\[SWDB]")
_RULE_ID = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Rule:
    """One lexicon rule: patterns that, when matched, signal a danger category."""

    id: str
    category: str
    level: Level
    patterns: tuple[re.Pattern[str], ...]
    past_sensitive: bool = False
    requires_terms: tuple[str, ...] = ()
    adds_categories: tuple[str, ...] = ()
    # the rule is dropped when one of these matches the message ("elle est à l'hôpital")
    unless: tuple[re.Pattern[str], ...] = ()


@dataclass(frozen=True)
class Combination:
    """Add ``add`` when a ``term`` kind and one of ``with_categories`` are both present
    (and the ``unless_term`` kind, if any, is absent)."""

    id: str
    term: str
    with_categories: frozenset[str]
    add: str
    unless_term: str | None = None


@dataclass(frozen=True)
class Lexicon:
    """The compiled lexicon used by :func:`safety.assess`."""

    categories: tuple[str, ...]
    category_priority: tuple[str, ...]
    helplines_by_category: Mapping[str, tuple[str, ...]]
    non_emergency_lines: frozenset[str]
    sms: Mapping[str, str]
    idioms: tuple[re.Pattern[str], ...]
    negation_tail: re.Pattern[str]
    present_markers: tuple[re.Pattern[str], ...]
    past_markers: tuple[re.Pattern[str], ...]
    reassurance: tuple[re.Pattern[str], ...]
    terms: Mapping[str, tuple[re.Pattern[str], ...]]
    rules: tuple[Rule, ...]
    combinations: tuple[Combination, ...]
    # a clause that says the present is settled, and the words of time that then say nothing
    # of a danger now (markers.settled, markers.now_words)
    settled: tuple[re.Pattern[str], ...] = ()
    now_words: tuple[re.Pattern[str], ...] = ()

    def helpline_ids(self) -> frozenset[str]:
        """Every helpline id the lexicon can return."""
        return frozenset(i for ids in self.helplines_by_category.values() for i in ids)


def compile_pattern(source: str, where: str) -> re.Pattern[str]:
    """Compile one lexicon pattern: squeezed like the text, anchored on word boundaries."""
    if not isinstance(source, str) or not source.strip():
        raise SafetyDataError(f"{where}: empty or non-string pattern {source!r}")
    if not source.isascii() or source != source.lower() or _FORBIDDEN_ESCAPES.search(source):
        raise SafetyDataError(
            f"{where}: pattern {source!r} must be lowercase ASCII without \\S, \\W, \\D or \\B"
        )
    wrapped = rf"(?<![a-z0-9])(?:{squeeze_pattern(source)})(?![a-z0-9])"
    try:
        return re.compile(wrapped)
    except re.error as exc:
        raise SafetyDataError(f"{where}: invalid pattern {source!r}: {exc}") from exc


def _compile_all(sources: Any, where: str) -> tuple[re.Pattern[str], ...]:
    if not isinstance(sources, list) or not sources:
        raise SafetyDataError(f"{where}: expected a non-empty list of patterns")
    return tuple(compile_pattern(src, f"{where}[{i}]") for i, src in enumerate(sources))


def _require(data: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in data:
        raise SafetyDataError(f"{where}: missing key {key!r}")
    return data[key]


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SafetyDataError(f"{where}: expected a list of strings")
    return tuple(value)


def _build_negation(negators: Sequence[str], fillers: Sequence[str]) -> re.Pattern[str]:
    neg = "|".join(re.escape(normalize_literal(n)) for n in negators)
    fill = "|".join(re.escape(normalize_literal(f)) for f in fillers)
    # Applied to the text just before a match, e.g. "il n a pas de " -> negated.
    return re.compile(rf"(?:^|\s)(?:{neg})(?:\s(?:{fill})){{0,3}}\s*$")


def parse_lexicon(data: Any, source: str = "lexicon") -> Lexicon:
    """Validate the YAML document ``data`` and compile it; raise SafetyDataError on any error."""
    if not isinstance(data, dict):
        raise SafetyDataError(f"{source}: top level must be a mapping")
    categories = _str_list(_require(data, "categories", source), f"{source}.categories")
    known = set(categories)
    priority = _str_list(_require(data, "category_priority", source), f"{source}.category_priority")
    if set(priority) != known or len(priority) != len(known):
        raise SafetyDataError(f"{source}.category_priority must list every category exactly once")

    raw_lines = _require(data, "helplines_by_category", source)
    if not isinstance(raw_lines, dict) or set(raw_lines) != known:
        raise SafetyDataError(f"{source}.helplines_by_category must have one entry per category")
    helplines = {
        cat: _str_list(ids, f"{source}.helplines_by_category.{cat}")
        for cat, ids in raw_lines.items()
    }
    non_emergency = frozenset(
        _str_list(_require(data, "non_emergency_lines", source), f"{source}.non_emergency_lines")
    )

    sms_raw = data.get("sms") or {}
    if not isinstance(sms_raw, dict):
        raise SafetyDataError(f"{source}.sms must be a mapping")
    sms = {normalize_literal(str(k)): normalize_literal(str(v)) for k, v in sms_raw.items()}
    # keep unsqueezed keys too ("tt" must not become "t" before lookup)
    sms.update({str(k).lower(): str(v).lower() for k, v in sms_raw.items()})

    negation = _require(data, "negation", source)
    negation_tail = _build_negation(
        _str_list(_require(negation, "negators", f"{source}.negation"), f"{source}.negators"),
        _str_list(_require(negation, "fillers", f"{source}.negation"), f"{source}.fillers"),
    )
    markers = _require(data, "markers", source)
    terms_raw = _require(data, "terms", source)
    if not isinstance(terms_raw, dict) or set(terms_raw) != _TERM_KINDS:
        raise SafetyDataError(f"{source}.terms must define exactly {sorted(_TERM_KINDS)}")

    rules: list[Rule] = []
    seen: set[str] = set()
    for i, raw in enumerate(_require(data, "rules", source)):
        where = f"{source}.rules[{i}]"
        rule_id = _require(raw, "id", where)
        if not isinstance(rule_id, str) or not _RULE_ID.match(rule_id) or rule_id in seen:
            raise SafetyDataError(f"{where}: invalid or duplicate rule id {rule_id!r}")
        seen.add(rule_id)
        category = _require(raw, "category", where)
        level = _require(raw, "level", where)
        requires = _str_list(raw.get("requires_terms", []), f"{where}.requires_terms")
        adds = _str_list(raw.get("adds_categories", []), f"{where}.adds_categories")
        if category not in known or not set(adds) <= known:
            raise SafetyDataError(f"{where}: unknown category in {rule_id!r}")
        if level not in _LEVELS:
            raise SafetyDataError(f"{where}: level must be strong or weak, got {level!r}")
        if not set(requires) <= _TERM_KINDS:
            raise SafetyDataError(f"{where}: unknown term kind in requires_terms")
        rules.append(
            Rule(
                id=rule_id,
                category=category,
                level=level,
                patterns=_compile_all(raw.get("patterns"), f"{where}({rule_id}).patterns"),
                past_sensitive=bool(raw.get("past_sensitive", False)),
                requires_terms=requires,
                adds_categories=adds,
                unless=(
                    _compile_all(raw["unless"], f"{where}({rule_id}).unless")
                    if "unless" in raw
                    else ()
                ),
            )
        )

    combinations: list[Combination] = []
    for i, raw in enumerate(data.get("combinations") or []):
        where = f"{source}.combinations[{i}]"
        combo = Combination(
            id=str(_require(raw, "id", where)),
            term=str(_require(raw, "term", where)),
            with_categories=frozenset(
                _str_list(_require(raw, "with_categories", where), f"{where}.with_categories")
            ),
            add=str(_require(raw, "add", where)),
            unless_term=raw.get("unless_term"),
        )
        if combo.unless_term is not None and combo.unless_term not in _TERM_KINDS:
            raise SafetyDataError(f"{where}: unknown unless_term {combo.unless_term!r}")
        if combo.term not in _TERM_KINDS or not combo.with_categories <= known:
            raise SafetyDataError(f"{where}: unknown term or category")
        if combo.add not in known or combo.id in seen:
            raise SafetyDataError(f"{where}: unknown category or duplicate id {combo.id!r}")
        seen.add(combo.id)
        combinations.append(combo)

    return Lexicon(
        categories=categories,
        category_priority=priority,
        helplines_by_category=helplines,
        non_emergency_lines=non_emergency,
        sms=sms,
        idioms=_compile_all(data.get("idioms") or ["zzzz"], f"{source}.idioms"),
        negation_tail=negation_tail,
        present_markers=_compile_all(_require(markers, "present", source), f"{source}.present"),
        past_markers=_compile_all(_require(markers, "past", source), f"{source}.past"),
        reassurance=_compile_all(_require(data, "reassurance", source), f"{source}.reassurance"),
        terms={k: _compile_all(v, f"{source}.terms.{k}") for k, v in terms_raw.items()},
        rules=tuple(rules),
        combinations=tuple(combinations),
        settled=_compile_all(markers["settled"], f"{source}.settled")
        if markers.get("settled")
        else (),
        now_words=_compile_all(markers["now_words"], f"{source}.now_words")
        if markers.get("now_words")
        else (),
    )


def load_lexicon_file(path: Path) -> Lexicon:
    """Read and compile a lexicon file."""
    try:
        with path.open(encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as exc:
        raise SafetyDataError(f"cannot read lexicon {path}: {exc}") from exc
    return parse_lexicon(data, source=path.name)


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    """The packaged lexicon, compiled once per process."""
    return load_lexicon_file(DEFAULT_LEXICON_PATH)
