"""`tranquillite triage` (SPEC §8) through the real trained model, in a real subprocess."""

from __future__ import annotations

import json

import pytest

import routing
import safety
from webhook.nlu import evaluate
from webhook.nlu.triage import OUTPUT_KEYS

pytestmark = pytest.mark.e2e

REPORT_OR_NOT = {*routing.REPORT_TYPES, "hors_sujet"}

CHILD_DOLE = {
    "id": "child-dole",
    "text": "Au secours, mon voisin frappe son fils de 6 ans en ce moment, le petit hurle",
    "commune": "Dole",
}
OTV_MANOSQUE = {
    "id": "otv-manosque",
    "text": "Bonjour, je pars en vacances du 3 au 17 août et je voudrais inscrire ma maison à "
    "l'opération tranquillité vacances pour que les patrouilles passent",
    "commune": "Manosque",
}


def check_schema(answer: dict) -> None:
    assert tuple(answer) == OUTPUT_KEYS
    assert isinstance(answer["language"], str) and len(answer["language"]) == 2
    assert answer["report_type"] in REPORT_OR_NOT
    assert isinstance(answer["confidence"], float) and 0.0 <= answer["confidence"] <= 1.0
    for key in ("immediate_danger", "minor_involved", "senior_involved"):
        assert isinstance(answer[key], bool), key
    insee = answer["commune_insee"]
    assert insee is None or routing.get_engine().commune(insee) is not None
    for destination in answer["destinations"]:
        assert set(destination) == {"agency_id", "role", "rule_id"}
        assert destination["role"] in ("primary", "copy")
        routing.get_engine().agency(destination["agency_id"])  # KeyError if unknown
        assert destination["rule_id"]
    assert all(isinstance(r, str) and r for r in answer["referrals"])
    assert len(set(answer["referrals"])) == len(answer["referrals"])
    if answer["report_type"] == "hors_sujet":
        assert answer["destinations"] == []
    # SPEC §8: the next two likeliest report types, after the chosen one, most likely first
    alternatives = answer["alternatives"]
    assert len(alternatives) == 2
    assert all(set(a) == {"report_type", "confidence"} for a in alternatives)
    kinds = [answer["report_type"]] + [a["report_type"] for a in alternatives]
    assert len(set(kinds)) == 3 and all(k in REPORT_OR_NOT for k in kinds)
    confidences = [a["confidence"] for a in alternatives]
    assert confidences == sorted(confidences, reverse=True)
    assert all(0.0 <= c <= 1.0 for c in confidences)


def test_schema_and_order_of_a_batch(triage) -> None:
    texts = [
        "des jeunes font du rodéo en moto tous les soirs sur le parking",
        "un faux conseiller bancaire a appelé ma grand-mère et lui a demandé son code",
        "bonjour",
        "on m'a volé mon vélo devant la gare",
        "il y a du trafic de drogue dans le hall de mon immeuble",
        "ma fille se fait harceler sur snapchat par des élèves de sa classe",
    ]
    items = [
        {"id": f"batch-{n}", "text": texts[n % len(texts)], "commune": "Dole"} for n in range(40)
    ]
    answers = triage.ask(*items)
    assert [a["id"] for a in answers] == [i["id"] for i in items]
    for answer in answers:
        check_schema(answer)
        assert answer["commune_insee"] == "39198"
    # the same text gets the same answer wherever it is in the batch
    by_text: dict[str, dict] = {}
    for item, answer in zip(items, answers, strict=True):
        rest = {k: v for k, v in answer.items() if k != "id"}
        assert by_text.setdefault(item["text"], rest) == rest


def test_streaming_one_answer_per_line_as_it_comes(triage) -> None:
    for n in range(3):
        triage.send(json.dumps({"id": n, "text": "mon voisin a brûlé ses déchets dans son jardin"}))
        (answer,) = triage.read(1)  # answered before the next line is written
        assert answer["id"] == n
        check_schema(answer)


def test_bad_lines_give_an_error_line_and_do_not_stop(triage) -> None:
    answers = triage.ask(
        "this is not json",
        '{"text": "pas d\'identifiant"}',
        '{"id": "no-text"}',
        '{"id": "empty", "text": "   "}',
        "[1, 2, 3]",
        '{"id": "bad-commune", "text": "bruit", "commune": {"x": 1}}',
        "",  # blank lines are skipped, not answered
        {"id": "after", "text": "des tags sur la mairie"},
    )
    assert [a["id"] for a in answers] == [
        None,
        None,
        "no-text",
        "empty",
        None,
        "bad-commune",
        "after",
    ]
    for answer in answers[:-1]:
        assert set(answer) == {"id", "error"} and answer["error"]
    check_schema(answers[-1])


def test_commune_by_name_postal_code_and_insee(triage) -> None:
    text = "des dépôts sauvages de gravats au bord du chemin"
    answers = triage.ask(
        {"id": "name", "text": text, "commune": "lons le saunier"},
        {"id": "postal", "text": text, "commune": "04100"},
        {"id": "insee", "text": text, "commune": "39198"},
        {"id": "saint", "text": text, "commune": "St Claude 39"},
        {"id": "homonym", "text": text, "commune": "Saint-Claude"},
        {"id": "unknown", "text": text, "commune": "Trifouilly-les-Oies"},
        {"id": "none", "text": text},
        {"id": "in-text", "text": "des dépôts sauvages de gravats au bord du chemin à Manosque"},
    )
    found = {a["id"]: a["commune_insee"] for a in answers}
    assert found == {
        "name": "39300",
        "postal": "04112",
        "insee": "39198",
        "saint": "39478",
        "homonym": None,  # Saint-Claude (39) or Saint-Claude (971): never guessed
        "unknown": None,
        "none": None,
        "in-text": "04112",  # no field: the commune named in the text
    }
    for answer in answers:
        check_schema(answer)


def test_child_beaten_now_in_dole(triage) -> None:
    (answer,) = triage.ask(CHILD_DOLE)
    check_schema(answer)
    assert answer["report_type"] == "enfant_en_danger"
    assert answer["immediate_danger"] is True
    assert answer["minor_involved"] is True
    assert answer["commune_insee"] == "39198"
    engine = routing.get_engine()
    (crip,) = engine.role_agencies("crip", engine.commune("39198"))
    assert {"agency_id": crip, "role": "primary", "rule_id": "enfant-en-danger"} in answer[
        "destinations"
    ]
    force = set(engine.force_agencies("39198"))
    assert force & {d["agency_id"] for d in answer["destinations"]}
    assert {"119", "17", "112"} <= set(answer["referrals"])
    assert answer["referrals"][0] in ("17", "112")  # emergency numbers first


def test_holiday_absence_in_manosque(triage) -> None:
    (answer,) = triage.ask(OTV_MANOSQUE)
    check_schema(answer)
    assert answer["report_type"] == "absence_vacances"
    assert answer["immediate_danger"] is False
    assert answer["commune_insee"] == "04112"
    engine = routing.get_engine()
    primary = [d["agency_id"] for d in answer["destinations"] if d["role"] == "primary"]
    assert primary == list(engine.force_agencies("04112"))
    assert engine.agency(primary[0]).kind == "police_nationale"  # the commissariat
    assert "otv" in answer["referrals"]


def test_senior_scam_and_non_report(triage) -> None:
    scam, hello = triage.ask(
        {
            "id": "scam",
            "text": "ma mère de 85 ans a donné son code de carte bleue à un faux conseiller "
            "bancaire au téléphone, on lui a pris 2000 euros",
            "commune": "Digne-les-Bains",
        },
        {"id": "hello", "text": "bonjour"},
    )
    check_schema(scam)
    assert scam["report_type"] == "arnaque"
    assert scam["senior_involved"] is True and scam["minor_involved"] is False
    agencies = {d["agency_id"] for d in scam["destinations"]}
    engine = routing.get_engine()
    digne = engine.resolve_commune("Digne-les-Bains").candidates[0]
    assert set(engine.role_agencies("adult_cell", digne)) <= agencies  # CIPPAV in copy
    check_schema(hello)
    assert hello["report_type"] == "hors_sujet"
    assert hello["immediate_danger"] is False and hello["referrals"] == []


def test_languages(triage) -> None:
    english, german, short, french = triage.ask(
        {
            "id": "en",
            "text": "Somebody broke the window of our rental car at the beach this afternoon "
            "and stole my bag with our passports",
        },
        {
            "id": "de",
            "text": "Jemand hat heute Nachmittag am Strand unser Auto aufgebrochen und meine "
            "Tasche mit den Ausweisen gestohlen",
        },
        {"id": "short", "text": "help"},
        {"id": "fr", "text": "les voisins font la fête tous les soirs jusqu'à trois heures"},
    )
    assert english["language"] == "en"
    assert german["language"] == "de"
    assert short["language"] == "fr"  # too short to tell: French by default
    assert french["language"] == "fr"
    for answer in (english, german, short, french):
        check_schema(answer)
    assert english["report_type"] == "vol_cambriolage"


def test_triage_flags_danger_exactly_as_the_chat_does(triage) -> None:
    """SPEC §8: triage uses the same model and rules as the chat. Its ``immediate_danger`` is
    the safety layer's decision, the one the chat takes on every turn, for every labelled
    message of the held-out danger set (dangers and calm messages alike)."""
    danger, calm = evaluate.load_danger_set(evaluate.DANGER_FILE)
    items = [{"id": n, "text": text} for n, text in enumerate(danger + calm)]
    answers = triage.ask(*items)
    chat = [
        safety.assess(i["text"], a["language"]).immediate_danger
        for i, a in zip(items, answers, strict=True)
    ]
    assert [a["immediate_danger"] for a in answers] == chat
    assert sum(chat[: len(danger)]) == len(danger)  # and every labelled danger is flagged


def test_a_commune_in_lowercase_after_a_but_not_after_an_english_article(triage) -> None:
    french, english, town = triage.ask(
        {"id": "fr", "text": "jsuis a manosque et g un voisin qui me harcèle depuis des mois"},
        {
            "id": "en",
            "text": "my phone was stolen at a bordeaux wine bar in Manosque last night",
        },
        # a larger town of a served département, though "dole" is a French word (doler)
        {"id": "town", "text": "jsuis a dole et on ma volé mon velo devant la gare hier soir"},
    )
    assert french["commune_insee"] == "04112"
    assert english["commune_insee"] == "04112"  # not Bordeaux: "a" is the English article
    assert town["commune_insee"] == "39198"
