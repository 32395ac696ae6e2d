"""Train the immediate-danger classifier (safety/danger_model.py) → safety/danger_model.json.

Runs in the Rasa environment (it has scikit-learn and SciPy; the model it writes is read by pure
Python everywhere):

    .venv-rasa/bin/python scripts/train_danger.py            # train, print the CV figures, write
    .venv-rasa/bin/python scripts/train_danger.py --check    # exit 1 if the model is stale

Data: every ``nlu_data/residents/*.jsonl`` line (``text``, ``danger_now``). Never the
held-out sets (``nlu_data/test``, ``nlu_data/danger``, ``nlu_data/independent``).

Choice, by stratified 5-fold cross-validation on the training data only:

* the regularisation ``C`` among a small grid, by average precision of the out-of-fold scores;
* ``threshold``: the highest probability threshold at which the rules OR the model keep a
  cross-validated recall ≥ ``TARGET_RECALL`` (recall first: a miss can cost a life);
* ``ask_threshold``: the highest threshold at which rules OR model keep recall ≥
  ``ASK_RECALL`` — between the two, the chat asks "is someone in danger right now?".
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from safety import assess, default_lexicon  # noqa: E402
from safety.danger_model import HASH_BITS, MODEL_FILE, data_fingerprint, features  # noqa: E402
from safety.detector import MODEL_MIN_WORDS  # noqa: E402
from safety.normalize import normalize_clauses  # noqa: E402

DATA_DIR = ROOT / "nlu_data" / "residents"
TARGET_RECALL = 0.95
ASK_RECALL = 0.965
C_GRID = (4.0, 16.0, 64.0)
FOLDS = 5


def load() -> tuple[list[str], list[int]]:
    texts: list[str] = []
    labels: list[int] = []
    seen: set[str] = set()
    for path in sorted(DATA_DIR.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            text = str(item["text"]).strip()
            if not text or text.lower() in seen:
                continue
            seen.add(text.lower())
            texts.append(text)
            labels.append(1 if item["danger_now"] else 0)
    return texts, labels


def matrix(texts: list[str]):  # type: ignore[no-untyped-def]
    from scipy.sparse import csr_matrix

    sms = dict(default_lexicon().sms)
    rows, cols, values = [], [], []
    for i, text in enumerate(texts):
        for key, value in features(text, sms).items():
            rows.append(i)
            cols.append(key)
            values.append(value)
    return csr_matrix((values, (rows, cols)), shape=(len(texts), 1 << HASH_BITS))


def choose_threshold(probabilities, labels, rules, target):  # type: ignore[no-untyped-def]
    """Highest threshold with recall(rules OR p >= t) >= target; with its false-alarm rate.
    ``probabilities`` is None for messages too short for the model to decide alone."""
    positives = sum(labels)
    negatives = len(labels) - positives
    best = (0.01, 1.0, 1.0)
    for step in range(99, 0, -1):
        t = step / 100
        flagged = [
            r or (p is not None and p >= t) for p, r in zip(probabilities, rules, strict=True)
        ]
        recall = sum(1 for f, y in zip(flagged, labels, strict=True) if f and y) / positives
        false_alarms = (
            sum(1 for f, y in zip(flagged, labels, strict=True) if f and not y) / negatives
        )
        if recall >= target:
            best = (t, recall, false_alarms)
            break
    return best


def train(check_only: bool = False) -> int:
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score
    from sklearn.model_selection import StratifiedKFold

    paths = sorted(DATA_DIR.glob("*.jsonl"))
    fingerprint = data_fingerprint(paths)
    if check_only:
        current = json.loads(MODEL_FILE.read_text(encoding="utf-8")).get("fingerprint")
        if current != fingerprint:
            print(f"stale: {MODEL_FILE.name} was trained on {current}, data is {fingerprint}")
            return 1
        print("up to date")
        return 0

    texts, labels = load()
    y = np.array(labels)
    x = matrix(texts)
    rules = [assess(t, model=None).immediate_danger for t in texts]
    sms = default_lexicon().sms
    # known words: the words of the whole corpus (the shipped model's vocabulary)
    vocabulary = {w for t in texts for c in normalize_clauses(t, sms) for w in c.split()}
    long_enough = [
        sum(1 for c in normalize_clauses(t, sms) for w in c.split() if w in vocabulary)
        >= MODEL_MIN_WORDS
        for t in texts
    ]
    folds = list(StratifiedKFold(FOLDS, shuffle=True, random_state=0).split(x, y))

    def out_of_fold(c: float):  # type: ignore[no-untyped-def]
        scores = np.zeros(len(texts))
        for train_idx, test_idx in folds:
            model = LogisticRegression(
                C=c, class_weight="balanced", solver="liblinear", max_iter=1000
            )
            model.fit(x[train_idx], y[train_idx])
            scores[test_idx] = model.predict_proba(x[test_idx])[:, 1]
        return scores

    results = {}
    for c in C_GRID:
        scores = out_of_fold(c)
        results[c] = (average_precision_score(y, scores), scores)
        print(f"C={c:<5} cross-validated average precision {results[c][0]:.3f}")
    best_c = max(C_GRID, key=lambda c: results[c][0])
    scores = [
        float(p) if ok else None for p, ok in zip(results[best_c][1], long_enough, strict=True)
    ]
    threshold, recall, false_alarms = choose_threshold(scores, labels, rules, TARGET_RECALL)
    ask, ask_recall, ask_false = choose_threshold(
        [float(p) for p in results[best_c][1]], labels, rules, ASK_RECALL
    )
    ask = min(ask, threshold)
    rules_recall = sum(1 for r, g in zip(rules, labels, strict=True) if r and g) / sum(labels)
    rules_false = sum(1 for r, g in zip(rules, labels, strict=True) if r and not g) / (
        len(labels) - sum(labels)
    )

    final = LogisticRegression(C=best_c, class_weight="balanced", solver="liblinear", max_iter=1000)
    final.fit(x, y)
    coefficients = final.coef_[0]
    nonzero = np.nonzero(np.abs(coefficients) > 1e-4)[0]
    figures = {
        "messages": len(texts),
        "danger_messages": int(sum(labels)),
        "c": best_c,
        "cv_average_precision": round(float(results[best_c][0]), 4),
        "cv_rules_recall": round(rules_recall, 4),
        "cv_rules_false_alarms": round(rules_false, 4),
        "cv_recall": round(recall, 4),
        "cv_false_alarms": round(false_alarms, 4),
        "cv_ask_recall": round(ask_recall, 4),
        "cv_ask_false_alarms": round(ask_false, 4),
    }
    model = {
        "version": 1,
        "about": "written by scripts/train_danger.py; do not edit (see safety/danger_model.py)",
        "fingerprint": fingerprint,
        "threshold": threshold,
        "ask_threshold": ask,
        "bias": round(float(final.intercept_[0]), 6),
        "figures": figures,
        "weights": {str(int(k)): round(float(coefficients[k]), 5) for k in nonzero},
    }
    MODEL_FILE.write_text(json.dumps(model, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"C={best_c}; rules alone: recall {rules_recall:.3f}, false alarms {rules_false:.3f}")
    print(
        f"threshold {threshold:.2f}: recall {recall:.3f}, false alarms {false_alarms:.3f} "
        f"(cross-validated, rules OR model)"
    )
    print(f"ask threshold {ask:.2f}: recall {ask_recall:.3f}, false alarms {ask_false:.3f}")
    print(f"{len(nonzero)} weights → {MODEL_FILE.relative_to(ROOT)}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the model is stale")
    return train(check_only=parser.parse_args().check)


if __name__ == "__main__":
    sys.exit(main())
