"""Commune resolution from a name, a postal code or an INSEE code."""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping
from typing import Literal

from routing.models import Commune, Resolution, ResolutionStatus
from routing.normalize import name_key, name_key_without_article, tokens

Codes = str | list[str]
QueryKind = Literal["auto", "insee", "postal_code", "name"]
MIN_PREFIX = 4
MAX_PREFIX_CANDIDATES = 8
MAX_NAMESAKES = 3
_CODE = re.compile(r"^(?:\d{5}|2[AaBb]\d{3})$")
_CODE_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])(\d{5}|2[AaBb]\d{3})(?![0-9A-Za-z])")


def codes(value: Codes | None) -> list[str]:
    """Codes of an index entry (one code is stored as a plain string)."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


class CommuneResolver:
    """Resolves free text to communes using the precomputed indexes of the reference data."""

    def __init__(
        self,
        *,
        communes: Mapping[str, Commune],
        aliases: Mapping[str, str],
        names: Mapping[str, Codes],
        names_noart: Mapping[str, Codes],
        former_names: Mapping[str, Codes],
        former_names_noart: Mapping[str, Codes],
        postal: Mapping[str, Codes],
        departements: Mapping[str, str],
    ) -> None:
        self._communes = communes
        self._aliases = aliases
        self._names = names
        self._names_noart = names_noart
        self._former = former_names
        self._former_noart = former_names_noart
        self._postal = postal
        self._sorted_keys: list[str] | None = None
        self._departement_keys: dict[str, str] = {}
        for code, name in departements.items():
            self._departement_keys[code.lower()] = code
            self._departement_keys[name_key(name)] = code

    # ------------------------------------------------------------------ public

    def resolve(self, query: str, kind: QueryKind = "auto") -> Resolution:
        """Resolve ``query``; ``kind`` restricts how it is read ("auto": all ways).

        A 5-character code is read as an INSEE code and as a postal code ("39300" is both
        Lons-le-Saunier's INSEE code and Champagnole's postal code): all matches are returned,
        the INSEE match first. Text may carry a postal code or a département ("Saint-Claude
        (39)", "Sainte-Colombe, Jura"). Without an exact match, names starting with the query
        are returned (matched_by "name_prefix") when they are few.
        """
        text = query.strip()
        if kind != "auto" and kind not in ("insee", "postal_code", "name"):
            raise ValueError(f"unknown query kind: {kind!r}")
        if kind in ("insee", "postal_code"):
            return self._result(query, self._by_code(text.upper(), kind))
        if kind == "auto" and _CODE.match(text):
            return self._result(query, self._by_code(text.upper()))
        codes = [c.upper() for c in _CODE_IN_TEXT.findall(text)]
        rest = _CODE_IN_TEXT.sub(" ", text).strip(" ,;-()")
        matches = self._by_name(rest) if rest else []
        departement = None
        if not matches and rest:
            rest, departement = self._split_departement(rest)
            if departement is not None:
                matches = [
                    m
                    for m in self._by_name(rest)
                    if self._communes[m[0]].departement == departement
                ]
        if codes:
            coded = [m for code in codes for m in self._by_code(code)]
            if not matches:
                return self._result(query, coded if not rest else [])
            wanted = {insee for insee, _ in matches}
            narrowed = [
                m for m in coded if m[0] in wanted or self._communes[m[0]].parent_insee in wanted
            ]
            if narrowed:
                return self._result(query, narrowed)
        return self._result(query, matches)

    # ------------------------------------------------------------------ helpers

    def _by_code(self, code: str, kind: QueryKind = "auto") -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        if kind in ("auto", "insee") and code in self._communes:
            found.append((code, "insee"))
        if kind in ("auto", "postal_code"):
            found.extend((insee, "postal_code") for insee in codes(self._postal.get(code)))
        if not found and kind in ("auto", "insee") and code in self._aliases:
            # Former codes last: old Seine codes (75xxx) collide with Paris postal codes.
            found.append((self._aliases[code], "former_insee"))
        return found

    def _by_name(self, text: str) -> list[tuple[str, str]]:
        key = name_key(text)
        if not key:
            return []
        current = codes(self._names.get(key))
        former = codes(self._former.get(key))
        bare = name_key_without_article(text)
        if bare == key:
            # No article typed: "Rousses" is Rousses (48) but may be Les Rousses (39).
            current += [i for i in codes(self._names_noart.get(key)) if i not in current]
            former += [i for i in codes(self._former_noart.get(key)) if i not in former]
        elif not current and not former:
            # An article the official name lacks: "La Dole" -> Dole; or "Le Mans" written
            # with the article of another spelling.
            current = codes(self._names_noart.get(bare)) + codes(self._names.get(bare))
            former = codes(self._former_noart.get(bare)) + codes(self._former.get(bare))
        if not current and not former:
            return [(i, "name_prefix") for i in self._by_prefix(key)]
        current.sort(key=self._popularity)
        former.sort(key=self._popularity)
        larger = [
            (i, "name_prefix") for i in self._larger_namesakes(text, current) if i not in former
        ]
        return [(i, "name") for i in current] + [(i, "former_name") for i in former] + larger

    def _larger_namesakes(self, text: str, exact: list[str]) -> list[str]:
        """Larger communes whose name begins with the words of a name that matched exactly:
        "Lons" is Lons (64) and what Jura residents call Lons-le-Saunier (39), "Aix" is Aix (19)
        and Aix-en-Provence: the citizen chooses (at most :data:`MAX_NAMESAKES`)."""
        words = tokens(text)
        if not exact or not words:
            return []
        floor = max(self._communes[i].population or 0 for i in exact)
        if self._sorted_keys is None:
            self._sorted_keys = sorted(self._names)
        keys = self._sorted_keys
        key = "".join(words)
        found: list[str] = []
        index = bisect.bisect_left(keys, key)
        while index < len(keys) and keys[index].startswith(key):
            for insee in codes(self._names[keys[index]]):
                commune = self._communes[insee]
                if (
                    insee not in exact
                    and insee not in found
                    and (commune.population or 0) > floor
                    and tokens(commune.name)[: len(words)] == words
                    and len(tokens(commune.name)) > len(words)
                ):
                    found.append(insee)
            index += 1
        found.sort(key=self._popularity)
        return found[:MAX_NAMESAKES]

    def _by_prefix(self, key: str) -> list[str]:
        """Communes whose name starts with ``key`` ("Digne" -> Digne-les-Bains), if few."""
        if len(key) < MIN_PREFIX:
            return []
        if self._sorted_keys is None:
            self._sorted_keys = sorted(self._names)
        keys = self._sorted_keys
        found: list[str] = []
        index = bisect.bisect_left(keys, key)
        while index < len(keys) and keys[index].startswith(key):
            found.extend(i for i in codes(self._names[keys[index]]) if i not in found)
            if len(found) > MAX_PREFIX_CANDIDATES:
                return []
            index += 1
        found.sort(key=self._popularity)
        return found

    def _popularity(self, insee: str) -> tuple[int, str]:
        return (-(self._communes[insee].population or 0), insee)

    def _split_departement(self, text: str) -> tuple[str, str | None]:
        """Split a trailing département hint: "Saint-Claude (39)", "Sainte-Colombe, Jura"."""
        parts = tokens(text)
        for cut in range(len(parts) - 1, 0, -1):
            code = self._departement_keys.get("".join(parts[cut:]))
            if code is not None:
                return " ".join(parts[:cut]), code
        return text, None

    def _result(self, query: str, matches: list[tuple[str, str]]) -> Resolution:
        seen: dict[str, str] = {}
        for insee, how in matches:
            seen.setdefault(insee, how)
        candidates = [self._communes[i] for i in seen]
        status: ResolutionStatus = (
            "not_found" if not candidates else "found" if len(candidates) == 1 else "ambiguous"
        )
        return Resolution(
            query=query, status=status, candidates=candidates, matched_by=list(seen.values())
        )
