"""Does the report classifier gain from the danger model's writers? Cross-validation on the
training data only (issue 12; run in the Rasa environment):

    .venv-rasa/bin/python scripts/compare_training_data.py [--json FILE]

``base``: the Rasa training examples as they were before 2026-12-03 (seventh session) —
``nlu_data/train/*.yml`` without the messages of ``nlu_data/residents/danger_*.jsonl`` and
``hard_negatives.jsonl``; ``extra``: those messages (French and English; written for the
danger model by twenty-nine writers, each file a writer with a voice or a topic of its own).
Both are read from the training data only: nothing under ``nlu_data/test``, ``danger`` or
``independent*`` is read.

1. **New writers** (grouped 5-fold over the extra files, so that a file's messages are all on
   one side): each fold's held-out files are scored by the shipped classifier trained on
   ``base`` alone (A) and on ``base`` + the other folds' files (B).
2. **The same writers** (stratified 5-fold over ``base``, seed 42): each fold's held-out part
   scored by the classifier trained on the rest of ``base`` (A) and on it + every extra file (B).

The classifier is ``bot.linear_intent.LinearIntentClassifier`` as configured in
``bot/config.yml``, on spaCy md sentence vectors (``scripts/compare_classifiers.py``'s
``LinearComponent``). Prints per fold and the means: report macro-F1 (the ten report types),
accuracy, top-3 accuracy.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import compare_classifiers as cc  # noqa: E402
from gen_training import normalise  # noqa: E402

CORPUS = ROOT / "nlu_data" / "residents"
LANGUAGES = ("fr", "en")


def extra_files() -> list[Path]:
    return sorted(
        p
        for p in CORPUS.glob("*.jsonl")
        if p.name.startswith("danger_") or p.name == "hard_negatives.jsonl"
    )


def build() -> tuple[cc.Corpus, np.ndarray, np.ndarray]:
    """The corpus reordered base first, then extra; the indices of base; each extra message's
    file (its writer)."""
    writer: dict[str, int] = {}
    for number, path in enumerate(extra_files()):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and json.loads(line)["language"] in LANGUAGES:
                writer.setdefault(normalise(" ".join(json.loads(line)["text"].split())), number)
    corpus = cc.load_corpus()  # nlu_data/train as it is now: the extra messages are in it
    keys = [normalise(text) for text in corpus.texts]
    order = [i for i, k in enumerate(keys) if k not in writer]
    n_base = len(order)
    order += [i for i, k in enumerate(keys) if k in writer]
    corpus.texts = [corpus.texts[i] for i in order]
    corpus.labels = corpus.labels[order]
    groups = np.asarray([writer[keys[i]] for i in order[n_base:]])
    return corpus, np.arange(n_base), groups


def score(corpus: cc.Corpus, train: np.ndarray, test: np.ndarray) -> dict[str, float]:
    component = cc.LinearComponent(corpus, "shipped", "md")
    component.fit(train)
    predicted, top3 = cc.from_proba(corpus, component.proba(test))
    return cc.scores(corpus, corpus.labels[test], predicted, top3)


def main() -> int:
    from sklearn.model_selection import GroupKFold, StratifiedKFold

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write every figure to this file")
    args = parser.parse_args()
    corpus, base, groups = build()
    extra = np.arange(len(base), len(corpus.texts))
    print(f"base {len(base)} examples, extra {len(extra)} from {len(extra_files())} files")
    cc.shipped_spacy_vectors(corpus)
    results: dict[str, list[dict[str, float]]] = {
        k: [] for k in ("A new", "B new", "A same", "B same")
    }
    for fold, (train, test) in enumerate(GroupKFold(5).split(extra, groups=groups), start=1):
        for name, training in (("A new", base), ("B new", np.concatenate([base, extra[train]]))):
            results[name].append(score(corpus, training, extra[test]))
            print(f"fold {fold} {name}: {results[name][-1]}", flush=True)
    splitter = StratifiedKFold(5, shuffle=True, random_state=42)
    for fold, (train, test) in enumerate(splitter.split(base, corpus.labels[base]), start=1):
        for name, training in (
            ("A same", base[train]),
            ("B same", np.concatenate([base[train], extra])),
        ):
            results[name].append(score(corpus, training, base[test]))
            print(f"fold {fold} {name}: {results[name][-1]}", flush=True)
    for name, rows in results.items():
        means = {m: round(float(np.mean([r[m] for r in rows])), 4) for m in rows[0]}
        print(f"{name}: {means}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
