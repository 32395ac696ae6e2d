"""Safety layer (SPEC §3): immediate-danger check run on every turn, before any form logic.

Pure Python (standard library + PyYAML): importable from the Rasa action server (Python 3.10)
and from the gateway (Python 3.11). It must never import rasa or rasa_sdk.

    >>> from safety import assess, emergency_message
    >>> a = assess("au secours il a un couteau")
    >>> a.immediate_danger, a.helplines[:2]
    (True, ('17', '112'))
"""

from __future__ import annotations

from .detector import (
    MODEL_RULE_ID,
    DangerAssessment,
    assess,
    confirmed,
    dated_in_the_past,
    helplines_for,
)
from .errors import SafetyDataError, SafetyError
from .lexicon import Lexicon, default_lexicon, load_lexicon_file, parse_lexicon
from .messages import (
    DANGER_NO,
    DANGER_YES,
    SUPPORTED_LANGUAGES,
    Helpline,
    Reply,
    danger_denied,
    danger_question,
    emergency_message,
    load_helplines,
    load_messages,
)

__all__ = [
    "DANGER_NO",
    "DANGER_YES",
    "MODEL_RULE_ID",
    "SUPPORTED_LANGUAGES",
    "DangerAssessment",
    "Helpline",
    "Lexicon",
    "Reply",
    "SafetyDataError",
    "SafetyError",
    "assess",
    "confirmed",
    "danger_denied",
    "danger_question",
    "dated_in_the_past",
    "default_lexicon",
    "emergency_message",
    "helplines_for",
    "load_helplines",
    "load_lexicon_file",
    "load_messages",
    "parse_lexicon",
]
