"""`tranquillite eval`: the trained model on the held-out split, never trained on.

Prints (and with ``--json FILE`` writes):

* intent macro-F1 over the report intents (SPEC §2) and over all intents, accuracy, per-intent
  precision/recall/F1/support, a confusion matrix (rows: expected, columns: predicted);
* entity F1 per entity (exact span and label, on the test split's annotated entities);
* immediate-danger recall (and false alarms) on ``nlu_data/danger/danger.yml``: the safety layer
  (rules + danger model), what the chat checks on every turn and ``triage`` answers;
* the model's start-up time and the per-message parse time (median, p95).

The prediction is the classifier's best intent; ``nlu_fallback`` (below the FallbackClassifier's
threshold the bot offers buttons instead of guessing) is counted separately, not as an error.
Exit code 1 when a target is missed: report-intent macro-F1 ≥ 0.90, danger recall = 1.0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import routing
from safety import assess
from webhook.config import PROJECT_ROOT
from webhook.nlu import independent
from webhook.nlu.triage import NluWorker, TriageError, detect_language
from webhook.ops import envsetup

TEST_DIR = PROJECT_ROOT / "nlu_data" / "test"
DANGER_FILE = PROJECT_ROOT / "nlu_data" / "danger" / "danger.yml"
TARGET_REPORT_MACRO_F1 = 0.90
TARGET_DANGER_RECALL = 1.0


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    f1: float
    support: int

    def to_dict(self) -> dict[str, float | int]:
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "support": self.support,
        }


def _scores(tp: int, fp: int, fn: int) -> Scores:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(precision, recall, f1, tp + fn)


def intent_scores(gold: Sequence[str], predicted: Sequence[str | None]) -> dict[str, Scores]:
    """Per-intent scores for every intent that is expected or predicted."""
    labels = sorted(set(gold) | {p for p in predicted if p is not None})
    result = {}
    for label in labels:
        tp = sum(1 for g, p in zip(gold, predicted, strict=True) if g == label and p == label)
        fp = sum(1 for g, p in zip(gold, predicted, strict=True) if g != label and p == label)
        fn = sum(1 for g, p in zip(gold, predicted, strict=True) if g == label and p != label)
        result[label] = _scores(tp, fp, fn)
    return result


def macro_f1(scores: dict[str, Scores], labels: Sequence[str]) -> float:
    return statistics.fmean(scores[label].f1 for label in labels) if labels else 0.0


EntityKey = tuple[int, int, int, str]  # (message index, start, end, entity)


def entity_scores(
    gold: Sequence[Sequence[dict[str, Any]]], predicted: Sequence[Sequence[dict[str, Any]]]
) -> tuple[dict[str, Scores], Scores]:
    """Exact span + label matching; per entity label and micro-averaged over all labels."""
    gold_set: set[EntityKey] = set()
    pred_set: set[EntityKey] = set()
    for index, (g_list, p_list) in enumerate(zip(gold, predicted, strict=True)):
        gold_set.update((index, int(e["start"]), int(e["end"]), str(e["entity"])) for e in g_list)
        pred_set.update((index, int(e["start"]), int(e["end"]), str(e["entity"])) for e in p_list)
    per_label = {}
    for label in sorted({k[3] for k in gold_set | pred_set}):
        g = {k for k in gold_set if k[3] == label}
        p = {k for k in pred_set if k[3] == label}
        per_label[label] = _scores(len(g & p), len(p - g), len(g - p))
    overall = _scores(len(gold_set & pred_set), len(pred_set - gold_set), len(gold_set - pred_set))
    return per_label, overall


def confusion_table(gold: Sequence[str], predicted: Sequence[str | None]) -> str:
    """Compact text matrix: numbered rows (expected) and columns (predicted); "." is zero."""
    labels = sorted(set(gold) | {p for p in predicted if p is not None})
    if any(p is None for p in predicted):
        labels.append("(none)")
    index = {label: i for i, label in enumerate(labels)}
    counts = Counter(
        (index[g], index[p if p is not None else "(none)"])
        for g, p in zip(gold, predicted, strict=True)
    )
    width = max(3, len(str(max(counts.values(), default=0))) + 1)
    name_width = max(len(label) for label in labels) + 4
    lines = [" " * name_width + "".join(f"{i:>{width}}" for i in range(len(labels)))]
    for label, i in index.items():
        cells = "".join(f"{counts.get((i, j), 0) or '.':>{width}}" for j in range(len(labels)))
        lines.append(f"{i:>2} {label:<{name_width - 3}}{cells}")
    return "\n".join(lines)


def load_danger_set(path: Path = DANGER_FILE) -> tuple[list[str], list[str]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("version") != 1:
        raise ValueError(f"{path}: expected a mapping with version: 1")
    danger = data.get("immediate_danger")
    safe = data.get("no_immediate_danger")
    if not isinstance(danger, list) or not isinstance(safe, list):
        raise ValueError(f"{path}: immediate_danger and no_immediate_danger must be lists")
    if not all(isinstance(t, str) and t.strip() for t in [*danger, *safe]):
        raise ValueError(f"{path}: every message must be a non-empty string")
    return danger, safe


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    position = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[position]


def evaluate(
    worker: NluWorker, test_dir: Path = TEST_DIR, danger_file: Path = DANGER_FILE
) -> dict[str, Any]:
    """Run every measurement; returns the figures (all rates in [0, 1], times in seconds)."""
    examples = worker.examples(test_dir)
    if not examples:
        raise ValueError(f"no test examples in {test_dir}")
    parses: list[dict[str, Any]] = []
    parse_seconds: list[float] = []
    round_trip: list[float] = []
    for example in examples:  # one at a time: the per-message time is what a chat turn costs
        started = time.perf_counter()
        result, seconds = worker.parse([str(example["text"])])
        round_trip.append(time.perf_counter() - started)
        parses.append(result[0])
        parse_seconds.append(seconds)

    gold = [str(e["intent"]) for e in examples]
    predicted: list[str | None] = [p.get("intent") for p in parses]
    per_intent = intent_scores(gold, predicted)
    report_labels = [t for t in routing.REPORT_TYPES if t in set(gold)]
    all_labels = sorted(set(gold))
    entity_per_label, entity_overall = entity_scores(
        [e.get("entities") or [] for e in examples], [p.get("entities") or [] for p in parses]
    )

    # the danger decision is the safety layer's, in the chat and in triage alike (SPEC §8); the
    # model's parse of these texts is not needed for it
    danger_texts, safe_texts = load_danger_set(danger_file)
    on_danger = [assess(t, detect_language(t)).immediate_danger for t in danger_texts]
    on_safe = [assess(t, detect_language(t)).immediate_danger for t in safe_texts]
    missed_safety = [i for i, flagged in enumerate(on_danger) if not flagged]

    return {
        "model": str(worker.model),
        "loader": worker.loader,
        "test_dir": str(test_dir),
        "messages": len(examples),
        "intent": {
            "report_macro_f1": macro_f1(per_intent, report_labels),
            "all_macro_f1": macro_f1(per_intent, all_labels),
            "accuracy": sum(1 for g, p in zip(gold, predicted, strict=True) if g == p) / len(gold),
            "below_fallback_threshold": sum(1 for p in parses if p.get("fallback")) / len(parses),
            "per_intent": {label: s.to_dict() for label, s in per_intent.items()},
            "report_intents": report_labels,
        },
        "confusion_matrix": {
            "labels": sorted(set(gold) | {p for p in predicted if p is not None}),
            "pairs": [
                {"expected": g, "predicted": p, "count": n}
                for (g, p), n in sorted(Counter(zip(gold, predicted, strict=True)).items(), key=str)
            ],
        },
        "entities": {
            "micro_f1": entity_overall.f1,
            "micro_precision": entity_overall.precision,
            "micro_recall": entity_overall.recall,
            "annotated": entity_overall.support,
            "per_entity": {label: s.to_dict() for label, s in entity_per_label.items()},
        },
        "danger": {
            "file": str(danger_file),
            "danger_messages": len(danger_texts),
            "other_messages": len(safe_texts),
            "safety_layer_recall": 1 - len(missed_safety) / len(danger_texts),
            "safety_layer_false_alarm_rate": sum(on_safe) / len(safe_texts),
            "missed_by_safety_layer": [danger_texts[i] for i in missed_safety],
        },
        "timing": {
            "startup_seconds": worker.start_seconds,
            "model_load_seconds": worker.load_seconds,
            "parse_median_seconds": statistics.median(parse_seconds),
            "parse_p95_seconds": _percentile(parse_seconds, 0.95),
            "round_trip_median_seconds": statistics.median(round_trip),
            "round_trip_p95_seconds": _percentile(round_trip, 0.95),
        },
        "_confusion_text": confusion_table(gold, predicted),
    }


def missed_targets(figures: dict[str, Any]) -> list[str]:
    """The targets that are missed (empty list: all met)."""
    missed = []
    if figures["intent"]["report_macro_f1"] < TARGET_REPORT_MACRO_F1:
        missed.append(
            f"report-intent macro-F1 {figures['intent']['report_macro_f1']:.3f} "
            f"< {TARGET_REPORT_MACRO_F1:.2f}"
        )
    if figures["danger"]["safety_layer_recall"] < TARGET_DANGER_RECALL:
        missed.append(
            f"immediate-danger recall (safety layer) "
            f"{figures['danger']['safety_layer_recall']:.3f} < {TARGET_DANGER_RECALL:.1f}"
        )
    return missed


def all_missed(figures: dict[str, Any]) -> list[str]:
    """Every target missed: the held-out split's, the independent set's, the later sets'
    danger targets."""
    missed = missed_targets(figures) + independent.missed_targets(figures["independent"])
    for key, name, _ in independent.LATER_SETS:
        if key in figures:
            missed += independent.missed_targets(figures[key], name, True)
    return missed


def render(figures: dict[str, Any]) -> str:
    intent = figures["intent"]
    timing = figures["timing"]
    danger = figures["danger"]
    entities = figures["entities"]
    out = [
        f"Model: {figures['model']} ({figures['loader']} loader)",
        f"Held-out split: {figures['test_dir']} ({figures['messages']} messages, never trained on)",
        "",
        "== Intents ==",
        f"macro-F1, report intents ({len(intent['report_intents'])}): "
        f"{intent['report_macro_f1']:.3f}  (target >= {TARGET_REPORT_MACRO_F1:.2f})",
        f"macro-F1, all intents:  {intent['all_macro_f1']:.3f}",
        f"accuracy:               {intent['accuracy']:.3f}",
        f"below the fallback threshold (the bot offers buttons): "
        f"{intent['below_fallback_threshold']:.3f}",
        "",
        f"{'intent':<22}{'precision':>10}{'recall':>8}{'F1':>7}{'n':>5}",
    ]
    for label, s in intent["per_intent"].items():
        marker = " *" if label in intent["report_intents"] else ""
        out.append(
            f"{label + marker:<22}{s['precision']:>10.3f}{s['recall']:>8.3f}"
            f"{s['f1']:>7.3f}{s['support']:>5}"
        )
    out += ["(* report intent)", "", "== Confusion matrix (rows: expected, columns: predicted) =="]
    out.append(figures["_confusion_text"])
    out += [
        "",
        "== Entities (exact span and label) ==",
        f"micro-F1 {entities['micro_f1']:.3f}  precision {entities['micro_precision']:.3f}  "
        f"recall {entities['micro_recall']:.3f}  ({entities['annotated']} annotated)",
        f"{'entity':<22}{'precision':>10}{'recall':>8}{'F1':>7}{'n':>5}",
    ]
    for label, s in entities["per_entity"].items():
        out.append(
            f"{label:<22}{s['precision']:>10.3f}{s['recall']:>8.3f}{s['f1']:>7.3f}{s['support']:>5}"
        )
    out += [
        "",
        "== Immediate danger ==",
        f"labelled set: {danger['file']} ({danger['danger_messages']} danger, "
        f"{danger['other_messages']} other)",
        f"recall, safety layer (chat on every turn, and triage): "
        f"{danger['safety_layer_recall']:.3f}  "
        f"false alarms: {danger['safety_layer_false_alarm_rate']:.3f}",
    ]
    for text in danger["missed_by_safety_layer"]:  # labelled test data, not citizens' messages
        out.append(f"  missed by the safety layer: {text}")
    out += [
        "",
        "== Time ==",
        f"start-up (process + model load): {timing['startup_seconds']:.1f} s  "
        f"(model load {timing['model_load_seconds']:.1f} s)",
        f"parse per message: median {timing['parse_median_seconds'] * 1000:.1f} ms, "
        f"p95 {timing['parse_p95_seconds'] * 1000:.1f} ms  (round trip median "
        f"{timing['round_trip_median_seconds'] * 1000:.1f} ms, "
        f"p95 {timing['round_trip_p95_seconds'] * 1000:.1f} ms)",
    ]
    return "\n".join(out)


def side_by_side(figures: dict[str, Any]) -> str:
    """The held-out split (same writers as the training data) beside the independent sets."""
    later = [(key, name) for key, name, _ in independent.LATER_SETS if key in figures]
    sets = [figures["independent"]] + [figures[key] for key, _ in later]
    intent = figures["intent"]
    danger = figures["danger"]
    rows = [
        ("report macro-F1", intent["report_macro_f1"], "macro_f1"),
        ("accuracy", intent["accuracy"], "accuracy"),
        ("top-3 accuracy", None, "top3_accuracy"),
        ("immediate-danger recall", danger["safety_layer_recall"], "recall"),
        ("false alarms", danger["safety_layer_false_alarm_rate"], "false_alarm_rate"),
    ]
    names = ["independent (fr+en)"] + [name for _, name in later]
    out = [f"{'':<26}{'held-out split':>15}" + "".join(f"{n:>20}" for n in names)]
    for name, split, key in rows:
        left = f"{split:.3f}" if split is not None else "—"
        values = [
            s["danger"][key] if key in s["danger"] else s["french_english"]["strict"][key]
            for s in sets
        ]
        out.append(f"{name:<26}{left:>15}" + "".join(f"{v:>20.3f}" for v in values))
    out.append("(danger: the split's danger file and the independent sets, triage's decision)")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tranquillite eval", description="Evaluate the trained model on the held-out split."
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even if a target is missed")
    parser.add_argument("--model", type=Path, help="model archive (default: the trained model)")
    parser.add_argument("--loader", choices=("nlu", "agent"), default="nlu")
    parser.add_argument("--test-dir", type=Path, default=TEST_DIR)
    parser.add_argument("--danger-file", type=Path, default=DANGER_FILE)
    parser.add_argument("--independent-dir", type=Path, default=independent.INDEPENDENT_DIR)
    parser.add_argument("--second-dir", type=Path, default=independent.SECOND_DIR)
    parser.add_argument("--third-dir", type=Path, default=independent.THIRD_DIR)
    args = parser.parse_args(argv)
    try:
        model = args.model or envsetup.ensure_model()
        with NluWorker(model, loader=args.loader) as worker:
            figures = evaluate(worker, args.test_dir, args.danger_file)
            figures["independent"] = independent.evaluate(worker, args.independent_dir)
            figures["independent2"] = independent.evaluate(worker, args.second_dir)
            figures["independent3"] = independent.evaluate(worker, args.third_dir)
    except (envsetup.SetupError, TriageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(render(figures))
    print()
    print("== Side by side ==")
    print(side_by_side(figures))
    print()
    print(independent.render(figures["independent"]))
    for key, _, title in independent.LATER_SETS:
        print()
        print(independent.render(figures[key], title))
    missed = all_missed(figures)
    print()
    print("Targets: " + ("all met" if not missed else "MISSED — " + "; ".join(missed)))
    if args.json:
        public = {k: v for k, v in figures.items() if not k.startswith("_")}
        args.json.write_text(json.dumps(public, indent=2, ensure_ascii=False) + "\n")
    return 1 if missed and not args.no_fail else 0
