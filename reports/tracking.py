"""Tracking codes: the unguessable secret a citizen is given when a report is filed.

The readable reference (``04-2026-000123``) is sequential: anyone can guess the next one, so it
never opens a ticket to a citizen on its own. The tracking code does: 12 characters of
Crockford's base32 (60 random bits), shown as ``K7QM-4XPA-9HWT``. A citizen follows a report
from the conversation that filed it, or from anywhere with its tracking code.

Typed codes are read leniently (case, spaces or dashes between the groups, ``O`` for ``0``,
``I``/``L`` for ``1``), as Crockford's alphabet intends. One format for every reader (gateway,
action server).
"""

from __future__ import annotations

import re
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
GROUPS = 3
GROUP_CHARS = 4
LENGTH = GROUPS * GROUP_CHARS
DIGITS = ALPHABET[:10]
# Inside a sentence: three groups of four, separated by a dash or a space; every group of a code
# has a digit, so words ("code pour cela", "signalements") are never taken for one. Lookahead:
# candidates may overlap ("code K7QM 4XPA 9HWT").
_CHAR = "[0-9A-Za-z]"
SEARCH_RE = re.compile(
    rf"(?<![0-9A-Za-z-])(?=({_CHAR}{{4}})[- ]({_CHAR}{{4}})[- ]({_CHAR}{{4}})(?![0-9A-Za-z-]))"
)
_TRANSLATE = str.maketrans({"O": "0", "I": "1", "L": "1"})


def _group() -> str:
    while True:
        group = "".join(secrets.choice(ALPHABET) for _ in range(GROUP_CHARS))
        if any(ch in DIGITS for ch in group):
            return group


def new_code() -> str:
    """A fresh code, normalised (12 characters, no dashes): about 59 random bits (each group of
    four holds at least one digit)."""
    return "".join(_group() for _ in range(GROUPS))


def normalise(value: str) -> str | None:
    """The stored form of a typed code, or None when it cannot be one."""
    compact = re.sub(r"[\s-]", "", value or "").upper().translate(_TRANSLATE)
    if len(compact) != LENGTH or any(ch not in ALPHABET for ch in compact):
        return None
    return compact


def normalise_group(value: str) -> str | None:
    group = value.upper().translate(_TRANSLATE)
    return group if all(ch in ALPHABET for ch in group) else None


def display(code: str) -> str:
    """``K7QM4XPA9HWT`` → ``K7QM-4XPA-9HWT``."""
    return "-".join(code[i : i + GROUP_CHARS] for i in range(0, len(code), GROUP_CHARS))


def find(text: str) -> str | None:
    """The first tracking code written in ``text``, normalised, or None."""
    for match in SEARCH_RE.finditer(text or ""):
        raw = match.groups()
        groups = [normalise_group(g) for g in raw]
        # every group as typed has a digit ("code" is a word, even if O reads as 0); a
        # reference such as 04-2026-000123 (groups of 2-4-6) never matches; digits only
        # ("0612 3456 7890") are a phone number or an IBAN, not a code
        if all(any(ch.isdigit() for ch in g) for g in raw) and None not in groups:
            code = "".join(g for g in groups if g is not None)
            if any(ch not in DIGITS for ch in code):
                return code
    return None
