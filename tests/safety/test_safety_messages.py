"""Emergency reply templates and helplines: numbers checked against the shared reference file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from safety import (
    SUPPORTED_LANGUAGES,
    SafetyDataError,
    assess,
    default_lexicon,
    emergency_message,
    load_helplines,
    parse_lexicon,
)

SHARED_HELPLINES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "helplines.yaml"

CASES = {
    "police": ("il a un couteau", ("17", "112", "114")),
    "suicidal": ("je veux en finir", ("3114", "15", "112")),
    "child": ("les voisins frappent leur enfant en ce moment", ("17", "119")),
    "domestic": ("mon mari me frappe", ("17", "3919")),
    "elder": ("ma voisine de 90 ans est tombée et ne répond plus", ("15", "18", "3977")),
}


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_message_lists_every_number_first(language: str, case: str) -> None:
    text, numbers = CASES[case]
    assessment = assess(text, language)
    reply = emergency_message(assessment, language)
    body = reply["text"]
    for number in numbers:
        assert f"• {number}" in body, (language, number, body)
    # numbers come before the offer to continue
    last_number = max(body.index(f"• {n}") for n in assessment.helplines)
    assert last_number < len(body.split("\n\n")[0]) + 1
    # it ends on a statement, not a question: the report's next question follows in the same
    # reply, and the citizen's "oui" must answer that one alone
    assert reply["buttons"] == []
    assert not body.rstrip().endswith("?") and "¿" not in body.split("\n")[-1], body


def test_helpline_order_is_kept_in_the_text() -> None:
    assessment = assess("je veux en finir")
    body = emergency_message(assessment, "fr")["text"]
    positions = [body.index(f"• {n}") for n in assessment.helplines]
    assert positions == sorted(positions)
    assert "(SMS)" not in body
    assert "114 (SMS)" in emergency_message(assess("au secours"), "fr")["text"]


def test_unknown_language_falls_back_to_french() -> None:
    reply = emergency_message(assess("au secours"), "pt")
    assert reply == emergency_message(assess("au secours"), "fr")


def test_no_danger_assessment_still_gets_police_numbers() -> None:
    reply = emergency_message(assess("bonjour"), "en")
    assert "• 17" in reply["text"] and "• 112" in reply["text"]


def test_every_lexicon_helpline_exists() -> None:
    assert default_lexicon().helpline_ids() <= set(load_helplines())


def test_numbers_match_the_shared_reference_file() -> None:
    with SHARED_HELPLINES.open(encoding="utf-8") as handle:
        shared = {e["id"]: e for e in yaml.safe_load(handle)["entrees"]}
    for line_id, line in load_helplines().items():
        assert line_id in shared, line_id
        assert line.number == shared[line_id]["numero_ou_service"], line_id
        assert line.purpose == shared[line_id]["finalite"], line_id
        shared_urls = {s["url"] for s in shared[line_id]["sources"]}
        assert set(line.sources) <= shared_urls, line_id


def test_lexicon_rejects_invalid_patterns() -> None:
    path = Path(__file__).resolve().parents[2] / "safety" / "lexicon.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["rules"][0]["patterns"] = ["Au Secours"]
    with pytest.raises(SafetyDataError):
        parse_lexicon(data)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["rules"].append(dict(data["rules"][0]))
    with pytest.raises(SafetyDataError, match="duplicate"):
        parse_lexicon(data)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["rules"][0]["category"] = "unknown"
    with pytest.raises(SafetyDataError):
        parse_lexicon(data)


def test_package_does_not_import_rasa() -> None:
    root = Path(__file__).resolve().parents[2] / "safety"
    for source in root.glob("*.py"):
        text = source.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(import|from)\s+rasa", text, re.MULTILINE), source.name


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_helpline_lines_list_only_the_lines_asked(language: str) -> None:
    from safety.messages import helpline_lines

    body = helpline_lines(["119", "3919"], language)
    assert "• 119" in body and "• 3919" in body
    assert "• 17 " not in body and "• 112" not in body
    assert helpline_lines([], language) == ""
