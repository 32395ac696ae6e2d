"""Where the observers of a territory receive its alerts: an e-mail address or a webhook (signed
with a random HMAC key shown once), set by an admin of the agency that owns the observers
(``/agence/veille/territoires`` or ``tranquillite veille-channel``). A channel of a territory
receives the alerts of every area inside it."""

from __future__ import annotations

import logging
import secrets

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from webhook.agency import auth
from webhook.agency import territory as territories
from webhook.security import netguard
from webhook.store.db import VeilleChannel, utcnow
from webhook.store.text import storable

logger = logging.getLogger(__name__)

Sessions = async_sessionmaker[AsyncSession]
KINDS: tuple[str, ...] = ("email", "webhook")


class ChannelError(Exception):
    """Invalid channel (message in French, safe to show)."""


async def add_channel(
    sessions: Sessions,
    agency_id: str,
    territory: str,
    kind: str,
    target: str,
    policy: netguard.TargetPolicy | None = None,
) -> tuple[VeilleChannel, str | None]:
    """Add a channel; a webhook (https, not to a private address: checked again at every
    delivery) gets a new HMAC key, returned once."""
    departement = territories.agency_departement(agency_id)
    if departement is None:
        raise ChannelError("Cette agence n'a pas de département.")
    try:
        parsed = territories.parse(territory or f"departement:{departement}", departement)
    except territories.TerritoryError as exc:
        raise ChannelError(str(exc)) from None
    target = storable(target).strip()
    secret: str | None = None
    if kind == "email":
        if not auth.EMAIL_RE.fullmatch(target):
            raise ChannelError("Adresse électronique invalide.")
    elif kind == "webhook":
        if not auth.URL_RE.fullmatch(target):
            raise ChannelError("Adresse du webhook invalide (https://…).")
        try:
            await netguard.check_target(policy or netguard.TargetPolicy.from_env(), target)
        except netguard.TargetRefused as exc:
            raise ChannelError(f"Adresse du webhook refusée : {exc.reason}.") from None
        secret = secrets.token_urlsafe(32)
    else:
        raise ChannelError("Type de canal inconnu : email ou webhook.")
    channel = VeilleChannel(
        agency_id=agency_id,
        territory=str(parsed),
        kind=kind,
        target=target,
        secret=secret,
        active=True,
        created_at=utcnow(),
    )
    try:
        async with sessions() as session, session.begin():
            session.add(channel)
    except IntegrityError:
        raise ChannelError("Ce canal existe déjà pour ce territoire.") from None
    logger.info("veille channel %s (%s) added by agency %s", channel.id, kind, agency_id)
    return channel, secret


async def list_channels(sessions: Sessions, agency_id: str | None = None) -> list[VeilleChannel]:
    query = select(VeilleChannel).order_by(VeilleChannel.id)
    if agency_id is not None:
        query = query.where(VeilleChannel.agency_id == agency_id)
    async with sessions() as session:
        return list((await session.execute(query)).scalars())


async def set_active(sessions: Sessions, agency_id: str, channel_id: int, active: bool) -> bool:
    async with sessions() as session, session.begin():
        result = await session.execute(
            update(VeilleChannel)
            .where(VeilleChannel.id == channel_id, VeilleChannel.agency_id == agency_id)
            .values(active=active)
        )
    return bool(getattr(result, "rowcount", 0))
