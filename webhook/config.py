"""Configuration of the gateway and of the processes it starts, read from the environment.

Every variable is documented in ``.env.example`` at the project root.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

T = TypeVar("T", int, float)

PROJECT_ROOT = Path(os.environ.get("TRANQUILLITE_HOME", Path(__file__).resolve().parents[1]))


def env_number(name: str, default: T, cast: Callable[[str], T]) -> T:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return cast(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} must be a number, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    gateway_port: int = 8080
    rasa_port: int = 5005
    actions_port: int = 5055
    var_dir: Path = field(default_factory=lambda: PROJECT_ROOT / "var")
    database_url: str = ""
    rasa_url: str = ""
    internal_token: str = ""
    rasa_timeout: float = 15.0
    max_message_chars: int = 2000
    auto_migrate: bool = True
    # Chat API: per-sender rate limit (token bucket) and the origins allowed to call it from a
    # page that embeds the widget ("*": any site; the API uses no cookie)
    rate_limit_burst: int = 20
    rate_limit_per_minute: float = 60.0
    cors_origins: tuple[str, ...] = ("*",)
    # Telegram channel (off when no token): Bot API root, webhook secret, webhook | polling
    telegram_token: str = ""
    telegram_secret: str = ""
    telegram_base_url: str = "https://api.telegram.org"
    telegram_mode: str = "webhook"
    telegram_webhook_url: str = ""
    # Agency dashboard: key signing session cookies (empty: a random key kept in <var>/secret_key)
    secret_key: str = ""
    cookie_secure: bool = False

    @classmethod
    def from_env(cls) -> Settings:
        var_dir = Path(os.environ.get("TRANQUILLITE_VAR_DIR", str(PROJECT_ROOT / "var")))
        host = os.environ.get("TRANQUILLITE_HOST", "127.0.0.1")
        rasa_port = env_number("TRANQUILLITE_RASA_PORT", 5005, int)
        database_url = os.environ.get("TRANQUILLITE_DATABASE_URL") or (
            f"sqlite+aiosqlite:///{var_dir / 'tranquillite.db'}"
        )
        return cls(
            host=host,
            gateway_port=env_number("TRANQUILLITE_GATEWAY_PORT", 8080, int),
            rasa_port=rasa_port,
            actions_port=env_number("TRANQUILLITE_ACTIONS_PORT", 5055, int),
            var_dir=var_dir,
            database_url=database_url,
            rasa_url=os.environ.get("TRANQUILLITE_RASA_URL", f"http://{host}:{rasa_port}"),
            internal_token=os.environ.get("TRANQUILLITE_INTERNAL_TOKEN", ""),
            rasa_timeout=env_number("TRANQUILLITE_RASA_TIMEOUT", 15.0, float),
            max_message_chars=env_number("TRANQUILLITE_MAX_MESSAGE_CHARS", 2000, int),
            auto_migrate=os.environ.get("TRANQUILLITE_AUTO_MIGRATE", "1") not in ("0", "false"),
            rate_limit_burst=env_number("TRANQUILLITE_RATE_LIMIT_BURST", 20, int),
            rate_limit_per_minute=env_number("TRANQUILLITE_RATE_LIMIT_PER_MINUTE", 60.0, float),
            cors_origins=tuple(
                o.strip()
                for o in os.environ.get("TRANQUILLITE_CORS_ORIGINS", "*").split(",")
                if o.strip()
            ),
            telegram_token=os.environ.get("TRANQUILLITE_TELEGRAM_TOKEN", ""),
            telegram_secret=os.environ.get("TRANQUILLITE_TELEGRAM_SECRET", ""),
            telegram_base_url=os.environ.get("TRANQUILLITE_TELEGRAM_BASE_URL")
            or "https://api.telegram.org",
            telegram_mode=os.environ.get("TRANQUILLITE_TELEGRAM_MODE") or "webhook",
            telegram_webhook_url=os.environ.get("TRANQUILLITE_TELEGRAM_WEBHOOK_URL", ""),
            secret_key=os.environ.get("TRANQUILLITE_SECRET_KEY", ""),
            cookie_secure=os.environ.get("TRANQUILLITE_COOKIE_SECURE", "0") in ("1", "true"),
        )

    @property
    def gateway_url(self) -> str:
        return f"http://{self.host}:{self.gateway_port}"
