"""The commune-resolution policy of every channel: a name, a postal code or an INSEE code gives
one commune, a choice between several (homonyms, a postal code shared by several communes: the
citizen always chooses, nothing takes the first match), or nothing."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import routing
from routing.normalize import fold, tokens

logger = logging.getLogger(__name__)
MAX_QUERY = 120
MAX_CHOICES = 10
# words after a name that may say where it is ("dans le Jura", "en Haute-Saône", "(39)")
MAX_TAIL_WORDS = 5


@dataclass(frozen=True)
class CommuneAnswer:
    communes: tuple[routing.Commune, ...]

    @property
    def found(self) -> routing.Commune | None:
        return self.communes[0] if len(self.communes) == 1 else None

    @property
    def ambiguous(self) -> bool:
        return len(self.communes) > 1


def resolve(query: str) -> CommuneAnswer:
    """Candidates for what the citizen wrote (INSEE codes are exact). A name followed by where
    it is ("Poligny dans le Jura", "Villeneuve 04", "Lons (39)"), which the reference data does
    not hold as such, gives the communes of that name in that département; a postal code among
    other words, the communes of that code (:func:`_by_postal_code`)."""
    query = (query or "").strip()[:MAX_QUERY]
    if not query:
        return CommuneAnswer(())
    candidates = _candidates(query)
    if candidates:
        return CommuneAnswer(candidates)
    words = query.split()
    for end in range(len(words) - 1, max(0, len(words) - 1 - MAX_TAIL_WORDS), -1):
        tail = " ".join(words[end:])
        kept = tuple(c for c in _candidates(" ".join(words[:end])) if _fits(c, tail))
        if kept:
            return CommuneAnswer(kept)
    return _by_postal_code(query)


def _by_postal_code(query: str) -> CommuneAnswer:
    """A postal code among other words ("c'est Villeneuve 04180", "j'habite au 39800"): the
    communes of that code, narrowed to those the answer also names."""
    folded = " " + " ".join(tokens(query)) + " "
    for code in _POSTAL_CODE.findall(fold(query)):
        by_code = _candidates(code)
        if by_code:
            named = tuple(c for c in by_code if " " + " ".join(tokens(c.name)) + " " in folded)
            return CommuneAnswer(named or by_code)
    return CommuneAnswer(())


def _candidates(query: str) -> tuple[routing.Commune, ...]:
    try:
        return tuple(routing.get_engine().resolve_commune(query).candidates)
    except routing.RoutingError as exc:
        logger.warning("commune resolution failed: %s", type(exc).__name__)
        return ()


def resolve_among(query: str, offered: Sequence[routing.Commune]) -> CommuneAnswer:
    """:func:`resolve`, for a typed answer to homonyms offered on buttons: a commune it names
    alone wins, else a postal code or département that tells one of them apart (:func:`pick`)."""
    found = resolve(query)
    if found.found is not None:
        return found
    chosen = pick(offered, query)
    return CommuneAnswer((chosen,)) if chosen is not None else found


def narrow(answer: CommuneAnswer, others: list[CommuneAnswer]) -> CommuneAnswer:
    """An ambiguous answer narrowed by other mentions (e.g. a commune named in the text)."""
    if not answer.ambiguous:
        return answer
    wanted = {c.insee for c in answer.communes}
    for other in others:
        kept = tuple(c for c in other.communes if c.insee in wanted)
        if len(kept) == 1:
            return CommuneAnswer(kept)
    return answer


_POSTAL_CODE = re.compile(r"\b(\d{5})\b")
_DEPARTEMENT_NUMBER = re.compile(r"\b(\d{2,3}|2a|2b)\b")


def pick(offered: Sequence[routing.Commune], text: str) -> routing.Commune | None:
    """The commune among those offered on buttons (homonyms) that a typed answer tells apart
    instead of a tap: its postal code ("39800"), its département's number ("celle du 39", "dans
    le 05") or name ("dans le Jura", "Hautes-Alpes"). None when the answer fits none of them or
    several."""
    if len(offered) < 2 or not text:
        return None
    fitting = [commune for commune in offered if _fits(commune, text)]
    return fitting[0] if len(fitting) == 1 else None


def _fits(commune: routing.Commune, text: str) -> bool:
    """Whether a text names the commune's postal code, its département's number or name."""
    folded = " " + " ".join(tokens(text[:MAX_QUERY])) + " "
    raw = fold(text[:MAX_QUERY])
    name = routing.get_engine().departements.get(commune.departement, "")
    told = " " + " ".join(tokens(name)) + " " if name else None
    return (
        any(code in commune.postal_codes for code in _POSTAL_CODE.findall(raw))
        or commune.departement.lower() in _DEPARTEMENT_NUMBER.findall(raw)
        or (told is not None and told in folded)
    )


def button_title(commune: routing.Commune) -> str:
    """How a commune is shown on a choice button: name (département, first postal code)."""
    postal = f", {commune.postal_codes[0]}" if commune.postal_codes else ""
    return f"{commune.name} ({commune.departement}{postal})"


def display_name(commune: routing.Commune) -> str:
    return f"{commune.name} ({commune.departement})"
