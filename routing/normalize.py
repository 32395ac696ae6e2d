"""Normalisation of French commune names for lookups.

The same functions build the shipped index (at import time) and normalise user queries (at run
time), so a query matches whenever it differs from the official name only by case, accents,
hyphens, apostrophes, "St"/"Ste" abbreviations, a leading article or an arrondissement ordinal.
"""

from __future__ import annotations

import re
import unicodedata

_LIGATURES = str.maketrans({"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ß": "ss"})
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_SUR = re.compile(r"(?<![a-z])s/", re.IGNORECASE)
_ORDINAL = re.compile(r"^(\d+)(?:er|re|e|eme|ieme|em|me)$")
_ABBREVIATIONS = {
    "st": "saint",
    "ste": "sainte",
    "sts": "saints",
    "stes": "saintes",
    "mt": "mont",
}
_DROPPED = frozenset({"arrondissement", "arrondissements", "arr", "arrdt", "ardt"})
ARTICLES = frozenset({"le", "la", "les", "l"})


def fold(text: str) -> str:
    """Lower-case, strip accents and turn every non-alphanumeric run into one space."""
    text = _SUR.sub(" sur ", text).translate(_LIGATURES).lower()
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return _NON_ALNUM.sub(" ", text).strip()


def tokens(text: str) -> list[str]:
    """Normalised tokens of a name: folded, abbreviations expanded, ordinals reduced."""
    result: list[str] = []
    for token in fold(text).split():
        if token in _DROPPED:
            continue
        ordinal = _ORDINAL.match(token)
        if ordinal:
            token = str(int(ordinal.group(1)))
        result.append(_ABBREVIATIONS.get(token, token))
    return result


def name_key(text: str) -> str:
    """Lookup key of a name, article kept ("Le Mans" -> "lemans")."""
    return "".join(tokens(text))


def name_key_without_article(text: str) -> str:
    """Lookup key of a name without its leading article ("Le Mans" -> "mans")."""
    parts = tokens(text)
    if len(parts) > 1 and parts[0] in ARTICLES:
        parts = parts[1:]
    return "".join(parts)


_VOWELS = frozenset("aeiouyàâäéèêëîïôöùûüœæ")


def with_de(name: str) -> str:
    """French "de" + name with elision and contraction: "de Dole", "d'Arbois", "du Mans",
    "des Rousses", "de la Pesse", "de l'Abergement"."""
    if name.startswith("Le "):
        return f"du {name[3:]}"
    if name.startswith("Les "):
        return f"des {name[4:]}"
    if name.startswith("La "):
        return f"de la {name[3:]}"
    if name.startswith("L'"):
        return f"de l'{name[2:]}"
    if name[:1].lower() in _VOWELS:
        return f"d'{name}"
    return f"de {name}"
