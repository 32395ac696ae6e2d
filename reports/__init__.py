"""The report model: one description of every report type for every channel (SPEC §1, §2).

Pure (standard library, PyYAML and the pure ``routing`` package), importable from the gateway's
environment and from the Rasa action server's. What lives here, once:

- the questions of each report type, their wording (fr, en; the guided mode's six languages),
  choices and synonyms, conditions, optional questions (model.yml, :mod:`reports.model`);
- reading and checking answers — typed or tapped — dates, traces (:mod:`reports.answers`,
  :mod:`reports.dates`), the OTV rules of each force (:mod:`reports.otv`);
- what a description already says (:mod:`reports.extract`);
- the routing flags of a report, from its answers (:mod:`reports.flags`);
- the ticket fields and how they are shown (:mod:`reports.fields`);
- the commune-resolution policy (:mod:`reports.communes`), ticket references
  (:mod:`reports.reference`), today's date in France (:mod:`reports.clock`).
"""

from reports.answers import (
    Answer,
    add_to_description,
    applicable,
    find_traces,
    holds_expected,
    next_missing,
    read_answer,
    read_choice,
    read_confirmation,
    reads_as_cancel,
    refused,
    validate,
)
from reports.clock import today
from reports.extract import corrections, extract
from reports.fields import (
    advice,
    contact_wanted,
    correction_text,
    display,
    label,
    problem_text,
    ticket_fields,
)
from reports.flags import DANGER_SIGNAL, flags, text_flags
from reports.flags import cues as flags_cues
from reports.model import LANGUAGES, SKIP, Form, ModelError, Question, alternatives, model

__all__ = [
    "DANGER_SIGNAL",
    "LANGUAGES",
    "SKIP",
    "Answer",
    "Form",
    "ModelError",
    "Question",
    "add_to_description",
    "advice",
    "alternatives",
    "applicable",
    "contact_wanted",
    "correction_text",
    "corrections",
    "display",
    "extract",
    "find_traces",
    "flags",
    "flags_cues",
    "holds_expected",
    "label",
    "model",
    "next_missing",
    "problem_text",
    "read_answer",
    "read_choice",
    "read_confirmation",
    "reads_as_cancel",
    "refused",
    "text_flags",
    "ticket_fields",
    "today",
    "validate",
]
