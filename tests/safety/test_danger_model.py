"""The danger model beside the rules (safety/danger_model.py, scripts/train_danger.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from safety import assess, dated_in_the_past
from safety.danger_model import (
    FEATURES_VERSION,
    MODEL_FILE,
    data_fingerprint,
    default_model,
    features,
    parse_model,
)
from safety.errors import SafetyDataError

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
    # the combined decision (safety.assess on each fold) alarms less than "rules OR model" at the
    # same recall target: the veto pays for itself by cross-validation
    assert 0 < model.veto_threshold < model.threshold
    assert model.figures["cv_false_alarms"] < model.figures["cv_or_false_alarms"]
    assert model.figures["cv_ask_recall"] >= model.figures["cv_recall"]


def test_a_model_trained_on_other_features_or_with_thresholds_out_of_order_is_refused() -> None:
    data = json.loads(MODEL_FILE.read_text(encoding="utf-8"))
    with pytest.raises(SafetyDataError, match="version"):
        parse_model({**data, "version": FEATURES_VERSION - 1})
    with pytest.raises(SafetyDataError, match="veto_threshold"):
        parse_model({**data, "veto_threshold": data["threshold"]})
    assert parse_model(data).veto_threshold == data["veto_threshold"]
    with pytest.raises(SafetyDataError, match="not_now_threshold"):
        parse_model({**data, "not_now_threshold": data["threshold"] / 2})
    assert parse_model(data).not_now_threshold == data["not_now_threshold"]


# the model alone, on a message that says it is not happening now (safety.said_not_now): it needs
# the higher threshold, and below it the citizen is asked (written for this test)
SAID_NOT_NOW = (
    "Il y a trois semaines un homme bizarre tournait autour de l'école de mon fils pendant la"
    " récréation, je voudrais savoir si d'autres parents l'ont signalé"
)
SAID_NOW = (
    "Un homme bizarre tourne autour de l'école de mon fils en ce moment pendant la récréation"
)


def test_a_message_that_says_it_is_not_now_needs_the_higher_threshold() -> None:
    shipped = default_model()
    assert shipped.threshold < shipped.not_now_threshold < 1
    assert shipped.threshold_for(True) == shipped.not_now_threshold
    assert shipped.threshold_for(False) == shipped.threshold
    # a model that alarms on almost anything, except on what says it is not now
    strict_later = replace(shipped, threshold=1e-9, ask_threshold=1e-9, not_now_threshold=0.999)
    assert not assess(SAID_NOT_NOW, model=None).immediate_danger
    later = assess(SAID_NOT_NOW, model=strict_later)
    assert not later.immediate_danger and later.uncertain, later
    now = assess(SAID_NOW, model=strict_later)
    assert now.immediate_danger and now.matched == ("danger_model",), now
    # without a second threshold (0: off), the first one decides for every message
    assert assess(SAID_NOT_NOW, model=replace(strict_later, not_now_threshold=0.0)).immediate_danger


# Written for this test (not in the training corpus, not from the evaluation sets): danger told
# without the words the rules look for.
WITHOUT_KEYWORDS = [
    "il vient de sortir un truc brillant de sa poche et il avance vers ma fille",
    "mon frère a avalé un produit ménager il y a dix minutes, il vomit",
    "la fumée passe sous la porte du voisin et personne ne sort",
]


@pytest.mark.parametrize("message", WITHOUT_KEYWORDS)
def test_danger_told_without_keywords_is_caught_by_the_model(message: str) -> None:
    assert not assess(message, model=None).immediate_danger  # the rules alone miss it
    result = assess(message)
    assert result.immediate_danger, result
    assert result.matched == ("danger_model",)
    assert result.helplines[:2] == ("17", "112")  # a call for help when no rule says more
    # who is named adds the line that fits (the lexicon's combinations): "ma fille" adds 119
    assert ("119" in result.helplines) is ("fille" in message)


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


# Written for this test: long stories the rules flag, that say nothing of "now".
STORY_PAST = (
    "L'hiver dernier un cambrioleur est entré chez nous avec un couteau pendant la nuit, il est"
    " reparti avec la télé. On a déménagé depuis. L'assurance demande encore une attestation, à"
    " qui dois-je la demander ?"
)


def test_a_past_story_the_rules_flag_gets_the_question_not_the_alarm() -> None:
    rules = assess(STORY_PAST, model=None)
    assert rules.immediate_danger  # the rules alone alarm (a weapon, an intrusion)
    result = assess(STORY_PAST)
    assert not result.immediate_danger and result.uncertain, result
    assert result.helplines == () and result.matched == ()
    assert {f"{m}:model" for m in rules.matched} <= set(result.cancelled)
    assert result.overruled and not result.model_alone
    assert not assess("Bonjour, je voudrais savoir quand passe la collecte").overruled
    assert result.probability is not None and result.probability < default_model().veto_threshold


@pytest.mark.parametrize(
    "message",
    [
        # suicide is never overruled
        "J'ai fait une tentative de suicide il y a dix ans et je voudrais aujourd'hui aider une"
        " association de prévention dans la commune, à qui dois-je m'adresser pour proposer mon"
        " aide ?",
        # "now": the rules are trusted
        "Un cambrioleur est entré chez nous avec un couteau, il est encore là en ce moment, il"
        " fouille les tiroirs du salon et je suis cachée dans la chambre avec mon fils",
        # too short for the model to overrule (an answer to a form's question, a cry), however
        # unlikely it finds it
        "mon mari me frappe depuis des années",
        # nothing says it is over or in the past (no NOT_NOW_CUES), however unlikely it finds it
        "Mon conjoint me bat et il garde ma carte d'identité et mon argent, je ne sais pas à"
        " quelle association m'adresser dans mon département",
    ],
)
def test_never_overruled_suicide_now_short_or_without_a_cue_of_the_past(message: str) -> None:
    rules = assess(message, model=None)
    assert rules.immediate_danger, rules
    result = assess(message)
    assert result.immediate_danger and result.matched == rules.matched, result


@pytest.mark.parametrize(
    "message",
    [
        "mon mari me frappe depuis des années",
        "Mon conjoint me bat et il garde ma carte d'identité et mon argent, je ne sais pas à"
        " quelle association m'adresser dans mon département",
    ],
)
def test_kept_even_when_the_model_finds_it_unlikely(message: str) -> None:
    # a model that finds every message unlikely enough to overrule (veto at 1.0): these are
    # still flagged (too short, or nothing says it is not happening now)
    doubtful = replace(default_model(), veto_threshold=1.0)
    assert doubtful.probability(message) < doubtful.veto_threshold
    assert assess(message, model=doubtful).immediate_danger


@pytest.mark.parametrize(
    "message",
    [
        "Ça fait douze ans que mon mari me frappe et m'insulte, il contrôle tout notre argent. Il"
        " est en déplacement jusqu'à jeudi alors j'en profite pour vous écrire : comment je fais"
        " pour partir avec les enfants ?",
        "Mon compagnon me frappe quand il a bu, depuis deux ans, toujours le samedi soir. Il est"
        " au travail aujourd'hui. Je voudrais savoir comment porter plainte sans qu'il le sache.",
    ],
)
def test_violence_told_as_lasting_while_the_abuser_is_away_gets_the_question(message: str) -> None:
    # something that lasts or repeats ("depuis deux ans", "toujours") is a cue of "not this
    # minute" (NOT_NOW_CUES): a long story the model finds very unlikely to be a danger now gets
    # the question "is someone in danger right now?" instead of the alarm (issue 12: the
    # corpus's calm domestic-violence stories were the largest source of false alarms)
    assert assess(message, model=None).immediate_danger
    result = assess(message)
    assert not result.immediate_danger and result.uncertain and result.overruled, result


def test_lasting_violence_happening_now_keeps_the_alarm() -> None:
    message = (
        "Mon compagnon me frappe depuis deux ans et là il est en train de casser la porte de la"
        " chambre où je suis enfermée avec ma fille"
    )
    result = assess(message)
    assert result.immediate_danger and not result.overruled, result


def test_now_in_a_clause_that_says_the_present_is_settled_is_no_present_marker() -> None:
    # "maintenant" says where she is safe, not that it is happening: the story is dated
    assert dated_in_the_past(
        "Il m'a frappée hier soir. Je suis chez ma sœur maintenant, il ne sait pas où je suis."
    )
    assert dated_in_the_past("Ils ont jeté des pierres hier soir. Tout est calme maintenant.")
    assert dated_in_the_past("A man hit my husband last night. He's fine now.")
    assert dated_in_the_past("He hit me last night. He's at work right now.")
    assert dated_in_the_past("Il a sorti un couteau hier. Pas d'urgence ce soir, tout est calme.")
    assert dated_in_the_past("Mein Mann hat mich gestern geschlagen. Jetzt ist er bei der Arbeit.")
    # ... but the other markers still count in such a clause, and "now" elsewhere counts
    assert not dated_in_the_past("Il m'a frappée hier soir et il est encore là maintenant.")
    assert not dated_in_the_past("Il m'a frappée hier soir. Il tape sur la porte maintenant.")
    assert not dated_in_the_past("Hier il l'a frappée. Elle va bien, mais il est encore là.")
