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
  whether someone is in danger right now;
* a message that says it is not happening now (dated in the past, over, a question, from a
  screen: :func:`safety.detector.said_not_now`) needs ``not_now_threshold`` to be a danger;
  below it, it is uncertain. Both thresholds are chosen together by cross-validation, for the
  same recall.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import SafetyDataError
from .normalize import normalize_clauses, squeeze_pattern

MODEL_FILE = Path(__file__).with_name("danger_model.json")
HASH_BITS = 20
_MASK = (1 << HASH_BITS) - 1
CHAR_NGRAMS = (3, 4, 5)
MAX_CHARS = 4000
# The version of the features below: a model trained on other features is refused.
FEATURES_VERSION = 3

# Cues of time, of resolution, of a question or a story (issue 12): a word alone says little
# ("frappe" in a story of 2019 or of tonight), these say when and how it is told. Each cue that
# matches a clause of the normalised text (lowercase, no accents, SMS expanded, letters
# squeezed) adds one feature "k:<name>"; the model weighs them. They belong to the model, not to
# the lexicon (the rules' markers): changing them means retraining (FEATURES_VERSION).
_CUES = {
    # dated in the past
    "past": r"\b(hier|avant hier|l autre (jour|soir|nuit)|la (semaine|nuit|fois) derniere"
    r"|le (mois|week end|weekend|soir) dernier|(l an|l annee|l ete|l hiver|le printemps"
    r"|l automne) (derniere?|passee?)|(lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche)"
    r"( soir| matin)? dernier|il y a (\d+|un|une|deux|trois|quatre|cinq|six|dix|quelques"
    r"|plusieurs) (jours?|semaines?|mois|ans?|annees?|heures?)|en (19|20)\d\d|autrefois"
    r"|il y a longtemps|quand j etais|yesterday|last (week|month|year|night|weekend|summer"
    r"|time|saturday|sunday|friday)|ago|gestern|letzte woche|ieri|ayer|la semana pasada"
    r"|gisteren|vorige week|a l epoque|ca s est passe|it happened)\b",
    # something that lasts or repeats (told to be followed up, not happening this minute)
    "habitual": r"\b(depuis (\d+|des|plusieurs|quelques|deux|trois|un|une|toujours|longtemps"
    r"|le|la|que)|tous les (soirs|jours|matins|week ends|weekends)|chaque (soir|jour|matin"
    r"|nuit|semaine|fois)|souvent|regulierement|toujours|for (years|months|weeks)"
    r"|every (night|day|morning|evening|weekend)|ca dure|plusieurs fois|h24)\b",
    "already": r"\b(deja|already|used to|avant il)\b",
    # happening now
    "present": r"\b(en ce moment|maintenant|actuellement|tout de suite|a l instant"
    r"|en train de|(encore|toujours) (la|ici|dans|chez|devant|derriere|dehors)"
    r"|(il|elle|ils|elles) (est|sont) (la|ici|devant|derriere|dehors|en bas)|vite|venez"
    r"|ce soir|cette nuit|right now|now|currently|hurry|quick|still (here|there|inside"
    r"|outside)|jetzt|sofort|schnell|adesso|subito|ahora|nu|snel|in corso|en direct|live)\b",
    "just": r"\b(vient de|viennent de|viens de|venons de|just|a l instant"
    r"|il y a (\d+|deux|trois|cinq|dix|quelques) minutes|minutes ago"
    r"|depuis (\d+|dix|cinq|deux|une) (minutes?|min|heures?|h))\b",
    # it is over, it was nothing
    "resolved": r"\b((il|elle|tout le monde|ils|elles|he s|she s|everyone is|he is|she is|all)"
    r" (va|vont|est|is|are|s) (bien|fine|ok|safe|sain)|tout va bien|plus de peur que de mal"
    r"|fausse alerte|pour rien|en fait|turned out|all fine|rien (n est|de) (arrive|grave)"
    r"|nothing happened|c etait (juste|seulement|un|une|que|sa|son)|it was (just|only)"
    r"|plus personne|il n y a plus|no longer|est rentre|calme|calm|rassure|rassuree)\b",
    # a question about what to do, a hypothesis
    "question": r"\b(est ce que|est ce qu|que faut il|qu est ce qu il faut|comment (faire|on|je"
    r"|puis)|je voudrais (savoir|comprendre)|j aimerais savoir|existe t il|y a t il|peut on"
    r"|pouvez vous|should i|how (do|can|to)|is there|what (should|do|can)|who (do|should)"
    r"|si un jour|au cas ou|what if|par curiosite|just curious)\b",
    # told from a screen, a book, a rumour
    "fiction": r"\b(film|films|serie|series|jeu video|jeux video|jeu|game|games|tele|tv"
    r"|television|reportage|documentaire|news|journal|article|facebook|rumeur|rumour|rumor"
    r"|movie|show|tiktok|video|roman|livre|cinema|scene|theatre|spiel|pelicula|noticias"
    r"|nachricht|notizia)\b",
    "joke": r"\b(lol|mdr|ptdr|haha|hahaha|mort de rire|je rigole|blague|joke|kidding|pour rire"
    r"|une facon de parler|manner of speaking)\b",
    # the forms of a letter or a procedure
    "letter": r"\b(je voudrais signaler|je souhaite signaler|je tiens a signaler"
    r"|pour information|je vous ecris|madame monsieur|monsieur le|madame la|bonjour"
    r"|cordialement|respectueusement|merci d avance|porter plainte|deposer plainte"
    r"|la procedure|l assurance|assurance|declaration|attestation|insurance)\b",
    "help": r"\b(aidez moi|aidez nous|au secours|help|a l aide|appelez|envoyez|svp"
    r"|please help|helft|aiuto|socorro|ayuda|hilfe)\b",
}
CUES = {name: re.compile(squeeze_pattern(source)) for name, source in _CUES.items()}
# a word right after one of these (at most two words between) is read as negated: "n:<word>"
NEGATORS = frozenset(
    {"pas", "plus", "jamais", "aucun", "aucune", "sans", "not", "no", "never", "rien", "ni"}
    | {"nobody", "nothing", "kein", "keine", "nicht", "niet", "geen", "non", "sin"}
)
NEGATION_SPAN = 3


def _tokens(text: str, sms: Mapping[str, str] | None = None) -> list[str]:
    words: list[str] = []
    for clause in normalize_clauses(text[:MAX_CHARS], sms):
        words.extend(clause.split())
        words.append("|")  # a clause boundary is a token: bigrams do not cross it
    return words


def cues(text: str, sms: Mapping[str, str] | None = None) -> frozenset[str]:
    """The names of the :data:`CUES` found in a message."""
    return clause_cues(normalize_clauses(text[:MAX_CHARS], sms))


def clause_cues(clauses: Sequence[str]) -> frozenset[str]:
    """The names of the :data:`CUES` found in normalised clauses."""
    return frozenset(name for name, cue in CUES.items() if any(map(cue.search, clauses)))


def features(text: str, sms: Mapping[str, str] | None = None) -> dict[int, float]:
    """Hashed feature counts (log-scaled) of a message: words, word pairs and triples, negated
    words, character n-grams inside words (padded), cues of time and telling (:data:`CUES`),
    alone and in pairs, and a few shape cues (exclamations, question marks, capitals, length)."""
    clauses = normalize_clauses(text[:MAX_CHARS], sms)
    words: list[str] = []
    for clause in clauses:
        words.extend(clause.split())
        words.append("|")
    grams: list[str] = []
    for i, word in enumerate(words):
        if word == "|":
            continue
        grams.append("w:" + word)
        nxt = words[i + 1] if i + 1 < len(words) else "|"
        if nxt != "|":
            grams.append("b:" + word + " " + nxt)
            after = words[i + 2] if i + 2 < len(words) else "|"
            if after != "|":
                grams.append("t:" + word + " " + nxt + " " + after)
        if word not in NEGATORS and any(
            w in NEGATORS for w in words[max(0, i - NEGATION_SPAN) : i]
        ):
            grams.append("n:" + word)
        padded = f" {word} "
        for n in CHAR_NGRAMS:
            for j in range(max(1, len(padded) - n + 1)):
                grams.append(f"c{n}:" + padded[j : j + n])
    letters = [ch for ch in text if ch.isalpha()]
    found = [name for name, cue in CUES.items() if any(map(cue.search, clauses))]
    grams.extend("k:" + name for name in found)
    # cues weigh together ("past" with "present": it started before and is still going on)
    grams.extend("kk:" + a + "&" + b for i, a in enumerate(found) for b in found[i + 1 :])
    if not {"present", "just"} & set(found):
        grams.append("k:not_present")
    if "!" in text:
        grams.append("s:exclamation")
    if "?" in text:
        grams.append("s:question")
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
    # below this, a long story the rules flag (not "now", not suicide) gets the question instead
    # of the alarm (safety.detector); 0 turns it off
    veto_threshold: float = 0.0
    # what a message that says it is not happening now needs to be a danger on the model's word
    # alone (safety.detector.said_not_now); 0: the same as ``threshold``
    not_now_threshold: float = 0.0

    def threshold_for(self, not_now: bool) -> float:
        """The probability from which the model alone raises the alarm."""
        return max(self.threshold, self.not_now_threshold) if not_now else self.threshold

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
    if not isinstance(data, dict) or data.get("version") != FEATURES_VERSION:
        raise SafetyDataError(
            f"danger model: expected a mapping with version: {FEATURES_VERSION} (the features"
            " it was trained on): run scripts/train_danger.py"
        )
    try:
        weights = {int(k): float(v) for k, v in data["weights"].items()}
        model = DangerModel(
            weights=weights,
            bias=float(data["bias"]),
            threshold=float(data["threshold"]),
            ask_threshold=float(data["ask_threshold"]),
            fingerprint=str(data["fingerprint"]),
            figures={str(k): float(v) for k, v in (data.get("figures") or {}).items()},
            veto_threshold=float(data.get("veto_threshold", 0.0)),
            not_now_threshold=float(data.get("not_now_threshold", 0.0)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SafetyDataError(f"danger model: {exc}") from exc
    if not 0.0 < model.ask_threshold <= model.threshold < 1.0:
        raise SafetyDataError("danger model: 0 < ask_threshold <= threshold < 1 is required")
    if not 0.0 <= model.veto_threshold < model.threshold:
        raise SafetyDataError("danger model: 0 <= veto_threshold < threshold is required")
    if model.not_now_threshold and not model.threshold <= model.not_now_threshold < 1.0:
        raise SafetyDataError("danger model: threshold <= not_now_threshold < 1 is required")
    return model


@lru_cache(maxsize=1)
def default_model() -> DangerModel:
    try:
        return parse_model(json.loads(MODEL_FILE.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise SafetyDataError(f"{MODEL_FILE.name}: {exc}") from exc
