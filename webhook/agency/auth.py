"""Agency side authentication: agents' passwords, per-agency API tokens, login sessions, CSRF.

- Passwords are hashed with scrypt (``hashlib.scrypt``, OWASP parameters N=2^15, r=8, p=3,
  16-byte random salt); the parameters are stored in the hash string so they can be raised later.
- API tokens (``tq_`` + 256 random bits) are shown once; the database keeps their SHA-256 (a
  random token of that length needs no slow KDF) and a short prefix to recognise them.
- A login session is a cookie signed with HMAC-SHA256 by the gateway's secret key
  (``TRANQUILLITE_SECRET_KEY`` or a random key kept in ``<var>/secret_key``). It names the agent,
  a random nonce and the issue time, and a fingerprint of the password hash: changing the password
  or deactivating the agent ends every session.
- CSRF: every POST form carries a synchronizer token derived from the session nonce (HMAC); the
  login form uses a double-submit cookie. Cookies are HttpOnly, SameSite=Strict, Secure on https.
- Roles: ``agent`` (work the agency's tickets), ``agency_admin`` (also agents, tokens and delivery
  channels of the agency), ``observer`` (aggregated statistics only).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import routing
from webhook.config import Settings
from webhook.store.db import AgencyChannel, Agent, ApiToken, utcnow

logger = logging.getLogger(__name__)

ROLES: tuple[str, ...] = ("agent", "agency_admin", "observer")
ROLE_LABELS = {
    "agent": "Agent",
    "agency_admin": "Administrateur de l'agence",
    "observer": "Observateur",
}
CHANNEL_KINDS: tuple[str, ...] = ("email", "webhook")
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024

SESSION_COOKIE = "tq_agence"
LOGIN_CSRF_COOKIE = "tq_login_csrf"
COOKIE_PATH = "/agence"
SESSION_MAX_AGE = 8 * 3600


class AuthError(Exception):
    """Invalid input to an account operation (message in French, safe to show)."""


# ---------------------------------------------------------------------------------- passwords

SCRYPT_N_LOG2 = 15
SCRYPT_R = 8
SCRYPT_P = 3
SCRYPT_DKLEN = 32


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n_log2: int, r: int, p: int, dklen: int) -> bytes:
    n = 1 << n_log2
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        dklen=dklen,
        maxmem=256 * r * n + (1 << 20),
    )


def hash_password(password: str) -> str:
    """``scrypt$<log2 N>$<r>$<p>$<salt>$<hash>`` (base64url, no padding)."""
    check_password_strength(password)
    salt = os.urandom(16)
    digest = _scrypt(password, salt, SCRYPT_N_LOG2, SCRYPT_R, SCRYPT_P, SCRYPT_DKLEN)
    return f"scrypt${SCRYPT_N_LOG2}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n_log2, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        actual = _scrypt(password, _unb64(salt), int(n_log2), int(r), int(p), len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AuthError(f"Le mot de passe doit compter au moins {MIN_PASSWORD_LENGTH} caractères.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AuthError("Le mot de passe est trop long.")


# A hash to verify against when the username is unknown, so that the answer takes the same time.
_DUMMY_HASH = (
    f"scrypt${SCRYPT_N_LOG2}${SCRYPT_R}${SCRYPT_P}${_b64(b'tranquillite-salt')}${_b64(bytes(32))}"
)


# ---------------------------------------------------------------------------------- API tokens

TOKEN_MARK = "tq_"  # noqa: S105 - the visible mark of our tokens, not a secret
TOKEN_PREFIX_CHARS = 12


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> tuple[str, str, str]:
    """(clear token, prefix to display, hash to store)."""
    clear = TOKEN_MARK + secrets.token_urlsafe(32)
    return clear, clear[:TOKEN_PREFIX_CHARS], hash_token(clear)


# ---------------------------------------------------------------------------------- secret key


def load_secret_key(settings: Settings) -> bytes:
    """The configured key, else a random one created once in ``<var>/secret_key`` (mode 0600)."""
    if settings.secret_key:
        return settings.secret_key.encode("utf-8")
    path = Path(settings.var_dir) / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text(encoding="ascii").strip()
        if len(key) < 32:
            raise RuntimeError(f"{path} is too short; delete it to generate a new key") from None
        return key.encode("ascii")
    key = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    return key.encode("ascii")


# ---------------------------------------------------------------------------------- sessions


@dataclass(frozen=True)
class SessionData:
    agent_id: int
    nonce: str
    issued_at: int
    password_fingerprint: str


def password_fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode("utf-8")).hexdigest()[:16]


class SessionCodec:
    """Signed session cookies and the CSRF tokens bound to them."""

    def __init__(self, key: bytes, max_age: int = SESSION_MAX_AGE) -> None:
        self._key = hashlib.sha256(b"tranquillite-session|" + key).digest()
        self._csrf_key = hashlib.sha256(b"tranquillite-csrf|" + key).digest()
        self.max_age = max_age

    def _sign(self, payload: bytes) -> str:
        return _b64(hmac.new(self._key, payload, hashlib.sha256).digest())

    def issue(self, agent: Agent) -> tuple[str, SessionData]:
        data = SessionData(
            agent_id=agent.id,
            nonce=secrets.token_urlsafe(16),
            issued_at=int(time.time()),
            password_fingerprint=password_fingerprint(agent.password_hash),
        )
        payload = json.dumps(
            {
                "a": data.agent_id,
                "n": data.nonce,
                "t": data.issued_at,
                "p": data.password_fingerprint,
            },
            separators=(",", ":"),
        ).encode("utf-8")
        return f"{_b64(payload)}.{self._sign(payload)}", data

    def read(self, cookie: str | None) -> SessionData | None:
        if not cookie or len(cookie) > 512 or "." not in cookie:
            return None
        encoded, signature = cookie.rsplit(".", 1)
        try:
            payload = _unb64(encoded)
        except ValueError:
            return None
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            raw = json.loads(payload)
            data = SessionData(
                agent_id=int(raw["a"]),
                nonce=str(raw["n"]),
                issued_at=int(raw["t"]),
                password_fingerprint=str(raw["p"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
        if not 0 <= time.time() - data.issued_at <= self.max_age:
            return None
        return data

    def csrf_token(self, session: SessionData) -> str:
        return _b64(hmac.new(self._csrf_key, session.nonce.encode(), hashlib.sha256).digest())

    def check_csrf(self, session: SessionData, submitted: str | None) -> bool:
        return bool(submitted) and hmac.compare_digest(
            str(submitted).encode(), self.csrf_token(session).encode()
        )


# ---------------------------------------------------------------------------------- throttling


@dataclass
class LoginThrottle:
    """Lock a username (and a client address) for ``lock_seconds`` after ``max_failures`` failed
    logins within ``window_seconds``. In memory: per gateway process."""

    max_failures: int = 5
    window_seconds: float = 15 * 60
    lock_seconds: float = 15 * 60
    _failures: dict[str, list[float]] = field(default_factory=dict)
    _locked_until: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def retry_after(self, keys: Sequence[str]) -> int:
        now = time.monotonic()
        with self._lock:
            waits = [self._locked_until.get(k, 0.0) - now for k in keys]
        return max(0, int(max(waits, default=0.0) + 0.999))

    def failure(self, keys: Sequence[str]) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) > 10_000:
                self._failures.clear()
            for key in keys:
                recent = [t for t in self._failures.get(key, []) if now - t < self.window_seconds]
                recent.append(now)
                self._failures[key] = recent
                if len(recent) >= self.max_failures:
                    self._locked_until[key] = now + self.lock_seconds
                    self._failures.pop(key, None)

    def success(self, keys: Sequence[str]) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)


# ---------------------------------------------------------------------------------- principals


@dataclass(frozen=True)
class Principal:
    """Who acts on behalf of an agency (an agent logged in, or an API token)."""

    agency_id: str
    role: str
    actor: str  # recorded in ticket histories: "agent:<username>" or "token:<prefix>"
    agent_id: int | None = None
    token_id: int | None = None
    display_name: str = ""

    @property
    def can_work_tickets(self) -> bool:
        return self.role in ("agent", "agency_admin")

    @property
    def is_admin(self) -> bool:
        return self.role == "agency_admin"


def agency_name(agency_id: str) -> str:
    try:
        return routing.get_engine().agency(agency_id).name
    except KeyError:
        return agency_id


def check_agency(agency_id: str) -> None:
    try:
        routing.get_engine().agency(agency_id)
    except KeyError:
        raise AuthError(f"Agence inconnue : {agency_id!r}.") from None


def check_role(role: str) -> None:
    if role not in ROLES:
        raise AuthError(f"Rôle inconnu : {role!r} (attendu : {', '.join(ROLES)}).")


Sessions = async_sessionmaker[AsyncSession]


# ---------------------------------------------------------------------------------- agents


async def create_agent(
    sessions: Sessions,
    agency_id: str,
    username: str,
    password: str,
    role: str,
    display_name: str = "",
) -> Agent:
    check_agency(agency_id)
    check_role(role)
    username = username.strip().lower()
    if not USERNAME_RE.fullmatch(username):
        raise AuthError(
            "Identifiant invalide : 3 à 64 caractères parmi a-z, 0-9, point, tiret, souligné."
        )
    password_hash = await asyncio.to_thread(hash_password, password)
    agent = Agent(
        agency_id=agency_id,
        username=username,
        password_hash=password_hash,
        role=role,
        display_name=display_name.strip()[:120],
        active=True,
        created_at=utcnow(),
    )
    try:
        async with sessions() as session, session.begin():
            session.add(agent)
    except IntegrityError:
        raise AuthError("Cet identifiant est déjà utilisé.") from None
    logger.info("agent %s created for agency %s (role %s)", agent.id, agency_id, role)
    return agent


async def authenticate(sessions: Sessions, username: str, password: str) -> Agent | None:
    """The active agent with these credentials, else None (same cost either way)."""
    username = username.strip().lower()[:64]
    if len(password) > MAX_PASSWORD_LENGTH:
        return None
    async with sessions() as session:
        agent = (
            await session.execute(select(Agent).where(Agent.username == username))
        ).scalar_one_or_none()
    stored = agent.password_hash if agent is not None else _DUMMY_HASH
    ok = await asyncio.to_thread(verify_password, password, stored)
    if agent is None or not ok or not agent.active:
        return None
    return agent


async def get_agent(sessions: Sessions, agent_id: int) -> Agent | None:
    async with sessions() as session:
        return await session.get(Agent, agent_id)


async def principal_from_session(sessions: Sessions, data: SessionData) -> Principal | None:
    agent = await get_agent(sessions, data.agent_id)
    if (
        agent is None
        or not agent.active
        or not hmac.compare_digest(
            password_fingerprint(agent.password_hash), data.password_fingerprint
        )
    ):
        return None
    return Principal(
        agency_id=agent.agency_id,
        role=agent.role,
        actor=f"agent:{agent.username}",
        agent_id=agent.id,
        display_name=agent.display_name or agent.username,
    )


async def list_agents(sessions: Sessions, agency_id: str) -> list[Agent]:
    async with sessions() as session:
        result = await session.execute(
            select(Agent).where(Agent.agency_id == agency_id).order_by(Agent.username)
        )
        return list(result.scalars())


async def set_agent_active(sessions: Sessions, agency_id: str, agent_id: int, active: bool) -> bool:
    async with sessions() as session, session.begin():
        result = await session.execute(
            update(Agent)
            .where(Agent.id == agent_id, Agent.agency_id == agency_id)
            .values(active=active)
        )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def set_password(sessions: Sessions, agent_id: int, password: str) -> None:
    password_hash = await asyncio.to_thread(hash_password, password)
    async with sessions() as session, session.begin():
        await session.execute(
            update(Agent).where(Agent.id == agent_id).values(password_hash=password_hash)
        )


# ---------------------------------------------------------------------------------- tokens


async def create_api_token(
    sessions: Sessions, agency_id: str, name: str, role: str = "agent"
) -> tuple[ApiToken, str]:
    """Create a token; returns it with the clear value, which is never stored nor shown again."""
    check_agency(agency_id)
    check_role(role)
    name = name.strip()[:120]
    if not name:
        raise AuthError("Donnez un nom au jeton (par exemple le logiciel qui l'utilise).")
    clear, prefix, token_hash = new_token()
    token = ApiToken(
        agency_id=agency_id,
        name=name,
        token_prefix=prefix,
        token_hash=token_hash,
        role=role,
        created_at=utcnow(),
    )
    async with sessions() as session, session.begin():
        session.add(token)
    logger.info("API token %s created for agency %s (role %s)", token.id, agency_id, role)
    return token, clear


async def authenticate_token(sessions: Sessions, clear: str | None) -> Principal | None:
    if not clear or not clear.startswith(TOKEN_MARK) or len(clear) > 200:
        return None
    token_hash = hash_token(clear)
    async with sessions() as session, session.begin():
        token = (
            await session.execute(select(ApiToken).where(ApiToken.token_hash == token_hash))
        ).scalar_one_or_none()
        if token is None or token.revoked_at is not None:
            return None
        now = utcnow()
        last = token.last_used_at
        if last is None or (now - _aware(last)) > dt.timedelta(minutes=1):
            token.last_used_at = now
    return Principal(
        agency_id=token.agency_id,
        role=token.role,
        actor=f"token:{token.token_prefix}",
        token_id=token.id,
        display_name=token.name,
    )


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


async def list_tokens(sessions: Sessions, agency_id: str) -> list[ApiToken]:
    async with sessions() as session:
        result = await session.execute(
            select(ApiToken).where(ApiToken.agency_id == agency_id).order_by(ApiToken.id)
        )
        return list(result.scalars())


async def revoke_token(sessions: Sessions, agency_id: str, token_id: int) -> bool:
    async with sessions() as session, session.begin():
        result = await session.execute(
            update(ApiToken)
            .where(
                ApiToken.id == token_id,
                ApiToken.agency_id == agency_id,
                ApiToken.revoked_at.is_(None),
            )
            .values(revoked_at=utcnow())
        )
    return bool(result.rowcount)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------- channels

EMAIL_RE = re.compile(r"^[^@\s<>\"']{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}$")
URL_RE = re.compile(r"^https?://[^\s<>\"']{3,480}$")


async def add_channel(
    sessions: Sessions, agency_id: str, kind: str, target: str
) -> tuple[AgencyChannel, str | None]:
    """Add a delivery channel. A webhook gets a new random HMAC secret, returned once."""
    target = target.strip()
    if kind == "email":
        if not EMAIL_RE.fullmatch(target):
            raise AuthError("Adresse électronique invalide.")
        secret = None
    elif kind == "webhook":
        if not URL_RE.fullmatch(target):
            raise AuthError("Adresse du webhook invalide (http:// ou https://).")
        secret = secrets.token_urlsafe(32)
    else:
        raise AuthError(f"Type de canal inconnu : {kind!r}.")
    channel = AgencyChannel(
        agency_id=agency_id, kind=kind, target=target, secret=secret, active=True
    )
    try:
        async with sessions() as session, session.begin():
            session.add(channel)
    except IntegrityError:
        raise AuthError("Ce canal existe déjà.") from None
    logger.info("delivery channel %s (%s) added for agency %s", channel.id, kind, agency_id)
    return channel, secret


async def list_channels(sessions: Sessions, agency_id: str) -> list[AgencyChannel]:
    async with sessions() as session:
        result = await session.execute(
            select(AgencyChannel)
            .where(AgencyChannel.agency_id == agency_id)
            .order_by(AgencyChannel.id)
        )
        return list(result.scalars())


async def set_channel_active(
    sessions: Sessions, agency_id: str, channel_id: int, active: bool
) -> bool:
    async with sessions() as session, session.begin():
        result = await session.execute(
            update(AgencyChannel)
            .where(AgencyChannel.id == channel_id, AgencyChannel.agency_id == agency_id)
            .values(active=active)
        )
    return bool(result.rowcount)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------- app state


@dataclass
class AuthContext:
    codec: SessionCodec
    throttle: LoginThrottle
    cookie_secure: bool


def context(state: Any) -> AuthContext:
    """The auth context of an app (``app.state``), created on first use."""
    ctx: AuthContext | None = getattr(state, "agency_auth", None)
    if ctx is None:
        settings: Settings = state.settings
        ctx = AuthContext(
            codec=SessionCodec(load_secret_key(settings)),
            throttle=LoginThrottle(),
            cookie_secure=settings.cookie_secure,
        )
        state.agency_auth = ctx
    return ctx
