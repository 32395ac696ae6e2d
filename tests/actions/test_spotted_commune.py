"""Which commune a message names, read from the entities Rasa found in it (the action server's
code, run in the Rasa environment)."""

from __future__ import annotations

import json

import pytest

from tests.rasa_python import run_in_rasa_env

CHECK = r"""
import json, sys
from rasa_sdk import Tracker
from actions.report_actions import _spotted_commune

out = []
for text, names, after_a_only, report_type in json.loads(sys.argv[1]):
    entities = [
        {"entity": "commune", "value": n, "start": text.index(n), "end": text.index(n) + len(n)}
        for n in names.split("|")
    ]
    latest = {"text": text, "entities": entities, "intent": {"name": "inform"}}
    tracker = Tracker("t", {}, latest, [], False, None, {}, "action_listen")
    out.append(
        _spotted_commune(tracker, text, after_a_only=after_a_only, report_type=report_type)
    )
print(json.dumps(out))
"""

# (text, entities "a|b", after_a_only, expected[, report type])
CASES: list[tuple[str, str, bool, str | None] | tuple[str, str, bool, str | None, str]] = [
    # the answer to another question: the commune after "à" is taken
    ("chez elle, 3 impasse des Tilleuls à Sisteron", "Sisteron", True, "Sisteron"),
    # "la mère de Marie": a first name that is also a commune (Marie, 06) is none in an answer
    ("c'est la mère de Marie", "Marie", True, None),
    # in a story, a name without "à" is still a candidate (the commune question comes anyway)
    ("la mère de Marie la laisse seule", "Marie", False, "Marie"),
    # several names in a story (entities "a|b"): the one after "à", "near", "près de" first
    ("at the parking of the Verdon gorges near Moustiers", "Verdon|Moustiers", False, "Moustiers"),
    ("le long du Verdon, près de Riez", "Verdon|Riez", False, "Riez"),
    # a holiday absence: the home's commune, not where the family goes; an address first
    (
        "nous partons chez nos enfants à Lyon du 20 décembre au 4 janvier. Notre maison est au 8"
        " chemin des Oliviers à Forcalquier",
        "Lyon|Forcalquier",
        False,
        "Forcalquier",
        "absence_vacances",
    ),
    (
        "on part en vacances à Nice, la maison est à Manosque",
        "Nice|Manosque",
        False,
        "Manosque",
        "absence_vacances",
    ),
    # ... where it goes is never the home: the commune question is asked
    ("nous partons chez ma fille à Lyon pour Noël", "Lyon", False, None, "absence_vacances"),
    # a theft in the place of the stay: that commune (only an absence skips destinations)
    (
        "on est en vacances à Castellane, on nous a volé nos vélos",
        "Castellane",
        False,
        "Castellane",
        "vol_cambriolage",
    ),
    # an address names the commune of the report, whatever comes before it
    (
        "je rentre de Dole, on m'a cambriolé au 12 rue Pasteur à Poligny",
        "Dole|Poligny",
        False,
        "Poligny",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_a_commune_in_an_answer_to_another_question_is_the_one_after_a(
    case: tuple[str, str, bool, str | None] | tuple[str, str, bool, str | None, str],
) -> None:
    text, name, after_a_only, expected = case[:4]
    report_type = case[4] if len(case) > 4 else None
    done = run_in_rasa_env(CHECK, json.dumps([[text, name, after_a_only, report_type]]))
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [expected]
