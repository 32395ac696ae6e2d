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
class Rate:
    """A token bucket: ``burst`` at once, then ``per_second`` on average."""

    burst: int
    per_second: float

    @classmethod
    def parse(cls, name: str, raw: str) -> Rate:
        """``"10,30/h"`` (or ``"10 30/h"``): burst 10, then 30 per hour (units s, min, h, d)."""
        units = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
        try:
            burst_text, rate_text = raw.strip().strip("\"'").replace(",", " ").split()
            count_text, unit = rate_text.split("/")
            rate = cls(int(burst_text), float(count_text) / units[unit])
        except (ValueError, KeyError) as exc:
            raise SystemExit(
                f"{name} must look like '10,30/h' (burst, count/unit), got {raw!r}"
            ) from exc
        if rate.burst < 1 or rate.per_second <= 0:
            raise SystemExit(f"{name}: burst and count must be positive, got {raw!r}")
        return rate


@dataclass(frozen=True)
class AbuseLimits:
    """Limits on messages and filings beyond the per-sender bucket (sized for shared addresses:
    a town-hall kiosk, a mobile network's NAT). Every value is set by TRANQUILLITE_LIMIT_*."""

    # chat messages from one address (IPv4, or IPv6 /64), and from everyone together
    messages_per_address: Rate = Rate(300, 20.0)
    messages_global: Rate = Rate(3000, 200.0)
    # new conversations (sender ids) one address may open, and how many it may keep in memory
    conversations_per_address: Rate = Rate(100, 600 / 3600)
    max_conversations_per_address: int = 500
    # reports filed: per conversation, per address, by everyone together, per agency API token
    filings_per_conversation: Rate = Rate(5, 20 / 3600)
    filings_per_address: Rate = Rate(10, 30 / 3600)
    filings_global: Rate = Rate(300, 3.0)
    filings_per_token: Rate = Rate(30, 300 / 3600)
    # proof of work before filing from the web chat: leading zero bits (0: off)
    filing_pow_bits: int = 0
    # reverse proxies whose X-Forwarded-For is believed (addresses or networks; none by default)
    trusted_proxies: tuple[str, ...] = ()

    @classmethod
    def from_env(cls) -> AbuseLimits:
        defaults = cls()
        values: dict[str, object] = {}
        for name in (
            "messages_per_address",
            "messages_global",
            "conversations_per_address",
            "filings_per_conversation",
            "filings_per_address",
            "filings_global",
            "filings_per_token",
        ):
            variable = f"TRANQUILLITE_LIMIT_{name.upper()}"
            raw = os.environ.get(variable, "").strip()
            values[name] = Rate.parse(variable, raw) if raw else getattr(defaults, name)
        return cls(
            **values,  # type: ignore[arg-type]
            max_conversations_per_address=env_number(
                "TRANQUILLITE_LIMIT_MAX_CONVERSATIONS_PER_ADDRESS",
                defaults.max_conversations_per_address,
                int,
            ),
            filing_pow_bits=env_number("TRANQUILLITE_FILING_POW_BITS", 0, int),
            trusted_proxies=tuple(
                p.strip()
                for p in os.environ.get("TRANQUILLITE_TRUSTED_PROXIES", "").split(",")
                if p.strip()
            ),
        )


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    gateway_port: int = 8080
    rasa_port: int = 5005
    actions_port: int = 5055
    var_dir: Path = field(default_factory=lambda: PROJECT_ROOT / "var")
    database_url: str = ""
    rasa_url: str = ""
    # several Rasa instances (TRANQUILLITE_RASA_URLS, comma-separated): conversation-affine
    # routing in webhook.conversation.rasa_client; empty: rasa_url alone
    rasa_urls: tuple[str, ...] = ()
    internal_token: str = ""
    rasa_timeout: float = 15.0
    max_message_chars: int = 2000
    auto_migrate: bool = True
    # Chat API: per-sender rate limit (token bucket) and the origins allowed to call it from a
    # page that embeds the widget (none by default: only the gateway's own chat page; "*": any
    # site, which lets any page make its visitors' browsers post to the chat)
    rate_limit_burst: int = 20
    rate_limit_per_minute: float = 60.0
    cors_origins: tuple[str, ...] = ()
    # Telegram channel (off when no token): Bot API root, webhook secret, webhook | polling
    telegram_token: str = ""
    telegram_secret: str = ""
    telegram_base_url: str = "https://api.telegram.org"
    telegram_mode: str = "webhook"
    telegram_webhook_url: str = ""
    # Agency dashboard: key signing session cookies (empty: a random key kept in <var>/secret_key)
    secret_key: str = ""
    cookie_secure: bool = False
    # abuse protection: per-address and global limits, proof of work, trusted proxies
    limits: AbuseLimits = field(default_factory=AbuseLimits)
    # the gateways' shared state (conversations, rate limits, Telegram buttons, login delays):
    # Redis at this URL when set, else the ticket store's database (webhook.store.state)
    redis_url: str = ""

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
            rasa_urls=tuple(
                u.strip()
                for u in os.environ.get("TRANQUILLITE_RASA_URLS", "").split(",")
                if u.strip()
            ),
            internal_token=os.environ.get("TRANQUILLITE_INTERNAL_TOKEN", ""),
            rasa_timeout=env_number("TRANQUILLITE_RASA_TIMEOUT", 15.0, float),
            max_message_chars=env_number("TRANQUILLITE_MAX_MESSAGE_CHARS", 2000, int),
            auto_migrate=os.environ.get("TRANQUILLITE_AUTO_MIGRATE", "1") not in ("0", "false"),
            rate_limit_burst=env_number("TRANQUILLITE_RATE_LIMIT_BURST", 20, int),
            rate_limit_per_minute=env_number("TRANQUILLITE_RATE_LIMIT_PER_MINUTE", 60.0, float),
            cors_origins=tuple(
                o.strip()
                for o in os.environ.get("TRANQUILLITE_CORS_ORIGINS", "").split(",")
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
            limits=AbuseLimits.from_env(),
            redis_url=os.environ.get("TRANQUILLITE_REDIS_URL", ""),
        )

    @property
    def gateway_url(self) -> str:
        return f"http://{self.host}:{self.gateway_port}"

    @property
    def rasa_tracker_url(self) -> str:
        """Where Rasa keeps conversations (its SQL tracker store), for ``purge`` to reach them:
        a SQLite file next to the ticket store, or the ticket store's PostgreSQL database."""
        if self.database_url.startswith("postgresql"):
            return self.database_url
        return f"sqlite+aiosqlite:///{self.var_dir / 'rasa_tracker.db'}"
