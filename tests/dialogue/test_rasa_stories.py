"""Conversation tests: `rasa test core` on tests/stories/ with the trained model.

For every report type: a happy path, a correction at the summary, a change of topic, a danger
written in the middle of the form, a cancel and a talk-to-a-human interruption (60 stories).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

import routing
from webhook.ops import envsetup

STORIES = Path(__file__).resolve().parents[1] / "stories" / "test_stories.yml"

pytestmark = pytest.mark.e2e


def test_every_report_type_has_a_happy_path_and_three_unhappy_paths() -> None:
    stories = yaml.safe_load(STORIES.read_text(encoding="utf-8"))["stories"]
    for report_type in routing.REPORT_TYPES:
        names = [s["story"] for s in stories if s["story"].startswith(f"{report_type}:")]
        assert any("happy path" in n for n in names), report_type
        assert len([n for n in names if "happy path" not in n]) >= 3, report_type


def test_conversation_stories_pass(trained_model: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            str(envsetup.rasa_bin()),
            "test",
            "core",
            "--model",
            str(trained_model),
            "--stories",
            str(STORIES),
            "--out",
            str(tmp_path),
            "--no-plot",
            "--fail-on-prediction-errors",
        ],
        cwd=envsetup.PROJECT_ROOT,
        env=envsetup.rasa_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    failed = tmp_path / "failed_test_stories.yml"
    failures = failed.read_text(encoding="utf-8") if failed.is_file() else ""
    assert "story:" not in failures, failures[:6000]
    report = tmp_path / "story_report.json"
    assert report.is_file(), "rasa test wrote no story report"
