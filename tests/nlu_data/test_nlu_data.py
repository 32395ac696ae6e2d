"""Consistency checks of the NLU training and held-out test data (nlu_data/)."""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
import yaml

import routing

NLU_DIR = Path(__file__).resolve().parents[2] / "nlu_data"
TRAIN_DIR = NLU_DIR / "train"
TEST_DIR = NLU_DIR / "test"

# Report intents are the report type ids of SPEC §2, as the routing package defines them.
REPORT_INTENTS = tuple(routing.REPORT_TYPES)
OTHER_INTENTS = (
    "greet",
    "goodbye",
    "affirm",
    "deny",
    "thank",
    "aide_menu",
    "statut_ticket",
    "annuler",
    "parler_humain",
    "inform",
    "hors_sujet",
    "corriger",
    "demande_rappel",
)
ENTITIES = {"commune", "date", "victime", "age", "telephone", "iban", "url"}
ROLES = {"date": {"depart", "retour"}}
MIN_TRAIN_FR_REPORT = 60
MIN_TRAIN_EN_REPORT = 10
MIN_TRAIN_OTHER = 25
MIN_TEST_REPORT = 15
MIN_TEST_OTHER = 8

ANNOTATION = re.compile(r"\[(?P<text>[^\]]+)\](?:\((?P<short>[^)]+)\)|\{(?P<json>[^}]+)\})")


def _load(path: Path) -> dict:
    with path.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    assert data.get("version") == "3.1", f'{path.name}: version must be "3.1"'
    return data


def _examples(directory: Path) -> dict[str, list[tuple[str, str]]]:
    """intent -> [(file name, raw example)] for every nlu file of a directory."""
    result: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(directory.glob("*.yml")):
        for item in _load(path).get("nlu", []):
            if "intent" not in item:
                continue
            lines = [ln.strip() for ln in item["examples"].splitlines() if ln.strip()]
            assert all(ln.startswith("- ") for ln in lines), f"{path.name}: bad example line"
            result.setdefault(item["intent"], []).extend((path.name, ln[2:]) for ln in lines)
    return result


def plain_text(example: str) -> str:
    """The example without entity annotations."""
    return ANNOTATION.sub(lambda m: m.group("text"), example)


def normalise(text: str) -> str:
    """Lowercase, no accents, no punctuation, single spaces."""
    folded = unicodedata.normalize("NFKD", plain_text(text).lower())
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return " ".join(re.sub(r"[^a-z0-9]+", " ", folded).split())


def entities(example: str) -> list[tuple[str, str, str | None]]:
    """[(text, entity, role)] of an example; raises on a malformed annotation."""
    found: list[tuple[str, str, str | None]] = []
    for match in ANNOTATION.finditer(example):
        if match.group("short"):
            found.append((match.group("text"), match.group("short"), None))
        else:
            spec = json.loads("{" + match.group("json") + "}")
            found.append((match.group("text"), spec["entity"], spec.get("role")))
    leftover = ANNOTATION.sub("", example)
    assert "](" not in leftover and "]{" not in leftover, f"unparsed annotation in {example!r}"
    return found


TRAIN = _examples(TRAIN_DIR)
TEST = _examples(TEST_DIR)


def test_intents_are_exactly_the_spec_ones() -> None:
    assert set(TRAIN) == set(REPORT_INTENTS) | set(OTHER_INTENTS)
    assert set(TEST) <= set(TRAIN), "every test intent must exist in train"
    assert set(TEST) == set(TRAIN), "every intent must have held-out examples"


@pytest.mark.parametrize("intent", REPORT_INTENTS)
def test_report_intent_train_counts(intent: str) -> None:
    by_file = Counter(name for name, _ in TRAIN[intent])
    assert by_file["reports_fr.yml"] >= MIN_TRAIN_FR_REPORT, by_file
    assert by_file["reports_en.yml"] >= MIN_TRAIN_EN_REPORT, by_file


@pytest.mark.parametrize("intent", OTHER_INTENTS)
def test_other_intent_train_counts(intent: str) -> None:
    assert len(TRAIN[intent]) >= MIN_TRAIN_OTHER


@pytest.mark.parametrize("intent", REPORT_INTENTS + OTHER_INTENTS)
def test_test_split_counts(intent: str) -> None:
    minimum = MIN_TEST_REPORT if intent in REPORT_INTENTS else MIN_TEST_OTHER
    assert len(TEST[intent]) >= minimum


def test_no_test_example_in_train() -> None:
    train_norm = {normalise(ex) for items in TRAIN.values() for _, ex in items}
    leaked = [ex for items in TEST.values() for _, ex in items if normalise(ex) in train_norm]
    assert not leaked, leaked


def test_no_duplicates_across_intents() -> None:
    seen: dict[str, str] = {}
    clashes = []
    for intent, items in TRAIN.items():
        for _, ex in items:
            key = normalise(ex)
            if key in seen and seen[key] != intent:
                clashes.append((ex, seen[key], intent))
            seen.setdefault(key, intent)
    assert not clashes, clashes


@pytest.mark.parametrize("split", ["train", "test"])
def test_entity_annotations_parse(split: str) -> None:
    data = TRAIN if split == "train" else TEST
    for items in data.values():
        for _, example in items:
            for text, entity, role in entities(example):
                assert text.strip() == text and text, example
                assert entity in ENTITIES, (entity, example)
                if role is not None:
                    assert role in ROLES.get(entity, set()), (role, example)


def _regexes() -> dict[str, list[re.Pattern[str]]]:
    data = _load(TRAIN_DIR / "regex_synonyms.yml")
    return {
        item["regex"]: [
            re.compile(ln.strip()[2:]) for ln in item["examples"].splitlines() if ln.strip()
        ]
        for item in data["nlu"]
        if "regex" in item
    }


def test_regexes_compile_and_cover_annotated_traces() -> None:
    regexes = _regexes()
    assert set(regexes) == {"telephone", "iban", "url"}
    for items in list(TRAIN.values()) + list(TEST.values()):
        for _, example in items:
            for text, entity, _ in entities(example):
                if entity in regexes:
                    assert any(p.search(text) for p in regexes[entity]), (entity, text)


def test_traces_are_fictitious() -> None:
    """Phone numbers and IBANs are zero-filled, URLs use the reserved .example domain."""
    for items in list(TRAIN.values()) + list(TEST.values()):
        for _, example in items:
            for text, entity, _ in entities(example):
                digits = re.sub(r"\D", "", text)
                if entity == "telephone":
                    assert "000000" in digits, text
                elif entity == "iban":
                    assert digits.count("0") >= len(digits) - 3, text
                elif entity == "url":
                    assert ".example" in text, text


def test_synonyms_have_no_conflicts() -> None:
    data = _load(TRAIN_DIR / "regex_synonyms.yml")
    owner: dict[str, str] = {}
    for item in data["nlu"]:
        if "synonym" in item:
            for line in item["examples"].splitlines():
                phrase = line.strip()[2:].lower()
                if phrase:
                    assert owner.setdefault(phrase, item["synonym"]) == item["synonym"], phrase
    assert set(owner.values()) == {"enfant", "senior", "moi"}


def test_training_file_names_are_not_test_stories() -> None:
    assert not [p.name for p in TRAIN_DIR.glob("*.yml") if p.name.startswith("test_")]
