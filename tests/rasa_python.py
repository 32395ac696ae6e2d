"""Run a Python snippet in the Rasa environment (.venv-rasa), from the project root, as the
Rasa-side processes run: for tests of code that only exists there (Rasa, rasa-sdk, spaCy)."""

from __future__ import annotations

import subprocess

from webhook.config import PROJECT_ROOT
from webhook.ops import envsetup


def run_in_rasa_env(
    script: str, *args: str, extra_env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(envsetup.rasa_bin("python")), "-c", script, *args],
        cwd=PROJECT_ROOT,
        env={**envsetup.rasa_env(), **(extra_env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
