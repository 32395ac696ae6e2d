"""Agency side authentication: agents' passwords, per-agency API tokens, login sessions, CSRF.

- Passwords are hashed with scrypt (``hashlib.scrypt``, OWASP parameters N=2^15, r=8, p=3,
  16-byte random salt); the parameters are stored in the hash string so they can be raised later.
- API tokens (``tq_`` + 256 random bits) are shown once; the database keeps their SHA-256 (a
  random token of that length needs no slow KDF) and a short prefix to recognise them.
- A login session is kept on the server (:mod:`webhook.agency.sessions`): the cookie holds a
  random token, logout ends that session, deactivating the agent or changing the password ends
  all of theirs; idle sessions end after an hour, every session after 8 hours.
- Failed logins slow the next attempts down progressively, per account and per address, never
  locking the real agent out (:mod:`webhook.agency.throttle`).
- CSRF: every POST form carries a synchronizer token derived from the session (HMAC); the
  login form uses a double-submit cookie. Cookies are HttpOnly, SameSite=Strict, Secure on https.
- Webhook delivery channels: https only, never to a private, loopback or link-local address
  (:mod:`webhook.security.netguard`).
- Roles: ``agent`` (work the agency's tickets), ``agency_admin`` (also agents, tokens and delivery
  channels of the agency), ``observer`` (aggregated statistics only).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import logging
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import routing
from webhook.agency.sessions import ServerSessions, revoke_agent_sessions
from webhook.agency.throttle import LoginThrottle
from webhook.config import Settings
from webhook.security import netguard
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


def agency_username(name: str, agency_id: str) -> str:
    """The login of an account an agency admin creates: ``<name>.<agency id>``. Each agency has
    its own namespace, so creating an account never tells an admin which names other agencies
    use (the operator's ``agency-user`` command may create any name)."""
    name = name.strip().lower()
    suffix = f".{agency_id.lower()}"
    return name if name.endswith(suffix) else f"{name}{suffix}"


def _other_agency_namespace(username: str, agency_id: str) -> bool:
    """True when ``username`` ends with another agency's suffix (``.<agency id>``)."""
    if "." not in username:
        return False
    suffix = username.rsplit(".", 1)[1]
    if suffix == agency_id.lower():
        return False
    return any(a.id.lower() == suffix for a in routing.get_engine().agencies())


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
    if not USERNAME_RE.fullmatch(username) or _other_agency_namespace(username, agency_id):
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


async def principal_for_agent(sessions: Sessions, agent_id: int) -> Principal | None:
    """The principal of a logged-in agent (None once deactivated)."""
    agent = await get_agent(sessions, agent_id)
    if agent is None or not agent.active:
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
    """Deactivating an agent also ends every session they have open."""
    async with sessions() as session, session.begin():
        result = await session.execute(
            update(Agent)
            .where(Agent.id == agent_id, Agent.agency_id == agency_id)
            .values(active=active)
        )
        changed = bool(result.rowcount)  # type: ignore[attr-defined]
        if changed and not active:
            await revoke_agent_sessions(session, agent_id)
    return changed


async def set_password(sessions: Sessions, agent_id: int, password: str) -> None:
    """A new password ends every session of the agent (a stolen cookie stops working)."""
    password_hash = await asyncio.to_thread(hash_password, password)
    async with sessions() as session, session.begin():
        await session.execute(
            update(Agent).where(Agent.id == agent_id).values(password_hash=password_hash)
        )
        await revoke_agent_sessions(session, agent_id)


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
    sessions: Sessions,
    agency_id: str,
    kind: str,
    target: str,
    policy: netguard.TargetPolicy | None = None,
) -> tuple[AgencyChannel, str | None]:
    """Add a delivery channel. A webhook gets a new random HMAC secret, returned once; its
    address must be https and must not resolve to a private, loopback or link-local address
    (checked again at every delivery)."""
    target = target.strip()
    if kind == "email":
        if not EMAIL_RE.fullmatch(target):
            raise AuthError("Adresse électronique invalide.")
        secret = None
    elif kind == "webhook":
        if not URL_RE.fullmatch(target):
            raise AuthError("Adresse du webhook invalide (https://…).")
        try:
            await netguard.check_target(policy or netguard.TargetPolicy.from_env(), target)
        except netguard.TargetRefused as exc:
            raise AuthError(f"Adresse du webhook refusée : {exc.reason}.") from None
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
    sessions: ServerSessions
    throttle: LoginThrottle
    cookie_secure: bool


def context(state: Any) -> AuthContext:
    """The auth context of an app (``app.state``), created on first use."""
    ctx: AuthContext | None = getattr(state, "agency_auth", None)
    if ctx is None:
        settings: Settings = state.settings
        key = load_secret_key(settings)
        ctx = AuthContext(
            sessions=ServerSessions(key),
            throttle=LoginThrottle(key=key),
            cookie_secure=settings.cookie_secure,
        )
        state.agency_auth = ctx
    return ctx
