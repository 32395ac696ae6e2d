"""`tranquillite eval` on the real trained model and the held-out split, in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from webhook.config import PROJECT_ROOT
from webhook.nlu import independent
from webhook.nlu.evaluate import all_missed

pytestmark = pytest.mark.e2e

SECTIONS = (
    "== Intents ==",
    "macro-F1, report intents",
    "macro-F1, all intents",
    "== Confusion matrix",
    "== Entities (exact span and label) ==",
    "== Immediate danger ==",
    "== Time ==",
    "parse per message: median",
    "== Side by side ==",
    "Independent set:",
    "Second independent set (danger targets):",
    "Third independent set (danger targets):",
    "immediate danger: recall",
    "Targets: ",
)


def rates(figures: dict) -> list[float]:
    intent, entities, danger = figures["intent"], figures["entities"], figures["danger"]
    values = [
        intent["report_macro_f1"],
        intent["all_macro_f1"],
        intent["accuracy"],
        intent["below_fallback_threshold"],
        entities["micro_f1"],
        entities["micro_precision"],
        entities["micro_recall"],
        danger["safety_layer_recall"],
        danger["safety_layer_false_alarm_rate"],
    ]
    for group in (intent["per_intent"], entities["per_entity"]):
        for scores in group.values():
            values += [scores["precision"], scores["recall"], scores["f1"]]
    return values


def test_eval_prints_the_sections_and_writes_json(trained_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    command = [sys.executable, "-m", "webhook.cli", "eval", "--model", str(trained_model)]
    result = subprocess.run(
        [*command, "--json", str(out)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    for section in SECTIONS:
        assert section in result.stdout, (section, result.stdout[-2000:], result.stderr[-2000:])
    figures = json.loads(out.read_text())
    assert all(0.0 <= value <= 1.0 for value in rates(figures))
    assert figures["messages"] >= 200
    assert set(figures["intent"]["report_intents"]) >= {"enfant_en_danger", "absence_vacances"}
    assert figures["danger"]["danger_messages"] >= 40
    assert figures["danger"]["other_messages"] >= 40
    timing = figures["timing"]
    assert 0 < timing["model_load_seconds"] <= timing["startup_seconds"]
    assert 0 < timing["parse_median_seconds"] <= timing["parse_p95_seconds"] < 5
    # exit code: 1 exactly when a target is missed (no --no-fail here)
    missed = all_missed(figures)
    assert result.returncode == (1 if missed else 0), result.stderr[-2000:]
    # the intent target (issue 3): report-intent macro-F1 >= 0.90 on the held-out split
    assert figures["intent"]["report_macro_f1"] >= 0.90, figures["intent"]["per_intent"]
    # the danger target is a real one: every labelled immediate danger is flagged
    assert figures["danger"]["safety_layer_recall"] == 1.0
    # the independent set (issue 12), written apart and never trained or tuned on: floors
    ind = figures["independent"]
    assert ind["messages"] >= 600
    assert ind["french_english"]["strict"]["macro_f1"] >= independent.TARGET_MACRO_F1
    assert ind["french_english"]["strict"]["top3_accuracy"] >= independent.TARGET_TOP3
    # danger: the targets of issue 12 (recall ≥ 0.97 with ≤ 10 % false alarms), met since the
    # seventh session of 2026-12-03 (recall 0.971 = 166 of 171, false alarms 0.099 = 62 of 627)
    assert ind["danger"]["recall"] >= independent.TARGET_DANGER_RECALL
    assert ind["danger"]["false_alarm_rate"] <= independent.TARGET_FALSE_ALARMS
    assert ind["danger"]["recall_flagged_or_asked"] >= ind["danger"]["recall"]
    # the second independent set, written after the danger model's data had been chosen on the
    # first: 0.993 (146 of 147) with false alarms 0.107 (seventh session); at most one more
    # danger missed, a few more false alarms
    second = figures["independent2"]
    assert second["messages"] >= 400 and second["danger"]["danger_messages"] >= 140
    assert second["danger"]["recall"] >= 0.986
    assert second["danger"]["false_alarm_rate"] <= 0.12
    assert second["other_languages"]["confident_report_type"] == 0
    # the third set, written at the start of the seventh session and measured once before any
    # change of it (0.954 = 166 of 174, false alarms 0.065), then after: 0.960 (167 of 174)
    # with false alarms 0.062 (19 of 306); at most one more danger missed
    third = figures["independent3"]
    assert third["messages"] >= 480 and third["danger"]["danger_messages"] >= 170
    assert third["danger"]["recall"] >= 0.954
    assert third["danger"]["false_alarm_rate"] <= 0.08
    assert third["other_languages"]["confident_report_type"] == 0
    # languages the classifier does not read never get a confident report type
    assert ind["other_languages"]["confident_report_type"] == 0
