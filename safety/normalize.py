"""Text normalisation shared by the danger detector and its lexicon.

The same function is applied to the user's message and to the literal parts of the
lexicon's patterns, so both sides always meet in the same form:

* lowercase, accents stripped (``é`` → ``e``, ``ß`` → ``ss``, ``œ`` → ``oe``); the SOS emoji
  read as the word ``sos``; markup tags (and what a ``<script>`` holds) removed;
* apostrophes and punctuation become spaces; a message is split into clauses on
  ``. ! ? ; :`` and line breaks (commas do not split: "mon père, il frappe ma mère");
* English contractions ``doesn't`` → ``does not``;
* SMS spellings expanded token by token from the lexicon (``jvais`` → ``je vais``,
  ``ya`` → ``il y a``, ``tt`` → ``tout``);
* runs of the same letter squeezed to one (``au secouuurs`` → ``au secours``,
  ``frappe`` → ``frape``): patterns are squeezed the same way when the lexicon loads.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

_SPECIAL_LETTERS = str.maketrans({"ß": "ss", "œ": "oe", "æ": "ae", "ø": "o", "ł": "l", "đ": "d"})
# symbols that are words: the SOS button emoji is a cry for help like "SOS"
_SYMBOL_WORDS = str.maketrans({"\U0001f198": " sos "})
# markup pasted or typed as a test ("<script>alert(1)</script>"): code, not the citizen's words
_MARKUP = re.compile(
    r"<(script|style)\b[^>]*>.*?</\1\s*>|</?[a-zA-Z][a-zA-Z0-9-]*(\s[^<>]{0,200})?/?>",
    re.IGNORECASE | re.DOTALL,
)
_CLAUSE_SPLIT = re.compile(r"[.!?;:\n\r\u2026\u00a1\u00bf]+")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_SQUEEZE_TEXT = re.compile(r"([a-z])\1+")
# In a regex source, do not squeeze a letter that follows a backslash (\b, \s, \w ...).
_SQUEEZE_PATTERN = re.compile(r"(?<!\\)([a-z])\1+")
_CONTRACTION = re.compile(
    r"\b(do|does|did|is|are|was|were|ca|wo|have|has|had|could|would|should)n t\b"
)


def fold(text: str) -> str:
    """Lowercase and strip accents; nothing else."""
    decomposed = unicodedata.normalize("NFKD", text.lower().translate(_SPECIAL_LETTERS))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def squeeze(text: str) -> str:
    """Collapse runs of one repeated letter: ``secouuurs`` → ``secours``."""
    return _SQUEEZE_TEXT.sub(r"\1", text)


def squeeze_pattern(pattern: str) -> str:
    """Squeeze the literal letters of a regex source, leaving escapes such as ``\\b`` alone."""
    return _SQUEEZE_PATTERN.sub(r"\1", pattern)


def _expand_tokens(clause: str, sms: Mapping[str, str]) -> str:
    words: list[str] = []
    for token in clause.split():
        replacement = sms.get(token)
        if replacement is None:
            replacement = sms.get(squeeze(token), token)
        words.append(replacement)
    return " ".join(words)


def normalize_clauses(text: str, sms: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Return the normalised, non-empty clauses of ``text`` (see the module docstring)."""
    sms = sms or {}
    folded = fold(_MARKUP.sub(" ", text).translate(_SYMBOL_WORDS))
    clauses: list[str] = []
    for raw in _CLAUSE_SPLIT.split(folded):
        clause = _NON_ALNUM.sub(" ", raw).strip()
        if not clause:
            continue
        clause = _CONTRACTION.sub(r"\1 not", clause)
        clause = _expand_tokens(clause, sms)
        clause = _CONTRACTION.sub(r"\1 not", clause)
        clause = squeeze(clause)
        clauses.append(clause)
    return tuple(clauses)


def normalize_literal(text: str) -> str:
    """Normalise a lexicon phrase (no SMS expansion, no clause split)."""
    return squeeze(_NON_ALNUM.sub(" ", fold(text)).strip())
