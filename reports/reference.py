"""Ticket references: ``DD-YYYY-NNNNNN`` (département, year, sequence), e.g. ``04-2026-000123``.

One pattern for every reader (chat, guided mode, Open311, agency API).
"""

from __future__ import annotations

import re

# Département codes: two digits, 2A/2B (Corsica), three digits (overseas), FR (no commune).
PATTERN = r"(?:\d{2,3}|2A|2B|FR)-\d{4}-\d{6}"
FULL_RE = re.compile(rf"^{PATTERN}$")
# Inside a sentence, in any case ("où en est 04-2026-000011 ?").
SEARCH_RE = re.compile(r"\b(\d{2,3}|2[ab]|fr)-(\d{4})-(\d{6})\b", re.IGNORECASE)


def find(text: str) -> str | None:
    """The first reference written in ``text``, normalised (upper case), or None."""
    match = SEARCH_RE.search(text or "")
    if not match:
        return None
    return f"{match.group(1).upper()}-{match.group(2)}-{match.group(3)}"


def is_reference(value: str) -> bool:
    return bool(FULL_RE.match(value or ""))
