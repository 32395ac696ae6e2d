"""Language detection (langdetect, fixed seed, sure-only switching) and the token bucket."""

from __future__ import annotations

import pytest

from webhook.conversation import language
from webhook.conversation.ratelimit import TokenBucketLimiter, retry_after_header


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hilfe, mein Auto wurde in der Nacht aufgebrochen", "de"),
        ("Mijn fiets is gestolen bij het station vanmorgen", "nl"),
        ("Mi hanno rubato la borsa in macchina stamattina", "it"),
        ("Me robaron el bolso en la playa esta mañana", "es"),
        ("My wallet was stolen at the market this morning", "en"),
        ("Mon voisin fait du bruit toute la nuit depuis une semaine", "fr"),
    ],
)
def test_long_clear_messages_are_detected(text: str, expected: str) -> None:
    detection = language.detect(text)
    assert detection.language == expected
    assert detection.probability >= language.MIN_PROBABILITY
    assert language.next_language(text, "fr") == expected


@pytest.mark.parametrize(
    "text",
    ["ok merci", "Hilfe!", "help me", "Lons-le-Saunier", "12 rue de la Paix 39000", "🙂🙂🙂"],
)
def test_short_messages_keep_the_conversation_language(text: str) -> None:
    assert language.detect(text).language is None
    assert language.next_language(text, "fr") == "fr"
    assert language.next_language(text, "de") == "de"


def test_unsupported_language_keeps_the_current_one() -> None:
    polish = "Ukradziono mi portfel na targu dzisiaj rano, pomocy"
    assert language.detect(polish).language is None
    assert language.next_language(polish, "fr") == "fr"


def test_detection_is_deterministic() -> None:
    text = "Bonjour, je voudrais signaler des tags sur le mur de l'école"
    results = {language.detect(text) for _ in range(20)}
    assert len(results) == 1


def test_normalise() -> None:
    assert language.normalise("de-CH") == "de"
    assert language.normalise("pt-BR") == "fr"
    assert language.normalise(None) == "fr"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_burst_refill_and_retry_after() -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(burst=3, per_minute=30, clock=clock)  # one token per 2 s
    assert [limiter.hit("a").allowed for _ in range(4)] == [True, True, True, False]
    denied = limiter.hit("a")
    assert not denied.allowed and denied.retry_after == pytest.approx(2.0)
    assert retry_after_header(denied.retry_after) == "2"
    assert limiter.hit("b").allowed  # per sender
    clock.now += 1.0
    assert not limiter.hit("a").allowed
    clock.now += 1.0
    assert limiter.hit("a").allowed
    clock.now += 3600
    assert [limiter.hit("a").allowed for _ in range(4)] == [True, True, True, False]  # capped


def test_token_bucket_memory_is_bounded() -> None:
    limiter = TokenBucketLimiter(burst=1, per_minute=1, max_keys=100, clock=Clock())
    for i in range(1000):
        limiter.hit(f"sender-{i}")
    assert len(limiter) == 100
    assert not limiter.hit("sender-999").allowed  # recent ones are remembered


def test_token_bucket_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        TokenBucketLimiter(burst=0, per_minute=10)
    with pytest.raises(ValueError):
        TokenBucketLimiter(burst=5, per_minute=0)


@pytest.mark.parametrize(
    "text",
    [
        "il rentre, il va me frapper",
        "Il y a des dealers en bas de chez moi",
        "Mes voisins mettent la musique à fond",
    ],
)
def test_french_little_words_outweigh_a_wrong_guess(text: str) -> None:
    """langdetect takes these for Italian or Spanish; their French little words say otherwise."""
    assert language.next_language(text, "fr") == "fr"


def test_an_english_message_langdetect_is_unsure_of_is_english() -> None:
    text = "Hello, someone broke into our campervan in Manosque last night and stole our passports"
    assert language.detect(text).probability < language.MIN_PROBABILITY
    assert language.next_language(text, "fr") == "en"
