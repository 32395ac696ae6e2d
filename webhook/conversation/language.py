"""Language of a conversation: langdetect on typed text, switching only when sure.

French is the default. A message moves the conversation to another language only when it is
long enough (letters, not punctuation or digits) and langdetect is confident; short or mixed
messages ("ok", "merci", "help", "Lons-le-Saunier") keep the language the conversation already
has. langdetect is randomised: the seed is fixed so the same text always gives the same answer.

langdetect reads letter sequences, which short messages mislead ("il rentre, il va me frapper"
looks Italian to it, "Il y a des dealers en bas de chez moi" Spanish). Its guess is checked
against the little words of each language ("il", "de", "chez" / "the", "our", "last"...): a
guess is refused when another language's little words are more numerous, and a guess below
the usual confidence is taken when its little words clearly dominate ("Hello, someone broke
into our campervan in Manosque last night").
"""

from __future__ import annotations

import logging
import re
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
# below MIN_PROBABILITY, a guess this likely is taken when its little words are at least
# FUNCTION_WORD_MARGIN more than any other language's
MIN_PROBABILITY_WITH_WORDS = 0.5
FUNCTION_WORD_MARGIN = 3

# The commonest little words of each language (articles, pronouns, prepositions, auxiliaries).
FUNCTION_WORDS: dict[str, frozenset[str]] = {
    "fr": frozenset(
        "le la les l un une des du de d et est il ils elle elles je j me m te t se s ne n pas "
        "en y a au aux ce c ca ça qui que qu mon ma mes ton ta son sa ses nous vous on chez moi "
        "toi lui leur dans sur pour avec par mais ou où plus très tout tous cette sont va vont "
        "ai avons avez ont suis était fait bas voisin voisins".split()
    ),
    "en": frozenset(
        "the a an and is are was were i my me you he she it we they our their his her in on at "
        "of to for with this that from by not have has had someone somebody last into there "
        "what where when please".split()
    ),
    "de": frozenset(
        "der die das ein eine einen und ist ich mein meine nicht mit auf im den dem des zu von "
        "wurde hat wir sie er es bei".split()
    ),
    "nl": frozenset(
        "de het een en is ik mijn niet met op van te bij zijn was heeft wij hij zij er".split()
    ),
    "it": frozenset(
        "il lo la i gli le un una uno di del della dei che è e non per con su mi ti ci si sono "
        "ho ha hanno nel nella al alla da questo questa mio mia anche come".split()
    ),
    "es": frozenset(
        "el la los las un una unos unas de del que y en es por con para no se me te lo le mi "
        "su al está están esta hay muy pero como yo a".split()
    ),
}
_WORD_SPLIT = re.compile(r"[^\w]+")

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
    if lang not in SUPPORTED_LANGUAGES or probability < MIN_PROBABILITY_WITH_WORDS:
        return Detection(None, probability, letters)
    scores = function_word_scores(text)
    others = max((n for code, n in scores.items() if code != lang), default=0)
    if probability >= MIN_PROBABILITY:
        sure = scores[lang] >= others
    else:
        sure = scores[lang] >= FUNCTION_WORD_MARGIN and scores[lang] - others >= (
            FUNCTION_WORD_MARGIN
        )
    return Detection(lang if sure else None, probability, letters)


def function_word_scores(text: str) -> dict[str, int]:
    """How many of the text's words are little words of each supported language."""
    words = [w for w in _WORD_SPLIT.split(text.lower()) if w]
    return {code: sum(1 for w in words if w in table) for code, table in FUNCTION_WORDS.items()}


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
