"""The independent evaluation set (``nlu_data/independent/``): figures of the product's decision.

The set was written apart from the training data (its README says how); nothing trains or tunes
on it. Every message goes through :func:`webhook.nlu.triage.triage_one` — the same decision as the
``triage`` contract and the chat (classifier, safety layer, danger model, language policy) — and
the figures are:

* report macro-F1 over the ten report types (SPEC §2), accuracy and top-3 accuracy, on French +
  English and on all languages; "strict" counts only the expected type, "acceptable" also counts
  a type the set lists as an acceptable alternative;
* per-type precision / recall / F1 (French + English, strict);
* immediate-danger recall and false alarms on every language;
* for the languages the classifier was not trained on: how often a report type is given with a
  confidence at or above ``CONFIDENT`` (it should never be).

Message texts are never printed: only ids (the set is labelled test data, not citizens' data).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import routing
import safety
from webhook.config import PROJECT_ROOT
from webhook.nlu.triage import NON_REPORT, NluWorker, triage_one

INDEPENDENT_DIR = PROJECT_ROOT / "nlu_data" / "independent"
# the second set (its README): written after the danger model's data had been chosen on the
# first; it measures the danger check on messages that influenced nothing. Only the danger
# targets apply to it (it has fewer than 40 messages for some types).
SECOND_DIR = PROJECT_ROOT / "nlu_data" / "independent2"
# the third set (its README): written on 2026-12-03 (seventh session) after both sets above had
# been looked at by type of error; measured once before any change of that session
THIRD_DIR = PROJECT_ROOT / "nlu_data" / "independent3"
# the later sets: key in the figures, name in the targets, title of their section; only the
# danger targets apply to them
LATER_SETS = (
    ("independent2", "second independent", "Second independent set (danger targets)"),
    ("independent3", "third independent", "Third independent set (danger targets)"),
)
TRAINED_LANGUAGES = frozenset({"fr", "en"})
LABELS = (*routing.REPORT_TYPES, NON_REPORT)
# A report type given at or above this confidence is "confident" (the chat's fallback threshold
# in bot/config.yml is 0.45: above it the bot goes straight to the type's form).
CONFIDENT = 0.45
# Targets of issue 12 on this set.
TARGET_MACRO_F1 = 0.85
TARGET_TOP3 = 0.95
TARGET_DANGER_RECALL = 0.97
TARGET_FALSE_ALARMS = 0.10


@dataclass(frozen=True)
class Labelled:
    id: str
    text: str
    language: str
    report_type: str
    alternatives: tuple[str, ...]
    danger_now: bool
    minor: bool
    senior: bool


def load(directory: Path = INDEPENDENT_DIR) -> list[Labelled]:
    items: list[Labelled] = []
    for path in sorted(directory.glob("part*.jsonl"), key=lambda p: int(p.stem[4:])):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            data = json.loads(line)
            if data["report_type"] not in LABELS:
                raise ValueError(f"{path.name}:{number}: unknown report_type")
            items.append(
                Labelled(
                    id=str(data["id"]),
                    text=str(data["text"]),
                    language=str(data["language"]),
                    report_type=str(data["report_type"]),
                    alternatives=tuple(data.get("alternatives") or ()),
                    danger_now=bool(data["danger_now"]),
                    minor=bool(data["minor"]),
                    senior=bool(data["senior"]),
                )
            )
    if not items:
        raise ValueError(f"no messages in {directory}")
    return items


def _f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def type_figures(
    gold: Sequence[str], predicted: Sequence[str], top3: Sequence[Sequence[str]]
) -> dict[str, Any]:
    """Macro-F1 over the report types, accuracy, top-3 accuracy and per-type scores."""
    per_type: dict[str, dict[str, float]] = {}
    for label in routing.REPORT_TYPES:
        tp = sum(1 for g, p in zip(gold, predicted, strict=True) if g == label and p == label)
        fp = sum(1 for g, p in zip(gold, predicted, strict=True) if g != label and p == label)
        fn = sum(1 for g, p in zip(gold, predicted, strict=True) if g == label and p != label)
        precision, recall, f1 = _f1(tp, fp, fn)
        per_type[label] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": tp + fn,
        }
    present = [t for t in routing.REPORT_TYPES if per_type[t]["support"]]
    n = len(gold)
    return {
        "messages": n,
        "macro_f1": statistics.fmean(per_type[t]["f1"] for t in present) if present else 0.0,
        "accuracy": sum(1 for g, p in zip(gold, predicted, strict=True) if g == p) / n,
        "top3_accuracy": sum(1 for g, t in zip(gold, top3, strict=True) if g in t) / n,
        "per_type": per_type,
    }


def evaluate(worker: NluWorker, directory: Path = INDEPENDENT_DIR) -> dict[str, Any]:
    items = load(directory)
    parses, _ = worker.parse([item.text for item in items])
    answers = [
        triage_one(item.id, item.text, None, parse)
        for item, parse in zip(items, parses, strict=True)
    ]

    def subset(keep: Any) -> dict[str, Any]:
        chosen = [(i, a) for i, a in zip(items, answers, strict=True) if keep(i)]
        gold = [i.report_type for i, _ in chosen]
        predicted = [a["report_type"] for _, a in chosen]
        # "acceptable": a prediction listed as an acceptable alternative counts as the expected type
        lenient_gold = [
            a["report_type"] if a["report_type"] in i.alternatives else i.report_type
            for i, a in chosen
        ]
        top3 = [
            [a["report_type"], *(alt["report_type"] for alt in a["alternatives"])]
            for _, a in chosen
        ]
        return {
            "strict": type_figures(gold, predicted, top3),
            "acceptable": type_figures(lenient_gold, predicted, top3),
        }

    danger = [(i, a) for i, a in zip(items, answers, strict=True) if i.danger_now]
    calm = [(i, a) for i, a in zip(items, answers, strict=True) if not i.danger_now]
    # not flagged, but the chat asks "is someone in danger right now?" (a first message the
    # safety layer finds uncertain): a yes gets the numbers first
    asked = {
        i.id
        for i, a in zip(items, answers, strict=True)
        if not a["immediate_danger"] and safety.assess(i.text, i.language).uncertain
    }
    others = [
        (i, a) for i, a in zip(items, answers, strict=True) if i.language not in TRAINED_LANGUAGES
    ]
    by_language: dict[str, dict[str, Any]] = {}
    for language in sorted({i.language for i in items}):
        rows = [(i, a) for i, a in zip(items, answers, strict=True) if i.language == language]
        hits = [i for i, a in rows if i.danger_now and a["immediate_danger"]]
        by_language[language] = {
            "messages": len(rows),
            "danger": sum(1 for i, _ in rows if i.danger_now),
            "danger_caught": len(hits),
        }
    return {
        "directory": str(directory),
        "messages": len(items),
        "french_english": subset(lambda i: i.language in TRAINED_LANGUAGES),
        "all_languages": subset(lambda i: True),
        "danger": {
            "danger_messages": len(danger),
            "calm_messages": len(calm),
            "recall": sum(1 for _, a in danger if a["immediate_danger"]) / len(danger),
            "false_alarm_rate": sum(1 for _, a in calm if a["immediate_danger"]) / len(calm),
            "recall_flagged_or_asked": sum(
                1 for i, a in danger if a["immediate_danger"] or i.id in asked
            )
            / len(danger),
            "questions_on_calm_rate": sum(1 for i, _ in calm if i.id in asked) / len(calm),
            "missed_ids": [i.id for i, a in danger if not a["immediate_danger"]],
            "false_alarm_ids": [i.id for i, a in calm if a["immediate_danger"]],
        },
        "other_languages": {
            "messages": len(others),
            "confident_report_type": sum(
                1
                for _, a in others
                if a["report_type"] != NON_REPORT and a["confidence"] >= CONFIDENT
            ),
        },
        "by_language": by_language,
        "flags": {
            "minor_recall": _recall(
                [a["minor_involved"] for i, a in zip(items, answers, strict=True) if i.minor]
            ),
            "senior_recall": _recall(
                [a["senior_involved"] for i, a in zip(items, answers, strict=True) if i.senior]
            ),
        },
    }


def _recall(hits: Sequence[bool]) -> float:
    return sum(hits) / len(hits) if hits else 0.0


def missed_targets(
    figures: dict[str, Any], name: str = "independent", danger_only: bool = False
) -> list[str]:
    """The targets of issue 12 a set misses (``danger_only``: the danger targets alone)."""
    missed = []
    fe = figures["french_english"]["strict"]
    if not danger_only and fe["macro_f1"] < TARGET_MACRO_F1:
        missed.append(f"{name} macro-F1 (fr+en) {fe['macro_f1']:.3f} < {TARGET_MACRO_F1}")
    if not danger_only and fe["top3_accuracy"] < TARGET_TOP3:
        missed.append(f"{name} top-3 (fr+en) {fe['top3_accuracy']:.3f} < {TARGET_TOP3}")
    danger = figures["danger"]
    if danger["recall"] < TARGET_DANGER_RECALL:
        missed.append(f"{name} danger recall {danger['recall']:.3f} < {TARGET_DANGER_RECALL}")
    if danger["false_alarm_rate"] > TARGET_FALSE_ALARMS:
        missed.append(
            f"{name} false alarms {danger['false_alarm_rate']:.3f} > {TARGET_FALSE_ALARMS}"
        )
    return missed


def render(figures: dict[str, Any], title: str = "Independent set") -> str:
    fe, al = figures["french_english"], figures["all_languages"]
    danger = figures["danger"]
    out = [
        f"{title}: {figures['directory']} ({figures['messages']} messages, "
        "written apart, never trained or tuned on)",
        f"{'':<34}{'fr+en strict':>13}{'fr+en accept.':>14}{'all strict':>11}",
    ]
    for key, name in (
        ("macro_f1", "report macro-F1"),
        ("accuracy", "accuracy"),
        ("top3_accuracy", "top-3 accuracy"),
    ):
        out.append(
            f"{name:<34}{fe['strict'][key]:>13.3f}{fe['acceptable'][key]:>14.3f}"
            f"{al['strict'][key]:>11.3f}"
        )
    out.append(
        f"{'messages':<34}{fe['strict']['messages']:>13}{'':>14}{al['strict']['messages']:>11}"
    )
    out += ["", f"{'type (fr+en, strict)':<22}{'precision':>10}{'recall':>8}{'F1':>7}{'n':>5}"]
    for label, s in fe["strict"]["per_type"].items():
        out.append(
            f"{label:<22}{s['precision']:>10.3f}{s['recall']:>8.3f}{s['f1']:>7.3f}{s['support']:>5}"
        )
    caught = danger["danger_messages"] - len(danger["missed_ids"])
    out += [
        "",
        f"immediate danger: recall {danger['recall']:.3f} "
        f"({caught} of {danger['danger_messages']}), "
        f"false alarms {danger['false_alarm_rate']:.3f} "
        f"({len(danger['false_alarm_ids'])} of {danger['calm_messages']})",
        f'  with the question ("en danger en ce moment ?") counted as a catch: recall '
        f"{danger['recall_flagged_or_asked']:.3f}; the question asked on calm messages "
        f"{danger['questions_on_calm_rate']:.3f}",
        "  missed: " + (", ".join(danger["missed_ids"]) or "none"),
        "  false alarms: " + (", ".join(danger["false_alarm_ids"]) or "none"),
        "by language (danger caught / danger): "
        + ", ".join(
            f"{lang} {v['danger_caught']}/{v['danger']} of {v['messages']}"
            for lang, v in figures["by_language"].items()
        ),
        f"other languages given a confident report type (>= {CONFIDENT}): "
        f"{figures['other_languages']['confident_report_type']} of "
        f"{figures['other_languages']['messages']}",
        f"minor flag recall {figures['flags']['minor_recall']:.3f}, "
        f"senior flag recall {figures['flags']['senior_recall']:.3f}",
    ]
    return "\n".join(out)
