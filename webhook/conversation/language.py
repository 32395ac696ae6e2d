"""Language of a conversation: langdetect on typed text, switching only when sure.

French is the default. A message moves the conversation to another language only when it is
long enough (letters, not punctuation or digits) and langdetect is confident; short or mixed
messages ("ok", "merci", "help", "Lons-le-Saunier") keep the language the conversation already
has. langdetect is randomised: the seed is fixed so the same text always gives the same answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from langdetect import DetectorFactory, LangDetectException, detect_langs
from langdetect.detector_factory import init_factory

logger = logging.getLogger(__name__)

DEFAULT_LANGUAGE = "fr"
# Languages of the product (SPEC §6): French first, English understood and answered by Rasa,
# German, Dutch, Italian and Spanish served by the guided mode and the emergency numbers.
SUPPORTED_LANGUAGES: tuple[str, ...] = ("fr", "en", "de", "nl", "it", "es")
RASA_LANGUAGES: frozenset[str] = frozenset({"fr", "en"})
GUIDED_ONLY_LANGUAGES: frozenset[str] = frozenset({"de", "nl", "it", "es"})
MIN_LETTERS = 20
MIN_PROBABILITY = 0.90

DetectorFactory.seed = 0
# Load the language profiles now (about 0.5 s), not during a citizen's first message.
init_factory()


@dataclass(frozen=True)
class Detection:
    language: str | None  # None: not sure
    probability: float
    letters: int


def count_letters(text: str) -> int:
    return sum(1 for ch in text if ch.isalpha())


def detect(text: str) -> Detection:
    """Best guess for ``text``; ``language`` is None unless it is a supported language and the
    text is long enough and the probability high enough."""
    letters = count_letters(text)
    if letters < MIN_LETTERS:
        return Detection(None, 0.0, letters)
    try:
        candidates = detect_langs(text)
    except LangDetectException:
        return Detection(None, 0.0, letters)
    if not candidates:
        return Detection(None, 0.0, letters)
    best = candidates[0]
    lang = str(best.lang)
    probability = float(best.prob)
    if lang not in SUPPORTED_LANGUAGES or probability < MIN_PROBABILITY:
        return Detection(None, probability, letters)
    return Detection(lang, probability, letters)


def next_language(text: str, current: str) -> str:
    """The conversation's language after ``text``: the detected one if sure, else ``current``."""
    detected = detect(text).language
    if detected is None or detected == current:
        return current
    logger.info("conversation language: %s -> %s", current, detected)
    return detected


def normalise(code: str | None) -> str:
    """An ISO 639-1 code of a supported language ("de-CH" -> "de"), French otherwise."""
    value = (code or "").lower().replace("_", "-").split("-")[0]
    return value if value in SUPPORTED_LANGUAGES else DEFAULT_LANGUAGE
