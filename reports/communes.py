"""The commune-resolution policy of every channel: a name, a postal code or an INSEE code gives
one commune, a choice between several (homonyms, a postal code shared by several communes: the
citizen always chooses, nothing takes the first match), or nothing."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import routing

logger = logging.getLogger(__name__)
MAX_QUERY = 120
MAX_CHOICES = 10


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
    """Candidates for what the citizen wrote (INSEE codes are exact)."""
    query = (query or "").strip()[:MAX_QUERY]
    if not query:
        return CommuneAnswer(())
    engine = routing.get_engine()
    try:
        candidates = tuple(engine.resolve_commune(query).candidates)
    except routing.RoutingError as exc:
        logger.warning("commune resolution failed: %s", type(exc).__name__)
        return CommuneAnswer(())
    return CommuneAnswer(candidates)


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


def button_title(commune: routing.Commune) -> str:
    """How a commune is shown on a choice button: name (département, first postal code)."""
    postal = f", {commune.postal_codes[0]}" if commune.postal_codes else ""
    return f"{commune.name} ({commune.departement}{postal})"


def display_name(commune: routing.Commune) -> str:
    return f"{commune.name} ({commune.departement})"
