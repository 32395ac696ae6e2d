"""Same answers, same ticket: one report per type told through the four channels — the chat (real
Rasa server and action server), the guided mode, Telegram (python-telegram-bot in a real gateway
process, against the local fake Bot API) and Open311 — gives tickets with identical fields and
identical destinations (agency, role, rule). And every rule of SPEC §4 is reached from a real
conversation, not only from ``routing.decide``.

Each scenario gives the answers by question id (reports/model.yml). The drivers answer the
question the channel asks, found from the model's own wording; a question that a channel asks
and the scenario does not answer fails the test (a channel asking what another one understood).
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fake_bot_api import FakeBotAPI
from telegram_support import SECRET, TOKEN
from test_telegram_e2e import TelegramUser, buttons, text_of

import reports
import routing
from reports.model import SKIP
from webhook.config import PROJECT_ROOT
from webhook.ops.supervisor import Stack

pytestmark = pytest.mark.e2e

REFERENCE_RE = re.compile(r"\b(\d{2,3}|2A|2B)-\d{4}-\d{6}\b")
MAX_TURNS = 16


@dataclass(frozen=True)
class Scenario:
    report_type: str
    first_message: str  # what a resident writes first in the chat (the description, if any)
    commune: str
    answers: dict[str, str] = field(default_factory=dict)  # question id -> choice id or text
    rules: tuple[str, ...] = ()  # rule ids the decision must contain
    # a message written instead of the answer to a question (e.g. a cry for help), once
    interject: tuple[str, str] | None = None

    @property
    def has_description(self) -> bool:
        return "description" in reports.model().forms[self.report_type].questions

    def answer(self, qid: str) -> str:
        if qid == "description":
            return self.first_message
        if qid == "commune":
            return self.commune
        if qid == "recontact" and qid not in self.answers:
            return "anonyme"  # every report asks; these scenarios stay anonymous
        assert qid in self.answers, f"{self.report_type}: unexpected question {qid!r}"
        return self.answers[qid]


SCENARIOS = {
    "incivilite": Scenario(
        "incivilite",
        "des jeunes font des rodéos en moto tous les soirs et ont tagué l'abribus",
        "Manosque",
        {"lieu": "l'abribus de la place du marché"},
        rules=("incivilite", "incivilite.force"),
    ),
    "harcelement-mineur": Scenario(
        "harcelement",
        "ma fille de 14 ans reçoit des insultes et des moqueries sur snapchat de la part "
        "d'autres élèves",
        "Lons-le-Saunier",
        {"depuis_quand": "mois"},
        rules=("harcelement-mineur",),
    ),
    "harcelement-voisinage": Scenario(
        "harcelement",
        "mon voisin m'insulte dès qu'il me croise et laisse ses poubelles devant ma porte exprès",
        "Lons-le-Saunier",
        {"victime": "moi", "mineur": "non", "menaces": "non", "depuis_quand": "longtemps"},
        rules=("harcelement-voisinage",),
    ),
    "enfant_en_danger": Scenario(
        "enfant_en_danger",
        "les parents du petit d'en face le laissent souvent seul le soir et il n'a pas l'air de "
        "manger à sa faim, il doit avoir 6 ans",
        "Dole",
        {"danger_now": "non", "relation": "voisin"},
        rules=("enfant-en-danger",),
    ),
    "violences_conjugales": Scenario(
        "violences_conjugales",
        "mon compagnon m'humilie et me surveille, il contrôle tout mon argent",
        "Champagnole",
        {"danger_now": "non", "contact_sur": "par SMS le matin au 06 00 00 00 00"},
        rules=("violences-conjugales",),
    ),
    "arnaque": Scenario(
        "arnaque",
        "un faux conseiller de la banque a appelé ma mère de 82 ans et lui a fait valider des "
        "virements",
        "Forcalquier",
        {
            "argent_perdu": "oui",
            "victime_senior": "oui",
            "deja_cible": "oui",
            "traces_escroc": SKIP,
        },
        rules=("arnaque", "arnaque.adultes-vulnerables"),
    ),
    "personne_vulnerable": Scenario(
        "personne_vulnerable",
        "le neveu de ma voisine âgée prend son argent et l'empêche de voir ses amies",
        "Digne-les-Bains",
        {"danger_now": "non", "personne": "personne_agee", "lieu_vie": "domicile"},
        rules=("personne-vulnerable",),
    ),
    "absence_vacances": Scenario(
        "absence_vacances",
        "je pars en vacances et je voudrais que la police surveille ma maison pendant mon absence",
        "Dole",
        {
            "residence": "principale",
            "date_depart": "dans 10 jours",
            "date_retour": "dans 24 jours",
            "adresse": "12 rue des Lilas",
            "contact_absence": "06 00 00 00 00",
            "alarme": "non",
            "cles": "oui",
            "vehicule": "non",
        },
        rules=("absence-vacances", "absence-vacances.police-municipale"),
    ),
    "vol_cambriolage": Scenario(
        "vol_cambriolage",
        "on a cassé la vitre de notre camping-car et volé les papiers",
        "Sisteron",
        {"en_cours": "non", "quand": "cette nuit", "lieu": "le parking du lac"},
        rules=("vol-cambriolage-drogue",),
    ),
    "drogue_trafic": Scenario(
        "drogue_trafic",
        "il y a des dealers qui vendent de la drogue, je les vois par ma fenêtre",
        "Manosque",
        {"lieu": "hall du bâtiment B, rue des Écoles", "moment": "soir"},
        rules=("vol-cambriolage-drogue",),
    ),
    "autre": Scenario(
        "autre",
        "un chien est attaché sans eau ni abri dans un jardin depuis trois jours",
        "Forcalquier",
        rules=("autre",),
    ),
}


# ----------------------------------------------------------------------------- questions
def asked_question(report_type: str, text: str, short: bool) -> str | None:
    """The question of the form whose wording is in ``text`` (the longest wins)."""
    model = reports.model()
    found = [
        qid
        for qid in model.forms[report_type].questions
        if model.ask_text(report_type, qid, "fr", short=short) in text
    ]
    return max(
        found, key=lambda q: len(model.ask_text(report_type, q, "fr", short=short)), default=None
    )


def is_choice(scenario: Scenario, qid: str, value: str) -> bool:
    question = reports.model().questions[qid]
    return value == SKIP or question.choice(value) is not None


def reference_in(text: str) -> str:
    match = REFERENCE_RE.search(text)
    assert match, text
    return match.group(0)


# ----------------------------------------------------------------------------- channels
def via_chat(gateway_url: str, scenario: Scenario) -> str:
    sender = f"agree-{uuid.uuid4().hex[:12]}"
    with httpx.Client(base_url=gateway_url, timeout=90) as client:

        def send(body: dict[str, str]) -> list[dict[str, Any]]:
            response = client.post("/api/v1/chat", json={"sender": sender, **body})
            assert response.status_code == 200, response.text
            return response.json()["messages"]

        messages = send({"text": scenario.first_message})
        interjected = False
        for _ in range(MAX_TURNS):
            text = "\n".join(m.get("text") or "" for m in messages)
            payloads = [b["payload"] for m in messages for b in m.get("buttons") or []]
            if "Oui, envoyer" in payloads:  # the summary: its buttons send their own words
                return reference_in("\n".join(m.get("text") or "" for m in send({"text": "oui"})))
            qid = asked_question(scenario.report_type, text, short=False)
            assert qid, f"chat: no question recognised in {text!r}"
            if scenario.interject and scenario.interject[0] == qid and not interjected:
                interjected = True
                messages = send({"text": scenario.interject[1]})
                continue
            value = scenario.answer(qid)
            if qid != "commune" and is_choice(scenario, qid, value):
                wanted = json.dumps({"reponse": value}, separators=(",", ":"))
                payload = next(p for p in payloads if p.endswith(wanted))
                messages = send({"payload": payload})
            else:
                messages = send({"text": value})
        raise AssertionError("chat: the report was never summarised")


def via_guided(gateway_url: str, scenario: Scenario) -> str:
    sender = f"agree-g-{uuid.uuid4().hex[:12]}"
    with httpx.Client(base_url=gateway_url, timeout=60) as client:

        def send(body: dict[str, str]) -> list[dict[str, Any]]:
            response = client.post("/api/v1/chat", json={"sender": sender, **body})
            assert response.status_code == 200, response.text
            return response.json()["messages"]

        send({"payload": "/mode_guide"})
        messages = send({"payload": f"/guide:type:{scenario.report_type}"})
        for _ in range(MAX_TURNS):
            text = "\n".join(m.get("text") or "" for m in messages)
            payloads = [b["payload"] for m in messages for b in m.get("buttons") or []]
            if "/guide:send" in payloads:
                return reference_in(
                    "\n".join(m.get("text") or "" for m in send({"payload": "/guide:send"}))
                )
            qid = asked_question(scenario.report_type, text, short=True)
            assert qid, f"guided: no question recognised in {text!r}"
            value = scenario.answer(qid)
            if qid != "commune" and is_choice(scenario, qid, value):
                messages = send({"payload": f"/guide:a:{qid}:{value}"})
            else:
                messages = send({"text": value})
        raise AssertionError("guided: the report was never summarised")


def via_telegram(user: TelegramUser, scenario: Scenario) -> str:
    calls = user.say(scenario.first_message)
    for _ in range(MAX_TURNS):
        text = text_of(calls)
        shown = [b for c in calls for b in buttons(c)]
        summary = next(
            (c for c in calls if any(b["text"] == "Oui, envoyer" for b in buttons(c))), None
        )
        if summary is not None:
            return reference_in(text_of(user.press(summary, "Oui, envoyer")))
        qid = asked_question(scenario.report_type, text, short=False)
        assert qid, f"telegram: no question recognised in {text!r}"
        value = scenario.answer(qid)
        if qid != "commune" and is_choice(scenario, qid, value):
            question = reports.model().questions[qid]
            title = (
                question.skip_label("fr") if value == SKIP else question.choice(value).label("fr")  # type: ignore[union-attr]
            )
            message = next(c for c in calls if any(b["text"] == title for b in buttons(c)))
            assert any(b["text"] == title for b in shown)
            calls = user.press(message, title)
        else:
            calls = user.say(value)
    raise AssertionError("telegram: the report was never summarised")


def via_open311(gateway_url: str, api_key: str, scenario: Scenario) -> str:
    model = reports.model()
    data = {
        "api_key": api_key,
        "service_code": scenario.report_type,
        "attribute[commune]": scenario.commune,
    }
    if scenario.has_description:
        data["description"] = scenario.first_message
    today = reports.today()
    for qid, value in scenario.answers.items():
        if value == SKIP:
            continue
        if model.questions[qid].kind == "date":
            day = reports.dates.parse_date(value, today)
            assert day is not None
            value = day.isoformat()
        data[f"attribute[{qid}]"] = value
    # what the description already says is given too, as an Open311 client's form would
    for qid, value in reports.extract(scenario.report_type, scenario.first_message, today).items():
        data.setdefault(f"attribute[{qid}]", value)
    if scenario.report_type == "absence_vacances":
        data.pop("description", None)
    response = httpx.post(f"{gateway_url}/open311/v2/requests.json", data=data, timeout=30)
    assert response.status_code == 201, response.text
    return str(response.json()[0]["service_request_id"])


# ----------------------------------------------------------------------------- tickets
def ticket(stack: Stack, reference: str) -> dict[str, Any]:
    db_path = stack.settings.database_url.split("///", 1)[1]
    with sqlite3.connect(db_path) as conn:
        row = conn.execute(
            "SELECT report_type, commune_insee, channel, fields, id, decision FROM tickets "
            "WHERE reference = ?",
            (reference,),
        ).fetchone()
        assert row is not None, reference
        destinations = conn.execute(
            "SELECT agency_id, role, rule_id FROM ticket_destinations WHERE ticket_id = ? "
            "ORDER BY agency_id, role",
            (row[4],),
        ).fetchall()
    return {
        "report_type": row[0],
        "commune_insee": row[1],
        "channel": row[2],
        "fields": json.loads(row[3]),
        "destinations": [tuple(d) for d in destinations],
        "rule_ids": set(json.loads(row[5])["rule_ids"]),
    }


@pytest.fixture(scope="module")
def open311_key(stack: Stack) -> str:
    engine = routing.get_engine()
    agency_id = engine.force_agencies("04112")[0]
    env = {
        "TRANQUILLITE_DATABASE_URL": stack.settings.database_url,
        "TRANQUILLITE_VAR_DIR": str(stack.settings.var_dir),
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "webhook.cli",
            "agency-token",
            "create",
            "--agency",
            agency_id,
            "--name",
            "outil 311 de test",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"\btq_\S+", result.stdout)
    assert match, result.stdout
    return match.group(0)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_same_answers_same_ticket_in_every_channel(
    name: str,
    stack: Stack,
    fake_api: FakeBotAPI,
    gateway_process: Callable[..., Any],
    open311_key: str,
) -> None:
    scenario = SCENARIOS[name]
    gateway = gateway_process(
        TRANQUILLITE_RASA_URL=stack.settings.rasa_url,
        TRANQUILLITE_TELEGRAM_TOKEN=TOKEN,
        TRANQUILLITE_TELEGRAM_SECRET=SECRET,
        TRANQUILLITE_TELEGRAM_BASE_URL=fake_api.base_url,
        TRANQUILLITE_TELEGRAM_MODE="webhook",
    )
    user = TelegramUser(fake_api, gateway, chat_id=770000 + list(SCENARIOS).index(name))
    url = stack.settings.gateway_url
    references = {
        "web": via_chat(url, scenario),
        "guided": via_guided(url, scenario),
        "telegram": via_telegram(user, scenario),
        "open311": via_open311(url, open311_key, scenario),
    }
    tickets = {channel: ticket(stack, ref) for channel, ref in references.items()}
    assert tickets["telegram"]["channel"] == "telegram"
    assert tickets["open311"]["channel"] == "open311"
    reference_ticket = tickets["web"]
    assert reference_ticket["report_type"] == scenario.report_type
    for channel, other in tickets.items():
        assert other["fields"] == reference_ticket["fields"], channel
        assert other["destinations"] == reference_ticket["destinations"], channel
        assert other["commune_insee"] == reference_ticket["commune_insee"], channel
    assert set(scenario.rules) <= reference_ticket["rule_ids"], reference_ticket["rule_ids"]
    for channel, other in tickets.items():
        assert other["rule_ids"] == reference_ticket["rule_ids"], channel
    # the answers given are the ticket's, as the model's canonical values
    for qid, value in scenario.answers.items():
        question = reports.model().questions[qid]
        if value == SKIP:
            assert qid not in reference_ticket["fields"]
        elif question.kind != "date":
            assert reference_ticket["fields"][qid] == value, qid
    if name == "incivilite":  # the rodéos and tags of Manosque: municipal police + commissariat
        kinds = {
            routing.get_engine().agency(agency).kind
            for agency, _, _ in reference_ticket["destinations"]
        }
        assert kinds == {"police_municipale", "police_nationale"}, kinds


# ----------------------------------------------------------------------------- SPEC §4 rules
EXTRA_RULES = {
    "danger-immediat": Scenario(
        "vol_cambriolage",
        "quelqu'un essaie de forcer la porte du garage de mon voisin",
        "Sisteron",
        {
            "en_cours": "oui",
            "type_vol": "cambriolage",
            "quand": "maintenant",
            "lieu": "rue du Rieu",
        },
        rules=("danger-immediat", "vol-cambriolage-drogue"),
    ),
    "enfant-en-danger.force": Scenario(
        "enfant_en_danger",
        "la petite voisine de 4 ans est seule sur le balcon du troisième étage depuis une heure",
        "Manosque",
        {"danger_now": "oui", "relation": "voisin"},
        rules=("enfant-en-danger", "enfant-en-danger.force", "danger-immediat"),
    ),
    "harcelement-mineur.crip": Scenario(
        "harcelement",
        # no duration in the story ("depuis des semaines" would answer "Depuis quand ?", the
        # question the cry for help interrupts)
        "des élèves harcèlent mon fils de 13 ans au collège",
        "Dole",
        {"depuis_quand": "mois", "lieu_type": "ecole"},
        rules=("harcelement-mineur", "harcelement-mineur.crip", "danger-immediat"),
        interject=("depuis_quand", "au secours ils sont en train de le frapper devant le collège"),
    ),
    "harcelement-adulte": Scenario(
        "harcelement",
        "un collègue m'envoie des messages déplacés et me suit jusqu'à ma voiture le soir",
        "Dole",
        {"victime": "moi", "mineur": "non", "lieu_type": "travail", "depuis_quand": "mois"},
        rules=("harcelement-adulte",),
    ),
    "personne-vulnerable.force": Scenario(
        "personne_vulnerable",
        "l'aide à domicile de mon grand-père lui prend sa carte bancaire et lui retire de l'argent",
        "Forcalquier",
        {"danger_now": "oui", "personne": "personne_agee", "lieu_vie": "domicile"},
        rules=("personne-vulnerable", "personne-vulnerable.force", "danger-immediat"),
    ),
}


@pytest.mark.parametrize("rule", list(EXTRA_RULES))
def test_spec_rules_are_reached_from_a_conversation(rule: str, stack: Stack) -> None:
    scenario = EXTRA_RULES[rule]
    found = ticket(stack, via_chat(stack.settings.gateway_url, scenario))
    assert set(scenario.rules) <= found["rule_ids"], found["rule_ids"]


def test_every_spec_rule_is_covered_by_a_conversation() -> None:
    covered = {r for s in (*SCENARIOS.values(), *EXTRA_RULES.values()) for r in s.rules}
    engine_rules = {rule.id for rule in routing.get_engine().rules.rules} | {
        copy.id for rule in routing.get_engine().rules.rules for copy in rule.copies
    }
    missing = engine_rules - covered - {"default"}
    assert not missing, sorted(missing)
