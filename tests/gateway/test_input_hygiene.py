"""Typed text is cleaned before anything else sees it (pure function of the gateway)."""

from __future__ import annotations

import pytest

from webhook.conversation import clean_text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/affirm", "affirm"),
        ('/inform{"reponse":"oui"}', 'inform{"reponse":"oui"}'),
        ("//annuler", "annuler"),
        ("  bonjour  ", "bonjour"),
        ("a\u202eb", "ab"),  # bidi override removed
        ("du bruit 🎉 la nuit", "du bruit 🎉 la nuit"),
        ("<script>alert(1)</script>", "<script>alert(1)</script>"),
        ("ligne 1\r\nligne 2", "ligne 1\nligne 2"),
    ],
)
def test_clean_text(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected
