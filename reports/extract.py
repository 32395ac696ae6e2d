"""What a description already says: answers taken from the citizen's own words, so that only
what is missing is asked (every channel that has a description, and `triage`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from reports import dates
from reports.answers import age_choice, find_traces
from reports.model import model
from routing.normalize import fold


def extract(report_type: str, text: str, today: dt.date) -> dict[str, Any]:
    """Answers found in ``text`` for the questions of ``report_type`` (choice ids, ISO dates,
    traces). A question whose choices' cues match several choices takes the first one in the
    model's order."""
    m = model()
    form = m.forms[report_type]
    folded = fold(text or "")
    found: dict[str, Any] = {}
    if not folded:
        return found
    for qid in form.questions:
        question = m.questions[qid]
        if question.extract == "dates":
            start, end = dates.parse_period(text, today)
            if start is not None:
                found[qid] = start.isoformat()
                if end is not None:
                    found["date_retour"] = end.isoformat()
            continue
        if question.extract == "traces":
            traces = find_traces(text)
            if traces:
                found[qid] = ", ".join(traces)
            continue
        if question.extract == "age":
            bracket = age_choice(question, text)
            if bracket:
                found[qid] = bracket
                continue
        for choice in question.choices:
            if any(cue.search(folded) for cue in choice.cues):
                found[qid] = choice.id
                break
    return found
