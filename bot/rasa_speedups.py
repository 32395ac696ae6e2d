"""Rasa's check of the action server's answers, without re-checking its own schema each time.

Measured (issue 17, cProfile of the Rasa server under ``bench-footprint``'s 20 concurrent
conversations): 59 % of Rasa's CPU per message went to ``RemoteAction._validate_action_result``,
which calls ``jsonschema.validate(result, spec)`` for every answer of the action server (each
form's validation action: one or more per message). ``jsonschema.validate`` first validates the
*schema* against the JSON Schema 2020-12 meta-schema (``check_schema``: 0.2 s of CPU per call
here, with its ``$dynamicRef`` resolution), then the answer. The schema is Rasa's constant
(``RemoteAction.action_response_format_spec()``): checking it once per process is enough.

:func:`install` replaces that method with one that checks each action class's schema once,
keeps the validator, and validates every answer with it: the same validator class
(``validator_for(spec)``), the same ``best_match`` error, the same message added to it, the
same ``ValidationError`` raised — only the repeated check of the constant schema is gone.
It is installed when the pipeline's first component (``bot.light_spacy``) is imported, i.e. in
every process that loads the model (the Rasa server, ``triage``, training).
"""

from __future__ import annotations

import threading
from typing import Any

_LOCK = threading.Lock()
_VALIDATORS: dict[type, Any] = {}
_INSTALLED = False


def _validator(action_class: type, spec: dict[str, Any]) -> Any:
    with _LOCK:
        validator = _VALIDATORS.get(action_class)
        if validator is None:
            from jsonschema.validators import validator_for

            cls = validator_for(spec)
            cls.check_schema(spec)
            validator = _VALIDATORS[action_class] = cls(spec)
        return validator


def _validate_action_result(self: Any, result: dict[str, Any]) -> bool:
    from jsonschema.exceptions import best_match
    from rasa.core.actions.action import DOCS_BASE_URL

    validator = _validator(type(self), self.action_response_format_spec())
    error = best_match(validator.iter_errors(result))
    if error is not None:
        error.message += (
            f". Failed to validate Action server response from API, "
            f"make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise error
    return True


def install() -> None:
    """Replace ``RemoteAction._validate_action_result`` (idempotent)."""
    global _INSTALLED
    if _INSTALLED:
        return
    from rasa.core.actions.action import RemoteAction

    RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]
    _INSTALLED = True
