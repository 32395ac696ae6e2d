"""The scripted conversation suite prints its three counts at the end of the run."""

from __future__ import annotations

from typing import Any

import pytest


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    summary = getattr(config, "conversation_suite_summary", None)
    if not summary:
        return
    write = terminalreporter.write_line
    terminalreporter.section("scripted conversations (issue 13)")
    write(
        f"{summary['conversations']} conversations, {summary['turns']} turns, "
        f"{summary['seconds']} s"
    )
    for key in (
        "reports_dropped_after_confirmation",
        "danger_without_emergency_numbers",
        "answers_stored_for_another_question",
    ):
        write(f"{key} = {summary[key]}")
    info = summary["information"]
    write(
        f"(summary confirmations {info['summary_confirmations']}, danger turns "
        f"{info['danger_turns']}, false alarms {info['false_alarms']}, conversations failing "
        f"{info['conversations_failing']}; details in var/conversation_suite.json)"
    )
