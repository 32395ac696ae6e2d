"""The immediate-danger classifier: a linear model beside the rules (SPEC §3; issue 12).

The rules of :mod:`safety.detector` catch danger told with the usual words; residents often tell
it without them ("il a sorti un truc de sa poche", "elle ne se réveille pas", "demain je ne serai
plus un problème"). This model — logistic regression over hashed word and character n-grams of the
normalised text — is trained on the labelled messages of ``nlu_data/residents/`` by
``scripts/train_danger.py`` (scikit-learn, in the Rasa environment) and shipped as
``safety/danger_model.json``: weights, the two thresholds chosen by cross-validation on the
training data only, and the fingerprint of the data it was trained on.

Inference is pure Python (standard library), so the gateway, the action server and ``triage``
run the very same model on every turn, with or without Rasa:

* ``probability ≥ threshold`` → immediate danger (recall first: the threshold is the highest that
  keeps the cross-validated recall of rules + model at the target);
* ``ask_threshold ≤ probability < threshold`` → uncertain: the chat asks once, with buttons,
  whether someone is in danger right now.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import SafetyDataError
from .normalize import normalize_clauses

MODEL_FILE = Path(__file__).with_name("danger_model.json")
HASH_BITS = 20
_MASK = (1 << HASH_BITS) - 1
CHAR_NGRAMS = (3, 4, 5)
MAX_CHARS = 4000


def _tokens(text: str, sms: Mapping[str, str] | None = None) -> list[str]:
    words: list[str] = []
    for clause in normalize_clauses(text[:MAX_CHARS], sms):
        words.extend(clause.split())
        words.append("|")  # a clause boundary is a token: bigrams do not cross it
    return words


def features(text: str, sms: Mapping[str, str] | None = None) -> dict[int, float]:
    """Hashed feature counts (log-scaled) of a message: words, word pairs, character n-grams
    inside words (padded), and a few shape cues (exclamations, capitals, length)."""
    words = _tokens(text, sms)
    grams: list[str] = []
    for i, word in enumerate(words):
        if word == "|":
            continue
        grams.append("w:" + word)
        nxt = words[i + 1] if i + 1 < len(words) else "|"
        if nxt != "|":
            grams.append("b:" + word + " " + nxt)
        padded = f" {word} "
        for n in CHAR_NGRAMS:
            for j in range(max(1, len(padded) - n + 1)):
                grams.append(f"c{n}:" + padded[j : j + n])
    letters = [ch for ch in text if ch.isalpha()]
    if "!" in text:
        grams.append("s:exclamation")
    if len(letters) >= 4 and sum(ch.isupper() for ch in letters) / len(letters) > 0.6:
        grams.append("s:capitals")
    real_words = sum(1 for w in words if w != "|")
    grams.append("s:len" + str(min(6, int(math.log2(real_words + 1)))))
    counts: dict[int, float] = {}
    for gram in grams:
        key = zlib.crc32(gram.encode("utf-8")) & _MASK
        counts[key] = counts.get(key, 0.0) + 1.0
    # sublinear counts, then L2 normalisation: long stories and short cries weigh alike
    for key, value in counts.items():
        counts[key] = 1.0 + math.log(value)
    norm = math.sqrt(sum(v * v for v in counts.values())) or 1.0
    return {k: v / norm for k, v in counts.items()}


@dataclass(frozen=True)
class DangerModel:
    weights: dict[int, float]
    bias: float
    threshold: float
    ask_threshold: float
    fingerprint: str
    figures: dict[str, float]

    def probability(self, text: str, sms: Mapping[str, str] | None = None) -> float:
        score = self.bias + sum(
            self.weights.get(k, 0.0) * v for k, v in features(text, sms).items()
        )
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, score))))

    def known_words(self, text: str, sms: Mapping[str, str] | None = None) -> int:
        """How many words of the message the model has seen in training: on text it does not
        know (garbage, another alphabet, markup) its probability is only its prior."""
        return sum(
            1
            for word in _tokens(text, sms)
            if word != "|" and (zlib.crc32(("w:" + word).encode("utf-8")) & _MASK) in self.weights
        )


def data_fingerprint(paths: Iterable[Path]) -> str:
    """Content hash of the training files (names and bytes), to tell a stale model."""
    digest = zlib.crc32(b"")
    for path in sorted(paths):
        digest = zlib.crc32(path.name.encode("utf-8"), digest)
        digest = zlib.crc32(path.read_bytes(), digest)
    return f"{digest:08x}"


def parse_model(data: object) -> DangerModel:
    if not isinstance(data, dict) or data.get("version") != 1:
        raise SafetyDataError("danger model: expected a mapping with version: 1")
    try:
        weights = {int(k): float(v) for k, v in data["weights"].items()}
        model = DangerModel(
            weights=weights,
            bias=float(data["bias"]),
            threshold=float(data["threshold"]),
            ask_threshold=float(data["ask_threshold"]),
            fingerprint=str(data["fingerprint"]),
            figures={str(k): float(v) for k, v in (data.get("figures") or {}).items()},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SafetyDataError(f"danger model: {exc}") from exc
    if not 0.0 < model.ask_threshold <= model.threshold < 1.0:
        raise SafetyDataError("danger model: 0 < ask_threshold <= threshold < 1 is required")
    return model


@lru_cache(maxsize=1)
def default_model() -> DangerModel:
    try:
        return parse_model(json.loads(MODEL_FILE.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise SafetyDataError(f"{MODEL_FILE.name}: {exc}") from exc
