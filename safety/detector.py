"""Immediate-danger detection (SPEC §3): rules over normalised text, no classifier, no threshold.

Decision procedure (the lexicon's header comment says the same in data terms):

* strong rule matched (not negated, not dated in the past) → immediate danger;
* weak rules: two different ones, or one with a "present" marker → immediate danger;
* "reassurance" phrases cancel weak rules only;
* ``past_sensitive`` rules are dropped when the message is dated in the past ("hier",
  "last week") and nothing says it is still going on ("encore là", "en ce moment").
  A past event without a date ("il m'a frappée") stays flagged: when in doubt, flag.

Then the danger model (:mod:`safety.danger_model`, issue 12):

* when the rules find no danger, a probability at or above the model's ``threshold`` is a
  danger (a call for help: 17, 112, 114), in its ask band the assessment is ``uncertain``; a
  message that says it is not happening now (:func:`said_not_now`) needs the model's higher
  ``not_now_threshold``, and below it is ``uncertain``;
* when the rules find a danger in a long message (a story: at least ``VETO_MIN_WORDS`` words the
  model knows) that says nothing of "now" (no present marker), says it is not now (a cue of
  ``NOT_NOW_CUES``: dated in the past, over, from a screen or a rumour, a joke, told as lasting
  or repeating), is not about suicide or distress, and the model finds it very unlikely (below
  its ``veto_threshold``), the alarm becomes the question "is someone in danger right now?"
  (``uncertain``, the rules in ``cancelled`` as ``<id>:model``,
  :attr:`DangerAssessment.overruled`).

The thresholds are chosen together by cross-validation on the training corpus for the recall of
this combined decision (``scripts/train_danger.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .danger_model import DangerModel, clause_cues, cues, default_model
from .lexicon import Lexicon, Rule, default_lexicon
from .normalize import normalize_clauses

AGITATION_RULE_ID = "agitation"
MODEL_RULE_ID = "danger_model"
# a rule whose alarm the danger model turned into the question is listed in ``cancelled`` so
OVERRULED_SUFFIX = ":model"
# the danger model decides alone only on messages of at least this many words it knows
MODEL_MIN_WORDS = 5
# ... and may turn the rules' alarm into the question only on stories of at least this many
# (a short message, an answer to a form's question, keeps the rules' decision)
VETO_MIN_WORDS = 12
# never overruled: suicide (SPEC §3: suicidal phrases are never dropped) and distress ("I can't
# take it anymore": support and a listening line, whatever the story around it)
_NEVER_OVERRULED = frozenset({"suicidal", "distress"})
# ... and only when the message itself says it is not happening now: dated in the past, over,
# from a screen or a rumour, a joke, told as something that lasts or repeats ("il me frappe
# depuis deux ans", "tous les soirs": told to be followed up; safety.danger_model.CUES)
NOT_NOW_CUES = frozenset({"past", "resolved", "fiction", "joke", "question", "letter", "habitual"})
# ... unless one of these says it is: now, just now, a call for help
_NOW_CUES = frozenset({"present", "just", "help"})
# (Its corpus is French and English with a few messages in other languages, most of them
# dangers: in those languages it errs towards alarms — a false alarm costs a line, SPEC §3.)
_MODEL_CATEGORY = "help_call"
_AGITATION_CATEGORY = "help_call"


@dataclass(frozen=True)
class DangerAssessment:
    """Result of :func:`assess`.

    ``categories`` and ``helplines`` are ordered by priority; ``matched`` lists the ids of the
    rules (and combinations) that produced the decision; ``cancelled`` lists rules that matched
    but were dropped (negation, past, reassurance, weak alone), for explanation only.
    """

    immediate_danger: bool
    categories: tuple[str, ...] = ()
    helplines: tuple[str, ...] = ()
    matched: tuple[str, ...] = ()
    cancelled: tuple[str, ...] = field(default=())
    language: str | None = None
    # the danger model's probability (None when the rules decided alone) and its uncertain band:
    # the chat asks once whether someone is in danger right now
    probability: float | None = None
    uncertain: bool = False

    @property
    def model_alone(self) -> bool:
        """The danger model decided alone (no rule): answers to a form's questions do not count
        such a decision (webhook.conversation.turn, the action server)."""
        return self.matched == (MODEL_RULE_ID,)

    @property
    def overruled(self) -> bool:
        """The rules found a danger that the danger model turned into the question (a long story
        it finds very unlikely to be a danger now): ask "is someone in danger right now?" even
        where the model alone is not listened to (answers to a form's questions)."""
        return self.uncertain and any(c.endswith(OVERRULED_SUFFIX) for c in self.cancelled)

    def to_dict(self) -> dict[str, object]:
        """Plain-JSON view (for the triage CLI and action events)."""
        return {
            "immediate_danger": self.immediate_danger,
            "categories": list(self.categories),
            "helplines": list(self.helplines),
            "matched": list(self.matched),
            "cancelled": list(self.cancelled),
            "probability": self.probability,
            "uncertain": self.uncertain,
        }


@dataclass(frozen=True)
class _Hit:
    rule: Rule
    negated: bool


def _any(patterns: tuple[re.Pattern[str], ...], clauses: tuple[str, ...]) -> bool:
    return any(p.search(c) for p in patterns for c in clauses)


def _strip_idioms(clauses: tuple[str, ...], lexicon: Lexicon) -> tuple[str, ...]:
    cleaned: list[str] = []
    for clause in clauses:
        for idiom in lexicon.idioms:
            clause = idiom.sub(" ", clause)
        clause = " ".join(clause.split())
        if clause:
            cleaned.append(clause)
    return tuple(cleaned)


def _match_rule(rule: Rule, clauses: tuple[str, ...], lexicon: Lexicon) -> _Hit | None:
    """Return a hit if any pattern matches; negated only if every match is negated."""
    found_negated = False
    for clause in clauses:
        for pattern in rule.patterns:
            for match in pattern.finditer(clause):
                if lexicon.negation_tail.search(clause[: match.start()]):
                    found_negated = True
                    continue
                return _Hit(rule, negated=False)
    return _Hit(rule, negated=True) if found_negated else None


def _is_agitated(text: str) -> bool:
    """Shouting: "!!", a short message ending in "!", or a message written in capitals."""
    letters = [ch for ch in text if ch.isalpha()]
    if "!!" in text:
        return True
    if "!" in text and len(text.split()) <= 3:
        return True
    return len(letters) >= 4 and all(ch.isupper() for ch in letters)


def helplines_for(*categories: str, lexicon: Lexicon | None = None) -> tuple[str, ...]:
    """The helplines of danger categories (emergency lines first), e.g. when a citizen answers
    "yes" to "is a child in danger right now?": ``helplines_for("child_danger_now")``."""
    return _order_helplines(tuple(categories), lexicon or default_lexicon())


def confirmed(category: str, language: str | None = None) -> DangerAssessment:
    """A danger the citizen confirmed (a "yes" to "is someone in danger right now?"), with the
    helplines of ``category`` — the same in every channel."""
    return DangerAssessment(
        immediate_danger=True,
        categories=(category,),
        helplines=helplines_for(category),
        language=language,
    )


def _order_helplines(categories: tuple[str, ...], lexicon: Lexicon) -> tuple[str, ...]:
    ordered: list[str] = []
    for category in categories:
        for line in lexicon.helplines_by_category[category]:
            if line not in ordered:
                ordered.append(line)
    emergency = [line for line in ordered if line not in lexicon.non_emergency_lines]
    listening = [line for line in ordered if line in lexicon.non_emergency_lines]
    return tuple(emergency + listening)


_DEFAULT = object()


def assess(
    text: str,
    language: str | None = None,
    *,
    lexicon: Lexicon | None = None,
    model: DangerModel | object | None = _DEFAULT,
) -> DangerAssessment:
    """Check one message for immediate danger.

    ``language`` (ISO 639-1) is recorded but does not restrict matching: every language's
    patterns are always applied, because language detection is unreliable on the short, mixed
    messages written in distress ("help!!", "au secours please").

    When the rules find no danger, the danger model (:mod:`safety.danger_model`; ``model=None``
    for the rules alone) decides: at or above its threshold the message is a danger — with the
    categories of the weak rules it matched alone, else a call for help (17, 112, 114) — and in
    its uncertain band the assessment is ``uncertain``.
    """
    lex = lexicon or default_lexicon()
    clauses = _strip_idioms(normalize_clauses(text or "", lex.sms), lex)
    if not clauses:
        return DangerAssessment(immediate_danger=False, language=language)

    terms = {kind for kind, patterns in lex.terms.items() if _any(patterns, clauses)}
    present = _any(lex.present_markers, _unsettled(clauses, lex))
    past = _dated(clauses, lex, present)
    reassured = _any(lex.reassurance, clauses)

    strong: list[Rule] = []
    weak: list[Rule] = []
    cancelled: list[str] = []
    for rule in lex.rules:
        if rule.requires_terms and not set(rule.requires_terms) <= terms:
            continue
        hit = _match_rule(rule, clauses, lex)
        if hit is None:
            continue
        if hit.negated:
            cancelled.append(f"{rule.id}:negated")
        elif rule.past_sensitive and past:
            cancelled.append(f"{rule.id}:past")
        elif rule.unless and _any(rule.unless, clauses):
            cancelled.append(f"{rule.id}:unless")
        elif rule.level == "weak" and reassured:
            cancelled.append(f"{rule.id}:reassurance")
        elif rule.level == "strong":
            strong.append(rule)
        else:
            weak.append(rule)

    weak_ids = {r.id for r in weak}
    agitated = _is_agitated(text) and not reassured
    weak_count = len(weak_ids) + (1 if agitated else 0)
    weak_fires = weak_count >= 2 or (weak_count >= 1 and present)
    chosen = default_model() if model is _DEFAULT else model
    if not strong and not weak_fires:
        cancelled.extend(f"{r.id}:weak_alone" for r in weak)
        if not isinstance(chosen, DangerModel):
            return DangerAssessment(
                immediate_danger=False, cancelled=tuple(cancelled), language=language
            )
        probability = chosen.probability(text, lex.sms)
        words = chosen.known_words(text, lex.sms)
        needed = chosen.threshold_for(said_not_now(text, present, lex))
        if probability < needed or words < MODEL_MIN_WORDS:
            # a short answer ("12 rue des Lilas", "oui", a date) gives the model too little to
            # raise an alarm on its own: at most the question "is someone in danger now?"
            return DangerAssessment(
                immediate_danger=False,
                cancelled=tuple(cancelled),
                language=language,
                probability=probability,
                uncertain=probability >= chosen.ask_threshold and words >= MODEL_MIN_WORDS,
            )
        hinted = {r.category for r in weak} | {c for r in weak for c in r.adds_categories}
        # the numbers that fit who is named: a child adds 119, a partner 3919, an elderly
        # person 15 and 3977 (the lexicon's combinations, as for the rules)
        hinted = hinted or {_MODEL_CATEGORY}
        _combine(hinted, terms, lex, [])
        categories = tuple(c for c in lex.category_priority if c in hinted)
        return DangerAssessment(
            immediate_danger=True,
            categories=categories,
            helplines=_order_helplines(categories, lex),
            matched=(MODEL_RULE_ID,),
            cancelled=tuple(cancelled),
            language=language,
            probability=probability,
        )

    active = strong + (weak if weak_fires else [])
    matched = [r.id for r in active]
    found: set[str] = set()
    for rule in active:
        found.add(rule.category)
        found.update(rule.adds_categories)
    if agitated and weak_fires:
        matched.append(AGITATION_RULE_ID)
        found.add(_AGITATION_CATEGORY)
    _combine(found, terms, lex, matched)

    categories = tuple(c for c in lex.category_priority if c in found)
    matched_ids = tuple(dict.fromkeys(matched))
    if (
        isinstance(chosen, DangerModel)
        and chosen.veto_threshold > 0.0
        and overrulable(text, categories, present, lex)
        and chosen.known_words(text, lex.sms) >= VETO_MIN_WORDS
    ):
        probability = chosen.probability(text, lex.sms)
        if probability < chosen.veto_threshold:
            # a story the model finds very unlikely to be a danger now: ask, do not alarm
            return DangerAssessment(
                immediate_danger=False,
                cancelled=tuple(cancelled) + tuple(m + OVERRULED_SUFFIX for m in matched_ids),
                language=language,
                probability=probability,
                uncertain=True,
            )
    return DangerAssessment(
        immediate_danger=True,
        categories=categories,
        helplines=_order_helplines(categories, lex),
        matched=matched_ids,
        cancelled=tuple(cancelled),
        language=language,
    )


def _combine(found: set[str], terms: set[str], lex: Lexicon, matched: list[str]) -> None:
    """Add to ``found`` the categories of the lexicon's combinations (a child named together
    with violence: child_danger_now...), their ids to ``matched``."""
    for combo in lex.combinations:
        if combo.unless_term is not None and combo.unless_term in terms:
            continue
        if combo.term in terms and found & combo.with_categories and combo.add not in found:
            found.add(combo.add)
            matched.append(combo.id)


def overrulable(text: str, categories: tuple[str, ...], present: bool, lexicon: Lexicon) -> bool:
    """Whether the danger model may turn the rules' alarm into the question (with enough words):
    never for suicide or distress, only when the message says it is not happening now
    (:func:`said_not_now`)."""
    return not _NEVER_OVERRULED & set(categories) and said_not_now(text, present, lexicon)


def said_not_now(text: str, present: bool, lexicon: Lexicon) -> bool:
    """Whether a message says it is not happening now (a cue of :data:`NOT_NOW_CUES`: dated in
    the past, over, from a screen or a rumour, a joke, a question, a letter, something that lasts
    or repeats) and nothing says it is (``present``: the lexicon's present markers; the model's
    cues of now, of "just" and of a call for help, outside the clauses that say the present is
    settled)."""
    if present:
        return False
    found = cues(text, lexicon.sms)
    if not NOT_NOW_CUES & found:
        return False
    # the model's cues of now, read as the present markers are: not the words of time of a
    # clause that says the present is settled ("il va bien maintenant")
    clauses = _strip_idioms(normalize_clauses(text or "", lexicon.sms), lexicon)
    return not _NOW_CUES & clause_cues(_unsettled(clauses, lexicon))


def dated_in_the_past(text: str, lexicon: Lexicon | None = None) -> bool:
    """Whether a message dates what it tells in the past ("hier", "la nuit dernière", "il y a
    trois jours", "last week") and says nothing of now ("en ce moment", "vite"): the lexicon's
    past and present markers, read as :func:`assess` reads them. The report model uses it too
    ("is it happening right now?" answered no by the story), so the two never disagree."""
    lex = lexicon or default_lexicon()
    clauses = _strip_idioms(normalize_clauses(text or "", lex.sms), lex)
    return _dated(clauses, lex, _any(lex.present_markers, _unsettled(clauses, lex)))


def _unsettled(clauses: tuple[str, ...], lex: Lexicon) -> tuple[str, ...]:
    """The clauses with their plain words of time ("maintenant", "now") blanked where the clause
    says the present is settled (the lexicon's ``settled`` markers: "il va bien maintenant",
    "je vis maintenant chez ma soeur", "he's at work right now"): there they say when it is
    calm, not that a danger is happening now."""
    if not lex.settled:
        return clauses
    out = []
    for clause in clauses:
        if _any(lex.settled, (clause,)):
            for pattern in lex.now_words:
                clause = pattern.sub(" ", clause)
            clause = " ".join(clause.split())
        out.append(clause)
    return tuple(out)


def _dated(clauses: tuple[str, ...], lex: Lexicon, present: bool) -> bool:
    """Dated in the past and nothing said of now (``present``: a present marker matched)."""
    return not present and _any(lex.past_markers, clauses)


def rules_context(text: str, lexicon: Lexicon | None = None) -> tuple[DangerAssessment, bool, bool]:
    """The rules' decision alone, whether the model may overrule it, and whether the message
    says it is not happening now (for ``scripts/train_danger.py``, which measures the combined
    decision by cross-validation)."""
    lex = lexicon or default_lexicon()
    rules = assess(text, lexicon=lex, model=None)
    clauses = _strip_idioms(normalize_clauses(text or "", lex.sms), lex)
    present = _any(lex.present_markers, _unsettled(clauses, lex))
    overruled = rules.immediate_danger and overrulable(text, rules.categories, present, lex)
    return rules, overruled, said_not_now(text, present, lex)
