"""The danger model beside the rules (safety/danger_model.py, scripts/train_danger.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from safety import assess
from safety.danger_model import MODEL_FILE, data_fingerprint, default_model, features

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "nlu_data" / "residents"


def test_the_shipped_model_was_trained_on_the_current_corpus() -> None:
    """A corpus changed without retraining (scripts/train_danger.py) is caught here."""
    assert default_model().fingerprint == data_fingerprint(CORPUS.glob("*.jsonl")), (
        f"{MODEL_FILE.name} is stale: run .venv-rasa/bin/python scripts/train_danger.py"
    )


def test_thresholds_were_chosen_for_recall_by_cross_validation() -> None:
    model = default_model()
    assert 0 < model.ask_threshold <= model.threshold < 1
    # recall first: the cross-validated recall of rules + model at the threshold
    assert model.figures["cv_recall"] >= 0.95
    assert model.figures["cv_recall"] > model.figures["cv_rules_recall"]


# Written for this test (not in the training corpus, not from the evaluation sets): danger told
# without the words the rules look for.
WITHOUT_KEYWORDS = [
    "il vient de sortir un truc brillant de sa poche et il avance vers ma fille",
    "mon frère a avalé toute la boîte de ses cachets il y a dix minutes",
    "la fumée passe sous la porte du voisin et personne ne sort",
]


@pytest.mark.parametrize("message", WITHOUT_KEYWORDS)
def test_danger_told_without_keywords_is_caught_by_the_model(message: str) -> None:
    assert not assess(message, model=None).immediate_danger  # the rules alone miss it
    result = assess(message)
    assert result.immediate_danger, result
    assert result.matched == ("danger_model",)
    assert result.helplines[:2] == ("17", "112")  # a call for help when no rule says more


CALM = [
    "Bonjour, je voudrais savoir quand passe la collecte des encombrants dans ma rue",
    "je pars en vacances du 3 au 17 août, pouvez-vous surveiller ma maison",
]


@pytest.mark.parametrize("message", CALM)
def test_calm_messages_stay_calm(message: str) -> None:
    result = assess(message)
    assert not result.immediate_danger and not result.uncertain, result
    assert result.probability is not None and result.probability < default_model().ask_threshold


def test_features_are_stable_and_normalised() -> None:
    a = features("Il a un COUTEAU !!")
    b = features("il a un couteau !!")
    assert set(b) < set(a) and len(a) == len(b) + 1  # capitals add one shape cue, nothing else
    norm = sum(v * v for v in a.values())
    assert abs(norm - 1.0) < 1e-9
    assert features("") == features("   ")
