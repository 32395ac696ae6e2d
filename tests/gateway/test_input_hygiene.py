"""Typed text is cleaned before anything else sees it (pure function of the gateway)."""

from __future__ import annotations

import pytest

from webhook.conversation.turn import clean_text, clean_typed_text


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
def test_clean_typed_text(raw: str, expected: str) -> None:
    assert clean_typed_text(raw) == expected


def test_payloads_keep_their_slash() -> None:
    assert clean_text('/choisir_commune{"commune_insee":"insee:39478"}').startswith("/")
