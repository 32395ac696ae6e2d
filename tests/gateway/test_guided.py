"""Unit tests of the guided-mode state machine (webhook/conversation/guided.py) and of its texts."""

from __future__ import annotations

import datetime
import re
import string

import pytest

import reports
import routing
from reports.model import SKIP
from routing.normalize import fold
from webhook import replies
from webhook.conversation import guided
from webhook.conversation.guided import GuidedState
from webhook.conversation.language import SUPPORTED_LANGUAGES
from webhook.replies import Reply
from webhook.store import tickets


def payloads(rs: list[Reply]) -> list[str]:
    return [b.payload for r in rs for b in r.buttons]


def titles(rs: list[Reply]) -> list[str]:
    return [b.title for r in rs for b in r.buttons]


def tap(state: GuidedState, payload: str, lang: str = "fr") -> list[Reply]:
    return guided.handle(state, lang, payload=payload).replies


def say(state: GuidedState, text: str, lang: str = "fr") -> list[Reply]:
    return guided.handle(state, lang, text=text).replies


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


# ----------------------------------------------------------------------------- texts
def test_every_guided_text_exists_in_every_language_with_the_same_placeholders() -> None:
    table = replies._messages()
    keys = {k for k in table["fr"] if k.startswith("g_") or k == "rate_limited"}
    # the questions' own texts live in the report model (tests/reports checks their languages)
    needed = {f"g_t_{t}" for t in routing.REPORT_TYPES} | {"g_o_commune_inconnue"}
    assert needed <= keys, sorted(needed - keys)
    for lang in SUPPORTED_LANGUAGES:
        missing = keys - set(table[lang])
        assert not missing, (lang, sorted(missing))
        for key in keys:
            assert placeholders(table[lang][key]) == placeholders(table["fr"][key]), (lang, key)


@pytest.mark.parametrize("lang", SUPPORTED_LANGUAGES)
def test_button_titles_of_one_question_are_distinct(lang: str) -> None:
    for report_type, form in reports.model().forms.items():
        for qid in form.questions:
            state = GuidedState(step="question", report_type=report_type, question=qid)
            shown = titles(guided.current(state, lang))
            folded = [fold(t) for t in shown]
            assert len(set(folded)) == len(folded), (lang, report_type, qid, shown)


def test_every_payload_fits_telegram_callback_data() -> None:
    state = GuidedState()
    shown = guided.start(state, "fr")
    for report_type, form in reports.model().forms.items():
        for qid in form.questions:
            s = GuidedState(step="question", report_type=report_type, question=qid)
            shown += guided.current(s, "fr")
    shown += say(GuidedState(step="question", report_type="autre", question="commune"), "x")
    ambiguous = GuidedState(step="question", report_type="autre", question="commune")
    shown += say(ambiguous, "Saint-Martin")
    assert len(payloads(shown)) > 100
    for payload in payloads(shown):
        assert len(payload.encode()) <= 64, payload
        assert re.fullmatch(r"/[a-z_]+(:[A-Za-z0-9_]+)*", payload), payload


# ----------------------------------------------------------------------------- transitions
def test_menu_offers_every_report_type_a_human_and_free_writing() -> None:
    state = GuidedState()
    shown = guided.start(state, "fr")
    assert [p for p in payloads(shown) if p.startswith("/guide:type:")] == [
        f"/guide:type:{t}" for t in routing.REPORT_TYPES
    ]
    assert "/guide:human" in payloads(shown) and "/guide:quit" in payloads(shown)
    state.free_writing = False
    assert "/guide:quit" not in payloads(guided.current(state, "fr"))


def test_one_question_per_turn_with_back_and_human_every_time() -> None:
    state = GuidedState()
    shown = tap(state, "/guide:type:arnaque")
    seen = []
    answers = {
        "description": f"/guide:a:description:{SKIP}",
        "type_arnaque": "/guide:a:type_arnaque:faux_conseiller",
        "argent_perdu": "/guide:a:argent_perdu:oui",
        "victime_senior": "/guide:a:victime_senior:oui",
        "deja_cible": "/guide:a:deja_cible:non",
        "recontact": "/guide:a:recontact:anonyme",
    }
    while state.step == "question":
        assert state.question is not None
        seen.append(state.question)
        assert len([r for r in shown if r.buttons]) == 1  # one question
        assert payloads(shown)[-2:] == ["/guide:back", "/guide:human"]
        if state.question in answers:
            shown = tap(state, answers[state.question])
        elif state.question == "commune":
            shown = say(state, "04300")
            assert state.step == "question" and state.question == "commune"  # ambiguous
            shown = tap(state, "/guide:a:commune:04088")
        else:
            shown = say(state, "0612345678, www.faux-site.example")
    assert seen == [
        "description",
        "type_arnaque",
        "argent_perdu",
        "victime_senior",
        "deja_cible",
        "traces_escroc",
        "commune",
        "recontact",
    ]
    assert state.step == "summary"
    report = guided.build_report(state, conversation_id="web-1", channel="web", language="fr")
    assert report.report_type == "arnaque" and report.commune_insee == "04088"
    assert report.flags == {}  # the gateway computes them from the fields (reports.flags)
    assert reports.flags("arnaque", report.fields) == {
        **{f: False for f in routing.FLAGS},
        "money_lost": True,
        "senior": True,
    }
    # the same keys and values as every other channel: the model's ids
    assert report.fields == {
        "type_arnaque": "faux_conseiller",
        "argent_perdu": "oui",
        "victime_senior": "oui",
        "deja_cible": "non",
        "traces_escroc": "0612345678, www.faux-site.example",
        "recontact": "anonyme",
    }
    # the bank steps were given when money was lost; the idempotency key is the report's
    # content in this conversation today (not a key kept in memory)
    assert report.idempotency_key == tickets.conversation_key(report)
    assert report.idempotency_key.startswith("conversation:")


def test_back_goes_one_question_back_and_forgets_that_answer() -> None:
    state = GuidedState()
    tap(state, "/guide:type:harcelement")
    tap(state, f"/guide:a:description:{SKIP}")
    tap(state, "/guide:a:victime:moi")
    assert state.question == "mineur"
    tap(state, "/guide:a:mineur:non")
    assert state.question == "lieu_type"
    shown = tap(state, "/guide:back")
    assert state.question == "mineur" and "mineur" not in state.answers
    assert "moins de 18 ans" in shown[0].text
    tap(state, "/guide:back")
    assert state.question == "victime" and state.answers == {"description": SKIP}
    tap(state, "/guide:a:victime:enfant")  # a child: "under 18?" is not asked
    assert state.question == "lieu_type"
    tap(state, "/guide:back")
    tap(state, "/guide:back")
    tap(state, "/guide:back")
    assert state.step == "menu"


def test_back_after_a_description_forgets_what_was_read_from_it() -> None:
    state = GuidedState()
    tap(state, "/guide:type:incivilite")
    say(state, "des rodéos de motos tous les soirs devant chez moi")
    assert state.answers["type_incivilite"] == "rodeo"
    assert state.answers["frequence"] == "tous_les_jours"
    assert state.answers["lieu"] == "devant chez moi"
    assert state.question == "commune"  # what the description said is not asked again
    tap(state, "/guide:back")
    assert state.question == "description" and state.answers == {}


def test_old_button_of_another_question_only_shows_the_current_question() -> None:
    state = GuidedState()
    tap(state, "/guide:type:incivilite")
    tap(state, f"/guide:a:description:{SKIP}")
    tap(state, "/guide:a:type_incivilite:bruit")
    shown = tap(state, "/guide:a:type_incivilite:tags")  # stale
    assert state.answers == {"description": SKIP, "type_incivilite": "bruit"}
    assert state.question == "lieu" and "Où exactement" in shown[0].text
    shown = tap(state, "/guide:a:lieu:nonsense")
    assert state.question == "lieu"


def test_typed_answers_match_button_titles_and_unclear_text_asks_for_a_button() -> None:
    state = GuidedState()
    tap(state, "/guide:type:vol_cambriolage")
    tap(state, f"/guide:a:description:{SKIP}")
    shown = say(state, "  NON !")
    assert state.answers["en_cours"] == "non" and state.question == "type_vol"
    shown = say(state, "euh")
    assert shown[0].text.startswith(reports.problem_text("choice", "fr"))
    say(state, "Vol dans un véhicule")
    assert state.answers["type_vol"] == "vol_dans_vehicule"
    say(state, "retour")
    assert state.question == "type_vol"


def test_a_senior_may_type_the_answer_to_a_button_question() -> None:
    state = GuidedState()
    tap(state, "/guide:type:incivilite")
    tap(state, f"/guide:a:description:{SKIP}")
    say(state, "le bruit")
    say(state, "place de la mairie")
    assert state.question == "frequence"
    say(state, "ça arrive tous les soirs")
    assert state.answers["frequence"] == "tous_les_jours"
    german = GuidedState()
    tap(german, "/guide:type:absence_vacances", "de")
    say(german, "Forcalquier", "de")
    say(german, "ja, Hauptwohnsitz", "de")
    assert german.answers["residence"] == "principale"


def test_facts_typed_at_a_button_question_are_added_to_the_description() -> None:
    """As in the chat (tests/conversations: facts-typed-at-a-yes-no-question-kept): words that
    answer no button but tell more are kept with the description, the question is asked again;
    not understanding is not a fact; a report without a description says the plain problem."""
    state = GuidedState()
    tap(state, "/guide:type:arnaque")
    say(state, "un faux conseiller bancaire appelle ma mère")
    tap(state, "/guide:a:type_arnaque:faux_conseiller")
    asked = state.question
    assert asked == "argent_perdu"
    shown = say(state, "je suis sa fille, elle a donné ses codes hier")
    assert shown[0].text.startswith(reports.problem_text("yesno_noted", "fr"))
    assert state.question == asked and "argent_perdu" not in state.answers
    assert state.answers["description"] == (
        "un faux conseiller bancaire appelle ma mère\nje suis sa fille, elle a donné ses codes hier"
    )
    shown = say(state, "je comprends pas la question")
    assert shown[0].text.startswith(reports.problem_text("yesno", "fr"))
    assert state.answers["description"].count("\n") == 1
    absence = GuidedState()
    tap(absence, "/guide:type:absence_vacances")
    say(absence, "Forcalquier")
    assert absence.question == "residence"
    shown = say(absence, "nous partons chez nos enfants pour Noël")
    assert shown[0].text.startswith(reports.problem_text("choice", "fr"))
    assert "description" not in absence.answers


def test_a_change_of_mind_in_passing_corrects_the_earlier_answer() -> None:
    """As in the chat (tests/conversations: change-of-mind-scam-kind): "non en fait c'était pas
    la banque, c'était un faux policier" at the money question corrects the kind of scam, says
    it back and asks the money question again; an ordinary "non" changes nothing earlier."""
    state = GuidedState()
    tap(state, "/guide:type:arnaque")
    tap(state, f"/guide:a:description:{SKIP}")
    tap(state, "/guide:a:type_arnaque:faux_conseiller")
    assert state.question == "argent_perdu"
    shown = say(state, "non en fait c'était pas la banque, c'était un faux policier")
    assert state.answers["type_arnaque"] == "faux_policier"
    assert "argent_perdu" not in state.answers and state.question == "argent_perdu"
    assert "corrigé" in shown[0].text and "Faux policier" in shown[0].text
    say(state, "non")
    assert state.answers["argent_perdu"] == "non"
    assert state.answers["type_arnaque"] == "faux_policier"


def test_a_scam_site_told_after_its_question_is_added_to_the_traces() -> None:
    """As in the chat (tests/conversations: late-scam-traces)."""
    state = GuidedState()
    tap(state, "/guide:type:arnaque")
    tap(state, f"/guide:a:description:{SKIP}")
    tap(state, "/guide:a:type_arnaque:sms_internet")
    for _ in range(3):
        if state.question == "traces_escroc":
            break
        tap(state, f"/guide:a:{state.question}:non")
    assert state.question == "traces_escroc"
    say(state, "non c'est la première fois")
    assert state.answers["traces_escroc"] == SKIP
    say(state, "Champagnole")
    asked = state.question
    assert asked == "recontact"
    shown = say(state, "et le lien c'était laposte-colis-suivi.info")
    assert state.answers["traces_escroc"] == "laposte-colis-suivi.info"
    assert "corrigé" in shown[0].text and state.question == asked


def test_a_moment_typed_with_the_yes_is_kept_with_the_number_not_after_a_tap() -> None:
    def at_recontact() -> GuidedState:
        state = at_the_commune_question()
        say(state, "Champagnole")
        assert state.question == "recontact"
        return state

    typed = at_recontact()
    say(typed, "oui appelez-moi plutôt le soir")
    assert typed.question == "contact_tel"
    say(typed, "06 12 34 56 78")
    assert typed.answers["contact_tel"] == "06 12 34 56 78, plutôt le soir"
    tapped = at_recontact()
    tap(tapped, "/guide:a:recontact:appel")
    say(tapped, "06 12 34 56 78")
    assert tapped.answers["contact_tel"] == "06 12 34 56 78"


def test_money_taken_gives_the_same_advice_as_the_chat_tapped_or_told() -> None:
    """The advice after money taken ("call your bank now") is the report model's, the same in
    the chat (actions) and here, whether the answer is tapped or read from the story."""
    advice = reports.advice({"argent_perdu": "oui"}, "fr")
    assert len(advice) == 1 and "banque" in advice[0] and "Perceval" in advice[0]
    assert reports.advice({"argent_perdu": "non"}, "fr") == []
    state = GuidedState()
    tap(state, "/guide:type:arnaque")
    tap(state, f"/guide:a:description:{SKIP}")
    tap(state, "/guide:a:type_arnaque:faux_conseiller")
    shown = tap(state, "/guide:a:argent_perdu:oui")
    assert shown[0].text == advice[0] and state.question == "victime_senior"
    told = GuidedState()
    tap(told, "/guide:type:arnaque")
    shown = say(told, "un faux plombier est venu chez ma mère de 88 ans, il lui a pris 400 euros")
    assert told.answers["argent_perdu"] == "oui" and told.answers["victime_senior"] == "oui"
    assert [r.text for r in shown[:1]] == advice and told.question == "deja_cible"
    # in German, the guided mode's own language
    assert "Bank" in reports.advice({"argent_perdu": "oui"}, "de")[0]
    # cash handed over at the door is no bank matter: the complaint is said too, in every
    # language of the guided mode
    assert "plainte" in advice[0] and "liquide" in advice[0]
    for language, word in {"en": "complaint", "de": "Anzeige", "nl": "aangifte"}.items():
        assert word in reports.advice({"argent_perdu": "oui"}, language)[0]
    for language, word in {"it": "denuncia", "es": "denuncia"}.items():
        assert word in reports.advice({"argent_perdu": "oui"}, language)[0]
    # not known yet ("elle a donné ses codes, elle n'a pas regardé ses comptes"): the same call
    # to the bank, before the money goes
    (unsure,) = reports.advice({"argent_perdu": "ne_sait_pas"}, "fr")
    assert "opposition" in unsure and "banque" in unsure
    doubt = GuidedState()
    tap(doubt, "/guide:type:arnaque")
    tap(doubt, f"/guide:a:description:{SKIP}")
    tap(doubt, "/guide:a:type_arnaque:faux_conseiller")
    assert tap(doubt, "/guide:a:argent_perdu:ne_sait_pas")[0].text == unsure


def test_danger_now_gives_the_emergency_numbers_first() -> None:
    state = GuidedState()
    tap(state, "/guide:type:enfant_en_danger")
    say(state, "le petit d'à côté pleure seul depuis des heures")
    shown = tap(state, "/guide:a:danger_now:oui")
    assert "119" in shown[0].text and "17" in shown[0].text and not shown[0].buttons
    assert state.question == "age_enfant"
    german = GuidedState()
    tap(german, "/guide:type:violences_conjugales", "de")
    shown = tap(german, "/guide:a:danger_now:oui", "de")
    assert shown[0].text.startswith("⚠️ Wenn Sie") and "3919" in shown[0].text
    assert shown[1].text.startswith("In welcher Gemeinde")


def at_the_commune_question() -> GuidedState:
    """A guided "autre" report whose description is given: the commune is asked next."""
    state = GuidedState()
    tap(state, "/guide:type:autre")
    say(state, "Un chien est enfermé sur un balcon au soleil")
    assert state.question == "commune"
    return state


def test_unknown_commune_then_national_fallback() -> None:
    state = at_the_commune_question()
    shown = say(state, "Xyzzyville")
    assert shown[0].text.startswith(replies.message("g_commune_not_found"))
    assert "/guide:a:commune:commune_inconnue" in payloads(shown)
    tap(state, "/guide:a:commune:commune_inconnue")
    tap(state, "/guide:a:recontact:anonyme")
    assert state.step == "summary"
    report = guided.build_report(state, conversation_id="c", channel="web", language="fr")
    assert report.commune_insee is None
    decision = routing.get_engine().decide("autre", None)
    assert decision.destinations == []  # national fallback: no local service


@pytest.mark.parametrize(
    ("told", "insee"),
    [("celle du Jura", "39434"), ("dans le 05", "05104"), ("77167", "77370"), ("Aube", "10294")],
)
def test_homonyms_told_apart_by_typing_the_departement_or_postal_code(
    told: str, insee: str
) -> None:
    state = at_the_commune_question()
    first = say(state, "Poligny")
    assert first[0].text == replies.message("g_commune_ambiguous")
    # the same name typed again: the buttons again, with what the numbers in brackets are
    again = say(state, "Poligny")
    assert again[0].text == reports.problem_text("commune_homonyms", "fr")
    assert payloads(again)[:4] == payloads(first)[:4]
    say(state, told)
    assert state.answers["commune"] == insee and state.question != "commune"


@pytest.mark.parametrize("typed", ["non", "aucune", "je sais pas"])
def test_an_answer_naming_none_of_the_homonyms_gets_them_again(typed: str) -> None:
    # (before: "non" got « Je ne trouve pas cette commune » and the buttons were gone)
    state = at_the_commune_question()
    first = say(state, "Poligny")
    again = say(state, typed)
    assert again[0].text == reports.problem_text("commune_not_offered", "fr")
    assert payloads(again)[:4] == payloads(first)[:4]
    assert "commune" not in state.answers and state.question == "commune"
    say(state, "poligny 39800")
    assert state.answers["commune"] == "39434" and state.question != "commune"


@pytest.mark.parametrize(
    ("typed", "insee"),
    [
        ("poligny dans le jura", "39434"),
        ("Poligny (39)", "39434"),
        ("Villeneuve 04", "04242"),
        ("saint claude jura", "39478"),
        # a postal code among other words: the communes of that code, narrowed to the one named
        ("aucune, c'est Villeneuve 04180", "04242"),
        ("j'habite au 39800 à Poligny", "39434"),
    ],
)
def test_a_name_typed_with_its_departement_is_that_commune(typed: str, insee: str) -> None:
    # (before: "poligny dans le jura" was "no commune of that name")
    state = at_the_commune_question()
    say(state, typed)
    assert state.answers["commune"] == insee and state.question != "commune"


def test_a_name_whose_departement_is_not_told_after_it_is_no_commune() -> None:
    # "rue des lilas dole": "Rue" is a commune of the Somme, and nothing after it says so
    state = at_the_commune_question()
    shown = say(state, "rue des lilas dole")
    assert shown[0].text.startswith(replies.message("g_commune_not_found"))
    assert "commune" not in state.answers


def test_a_departement_typed_without_homonyms_offered_is_no_commune() -> None:
    state = at_the_commune_question()
    shown = say(state, "celle du Jura")
    assert shown[0].text.startswith(replies.message("g_commune_not_found"))
    assert "commune" not in state.answers


def test_description_written_before_the_menu_is_kept() -> None:
    state = GuidedState()
    guided.start(state, "fr")
    shown = say(state, "des jeunes font des rodéos tous les soirs")
    assert shown[0].text == replies.message("g_menu_after_text")
    tap(state, "/guide:type:incivilite")
    assert state.answers["description"] == "des jeunes font des rodéos tous les soirs"


def test_human_contact_with_unknown_phone_says_so_and_never_invents_one() -> None:
    engine = routing.get_engine()
    unit = engine.agency(engine.force_agencies("39300")[0])
    assert unit.phone == ""
    state = GuidedState()
    tap(state, "/guide:type:autre")
    tap(state, "/guide:human")
    shown = say(state, "Lons-le-Saunier")
    text = shown[0].text
    assert unit.name in text
    assert replies.message("g_human_no_phone") in text
    digits = re.findall(r"\d[\d ]{7,}\d", text)
    assert digits == []  # no phone number at all (the address has none either)
    assert state.step == "question" and state.question == "description"


def _drug_report_up_to_recontact() -> GuidedState:
    """A drug-dealing report answered up to "do you want to be contacted?"."""
    state = GuidedState()
    tap(state, "/guide:type:drogue_trafic")
    tap(state, f"/guide:a:description:{SKIP}")
    say(state, "hall du bâtiment C")
    tap(state, "/guide:a:moment:soir")
    say(state, "Forcalquier")
    return state


def test_summary_send_files_and_cancel_discards() -> None:
    state = _drug_report_up_to_recontact()
    tap(state, "/guide:a:recontact:anonyme")
    assert state.step == "summary"
    assert guided.handle(state, "fr", payload="/guide:send").file
    assert guided.handle(state, "fr", text="Envoyer le signalement").file
    report = guided.build_report(state, conversation_id="c", channel="telegram", language="fr")
    assert report.fields == {"lieu": "hall du bâtiment C", "moment": "soir", "recontact": "anonyme"}
    shown = tap(state, "/guide:cancel")
    assert state.step == "menu" and state.answers == {}
    assert shown[0].text == replies.message("g_cancelled")
    assert not guided.handle(state, "fr", payload="/guide:send").file


def test_filed_message_gives_reference_destinations_and_referrals() -> None:
    state = GuidedState(step="summary", report_type="arnaque")
    shown = guided.filed(
        state,
        {
            "reference": "04-2026-000007",
            "destinations": [{"agency_name": "Brigade de proximité de Forcalquier"}],
            "referrals": ["17cyber", "opposition-bancaire", "perceval"],
        },
        "fr",
    )
    text = shown[0].text
    assert "04-2026-000007" in text and "Brigade de proximité de Forcalquier" in text
    assert "Perceval" in text
    # an entry of the reference data with no number nor address says what to do, not a bare name
    (bank,) = [line for line in text.splitlines() if "Opposition bancaire" in line]
    assert "banque" in bank.split("Opposition bancaire", 1)[1], bank
    assert state.step == "done"
    assert "/guide:menu" in payloads(shown)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("je préfère les boutons", True),
        ("Mode guidé s'il vous plaît", True),
        ("I prefer buttons", True),
        ("mon voisin fait du bruit", False),
        (
            "le bouton de l'ascenseur a été arraché et tagué, ça fait trois fois ce mois-ci " * 2,
            False,
        ),
    ],
)
def test_typed_request_for_the_guided_mode(text: str, expected: bool) -> None:
    assert guided.wants_guided(text) is expected


def test_rasa_menu_and_report_buttons_work_in_guided_mode() -> None:
    state = GuidedState()
    shown = tap(state, "/aide_menu")
    assert "/guide:type:autre" in payloads(shown)
    tap(state, "/incivilite")  # a button of the assistant's own menu
    assert state.report_type == "incivilite" and state.question == "description"
    shown = tap(state, "/parler_humain")
    assert state.step == "human"
    tap(state, "/guide:back")
    assert state.step == "question" and state.question == "description"


def test_absence_dates_are_checked_like_in_the_chat() -> None:
    state = GuidedState()
    tap(state, "/guide:type:absence_vacances")
    say(state, "Dole")  # police nationale: main home only, 3 to 45 days ahead
    tap(state, "/guide:a:residence:secondaire")
    assert state.question == "residence"  # refused, asked again
    tap(state, "/guide:a:residence:principale")
    shown = say(state, "hier")
    assert "déjà passée" in shown[0].text and state.question == "date_depart"
    # a day and month gone a month ago, without its year, is that date gone (it was taken for
    # next year's and the return was then refused as before the departure)
    gone = reports.today() - datetime.timedelta(days=31)
    shown = say(state, f"le {gone.day}/{gone.month}")
    assert "déjà passée" in shown[0].text and state.question == "date_depart"
    shown = say(state, "dans 10 jours")
    assert state.question == "date_retour"
    shown = say(state, "dans 5 jours")
    assert "après la date de départ" in shown[0].text and state.question == "date_retour"
    say(state, "dans 20 jours")
    assert state.question == "adresse"
    in_ten_days = reports.today() + datetime.timedelta(days=10)
    assert state.answers["date_depart"] == in_ten_days.isoformat()


@pytest.mark.parametrize("text", ["j'en peux plus", "il est là, il a sorti un couteau"])
def test_a_cry_for_help_is_never_stored_as_an_answer(text: str) -> None:
    state = GuidedState(step="question", report_type="incivilite", question="lieu")
    asked = say(state, text)
    assert state.question == "lieu" and "lieu" not in state.answers
    assert asked and "Où" in asked[-1].text
    say(state, "au 3 rue Pasteur")
    assert state.answers["lieu"] == "au 3 rue Pasteur"


def test_no_number_after_all_means_not_contacted_as_in_the_chat() -> None:
    """ "non" to "your number?" is no phone number: the guided mode, like the chat (conversation
    mind-no-number-after-all), files the report without contact; words without a number are
    asked again, saying how to decline."""
    state = _drug_report_up_to_recontact()
    tap(state, "/guide:a:recontact:sms")
    assert state.step == "question" and state.question == "contact_tel"
    shown = say(state, "plutôt le soir")
    assert state.question == "contact_tel"
    assert shown[0].text.startswith("Je n'ai pas trouvé de numéro de téléphone")
    say(state, "non finalement")
    assert state.step == "summary"
    report = guided.build_report(state, conversation_id="c", channel="telegram", language="fr")
    assert report.fields == {"lieu": "hall du bâtiment C", "moment": "soir", "recontact": "anonyme"}
