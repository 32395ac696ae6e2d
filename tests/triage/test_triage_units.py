"""The parts of triage and eval that need no model: input validation, flags, commune,
language, metrics, and the labelled danger set (real target: recall 1.0)."""

from __future__ import annotations

import pytest

import reports
from safety import assess
from webhook.nlu import evaluate
from webhook.nlu.triage import (
    derive_flags,
    detect_language,
    read_item,
    resolve_commune,
)


@pytest.mark.parametrize(
    ("line", "item_id", "error"),
    [
        ('{"id": "a", "text": "bruit"}', "a", None),
        ('{"id": 12, "text": "bruit", "commune": "Dole"}', 12, None),
        ('{"id": 12, "text": "bruit", "commune": 39198}', 12, None),
        ("not json", None, "invalid JSON"),
        ('"a string"', None, "a JSON object is expected"),
        ('{"text": "bruit"}', None, "missing or invalid id"),
        ('{"id": "", "text": "bruit"}', None, "missing or invalid id"),
        ('{"id": ["x"], "text": "bruit"}', None, "missing or invalid id"),
        ('{"id": "b"}', "b", "missing or empty text"),
        ('{"id": "b", "text": 3}', "b", "missing or empty text"),
        ('{"id": "b", "text": " "}', "b", "missing or empty text"),
        ('{"id": "b", "text": "x", "commune": ["Dole"]}', "b", "commune must be a string"),
    ],
)
def test_read_item(line: str, item_id: object, error: str | None) -> None:
    item = read_item(line)
    assert item.id == item_id
    assert item.error == error


def test_long_text_is_cut() -> None:
    item = read_item('{"id": 1, "text": "' + "a" * 9000 + '"}')
    assert item.text is not None and len(item.text) == 5000


def flags(text: str, report_type: str = "autre", entities: list | None = None):
    return derive_flags(text, report_type, entities or [], assess(text))


def test_flags_from_text_and_entities() -> None:
    assert flags("mon fils de 12 ans se fait taper au collège").minor
    assert not flags("ma voisine fait du bruit depuis 3 ans").minor  # a duration, not an age
    assert flags("ma mère de 85 ans a été arnaquée").senior
    assert not flags("ma mère de 45 ans a été arnaquée").senior
    assert flags("il a pris", entities=[{"entity": "age", "value": "14 ans"}]).minor
    assert flags("elle", entities=[{"entity": "victime", "value": "senior"}]).senior
    assert flags("my grandmother got a call from a fake bank adviser").senior
    assert flags("la petite d'à côté", report_type="enfant_en_danger").minor
    assert flags("elle a viré 3000 euros à un faux conseiller").money_lost
    assert not flags("je n'ai rien payé, j'ai raccroché").money_lost
    assert flags("il m'insulte sur instagram").online
    assert flags("le voisin du dessus").neighbour_conflict
    assert flags("ils rappellent tous les jours").repeated
    assert flags("ils ont tagué le mur de l'école").offence
    assert not flags("des sacs poubelles laissés sur le trottoir").offence


def test_cues_are_routing_flags() -> None:
    import routing

    assert set(reports.flags_cues().flags) <= set(routing.FLAGS)


def test_triage_and_the_chat_compute_the_same_flags() -> None:
    text = "des jeunes font des rodéos en moto tous les soirs et ont tagué l'abribus"
    triaged = flags(text, report_type="incivilite")
    answers = {"description": text, **reports.extract("incivilite", text, reports.today())}
    filed = reports.flags("incivilite", answers)
    assert triaged.offence and triaged.repeated
    assert {k: getattr(triaged, k) for k in vars(triaged)} == {
        k: v for k, v in filed.items() if k != "danger"
    }


def test_commune_from_field_then_text() -> None:
    dole = [{"entity": "commune", "value": "Dole"}]
    assert resolve_commune("39198", []) == "39198"
    assert resolve_commune("Lons-le-Saunier", dole) == "39300"  # the field wins
    assert resolve_commune(None, dole) == "39198"
    assert resolve_commune("39100", dole) == "39198"  # postal code of several communes + text
    assert resolve_commune("39100", []) is None
    assert resolve_commune("Saint-Claude", []) is None
    assert resolve_commune("", []) is None
    assert resolve_commune(None, [{"entity": "commune", "value": "nulle part"}]) is None


def test_language() -> None:
    assert detect_language("help") == "fr"
    assert detect_language("au secours") == "fr"
    assert (
        detect_language("My car was broken into last night near the harbour, they took the radio")
        == "en"
    )
    assert (
        detect_language("Unser Ferienhaus wurde letzte Nacht aufgebrochen und der Fernseher fehlt")
        == "de"
    )
    assert (
        detect_language("jsuis trop saoulé les voisins font la teuf tous les soirs jusqu a 3h")
        == "fr"
    )


def test_intent_scores_and_macro_f1() -> None:
    gold = ["a", "a", "b", "b", "c"]
    predicted = ["a", "b", "b", "b", None]
    scores = evaluate.intent_scores(gold, predicted)
    assert scores["a"].precision == 1.0 and scores["a"].recall == 0.5
    assert scores["b"].precision == pytest.approx(2 / 3) and scores["b"].recall == 1.0
    assert scores["c"].f1 == 0.0 and scores["c"].support == 1
    assert evaluate.macro_f1(scores, ["a", "b"]) == pytest.approx((2 / 3 + 0.8) / 2)
    table = evaluate.confusion_table(gold, predicted)
    rows = table.splitlines()
    assert len(rows) == 5  # header + a, b, c, (none)
    assert rows[1].split()[2:] == ["1", "1", ".", "."]


def test_entity_scores_exact_span_and_label() -> None:
    gold = [
        [{"entity": "commune", "start": 0, "end": 4}],
        [{"entity": "age", "start": 3, "end": 9}],
    ]
    predicted = [
        [{"entity": "commune", "start": 0, "end": 4}, {"entity": "date", "start": 5, "end": 9}],
        [{"entity": "age", "start": 3, "end": 8}],  # wrong span: no credit
    ]
    per_label, overall = evaluate.entity_scores(gold, predicted)
    assert per_label["commune"].f1 == 1.0
    assert per_label["age"].f1 == 0.0
    assert per_label["date"].precision == 0.0
    assert overall.precision == pytest.approx(1 / 3) and overall.recall == 0.5


def test_danger_set_size() -> None:
    danger, safe = evaluate.load_danger_set()
    assert len(danger) >= 40 and len(safe) >= 40
    assert not set(danger) & set(safe)


def test_danger_recall_of_the_safety_layer_is_one() -> None:
    """Real target (SPEC §3): every labelled immediate danger is flagged by the safety layer."""
    danger, _ = evaluate.load_danger_set()
    missed = [text for text in danger if not assess(text, detect_language(text)).immediate_danger]
    assert missed == []
