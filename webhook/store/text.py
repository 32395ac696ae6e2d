"""Text as the database can keep it.

PostgreSQL refuses a NUL character in a text column, and neither PostgreSQL nor SQLite can store
a lone UTF-16 surrogate (JSON allows ``"\\u0000"`` and ``"\\ud800"``): written as they came, they
make the write fail with a server error. Every free text written by an API (agencies' notes and
answers, report fields from the action server, dashboard forms) goes through :func:`storable`.
"""

from __future__ import annotations

import unicodedata

KEPT_CONTROLS = frozenset("\n\t")


def storable(value: str) -> str:
    """``value`` without control characters (newlines and tabs kept) or lone surrogates."""
    if value.isprintable():
        return value
    return "".join(
        ch for ch in value if ch in KEPT_CONTROLS or unicodedata.category(ch) not in ("Cc", "Cs")
    )
