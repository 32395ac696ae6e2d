"""Set-up helpers: Python 3.10 discovery, model fingerprint, CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from webhook.ops import envsetup


def test_missing_python310_names_the_three_places(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PYTHON310", str(tmp_path / "nope"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    with pytest.raises(envsetup.SetupError) as excinfo:
        envsetup.find_python310()
    message = str(excinfo.value)
    assert "$PYTHON310" in message and "python3.10 on PATH" in message and "pyenv" in message


def test_python310_from_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    found = envsetup.find_python310()
    monkeypatch.setenv("PYTHON310", found)
    assert envsetup.find_python310() == found


def test_model_fingerprint_follows_training_data(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bot = tmp_path / "bot"
    (bot / "data").mkdir(parents=True)
    (bot / "domain").mkdir(parents=True)
    nlu = tmp_path / "nlu_data" / "train"
    nlu.mkdir(parents=True)
    domain = bot / "domain" / "base.yml"
    reference = tmp_path / "routing" / "data" / "reference.json.gz"
    reference.parent.mkdir(parents=True)
    reference.write_bytes(b"reference data")
    for path in (bot / "config.yml", domain, bot / "data" / "rules.yml", nlu / "a.yml"):
        path.write_text("version: '3.1'\n")
    monkeypatch.setattr(envsetup, "PROJECT_ROOT", tmp_path)
    monkeypatch.setattr(envsetup, "BOT_DIR", bot)
    monkeypatch.setattr(envsetup, "NLU_TRAIN_DIR", nlu)
    first = envsetup.model_fingerprint()
    assert envsetup.model_fingerprint() == first
    domain.write_text("version: '3.1'\nintents: [greet]\n")
    assert envsetup.model_fingerprint() != first
    first = envsetup.model_fingerprint()
    (nlu / "a.yml").write_text("version: '3.1'\nnlu: []\n")
    assert envsetup.model_fingerprint() != first
    (tmp_path / "nlu_data" / "README.md").write_text("docs do not change the model")
    second = envsetup.model_fingerprint()
    (tmp_path / "nlu_data" / "test").mkdir()
    (tmp_path / "nlu_data" / "test" / "t.yml").write_text("held-out split")
    assert envsetup.model_fingerprint() == second
    # the pipeline's own components and the reference data of its gazetteer are inputs too
    (bot / "component.py").write_text("# a Rasa graph component")
    third = envsetup.model_fingerprint()
    assert third != second
    reference.write_bytes(b"other reference data")
    assert envsetup.model_fingerprint() != third


def test_cli_help_lists_commands() -> None:
    out = subprocess.run(
        [str(Path(sys.executable).parent / "tranquillite"), "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for command in ("run", "setup", "train", "db-upgrade", "explain"):
        assert command in out
