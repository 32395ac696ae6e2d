"""Operator commands for agency accounts (delegated from ``tranquillite``):

    tranquillite agency-user add --agency ID --username U --role R [--name N]
        [--territory T]   (password: prompt or standard input; T for observers:
        departement:DD, epci:SIREN[@DD] or commune:INSEE — default the agency's département)
    tranquillite agency-user list --agency ID
    tranquillite agency-user disable --agency ID --username U
    tranquillite agency-token create --agency ID --name N [--role agent|observer]
        [--territory T]
    tranquillite agency-token list --agency ID
    tranquillite agency-token revoke --agency ID --id N

They use ``TRANQUILLITE_DATABASE_URL`` (migrated first). The clear API token is printed once.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import select

from webhook.agency import auth, territory
from webhook.config import Settings
from webhook.store.db import Agent, create_engine, migrate, session_factory


def _run(work: Callable[[auth.Sessions], Awaitable[int]]) -> int:
    async def main() -> int:
        engine = create_engine(Settings.from_env().database_url)
        try:
            await migrate(engine)
            return await work(session_factory(engine))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except auth.AuthError as exc:
        print(f"erreur : {exc}", file=sys.stderr)
        return 2


def _territory(agency_id: str, role: str, text: str) -> str | None:
    """The stored form of an observer's territory (None: the agency's département)."""
    if not text:
        return None
    if role != "observer":
        raise auth.AuthError("seul un observateur a un territoire")
    try:
        return territory.check_for_agency(agency_id, text)
    except territory.TerritoryError as exc:
        raise auth.AuthError(str(exc)) from None


def _read_password(from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Mot de passe : ")
    if getpass.getpass("Confirmez le mot de passe : ") != first:
        raise auth.AuthError("les deux saisies diffèrent")
    return first


def user_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="tranquillite agency-user")
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("add", help="create an agent (password from a prompt or stdin)")
    p.add_argument("--agency", required=True, help="agency id (routing data)")
    p.add_argument("--username", required=True)
    p.add_argument("--role", required=True, choices=auth.ROLES)
    p.add_argument("--name", default="", help="display name")
    p.add_argument("--territory", default="", help="observers: the territory they see")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p = sub.add_parser("list", help="list an agency's agents")
    p.add_argument("--agency", required=True)
    p = sub.add_parser("disable", help="deactivate an agent")
    p.add_argument("--agency", required=True)
    p.add_argument("--username", required=True)
    args = parser.parse_args(list(argv))

    if args.action == "add":
        try:
            password = _read_password(args.password_stdin)
        except auth.AuthError as exc:
            print(f"erreur : {exc}", file=sys.stderr)
            return 2

        async def add(sessions: auth.Sessions) -> int:
            stored = _territory(args.agency, args.role, args.territory)
            agent = await auth.create_agent(
                sessions, args.agency, args.username, password, args.role, args.name
            )
            if stored:
                await territory.set_agent_territory(sessions, agent.id, stored)
            print(f"agent {agent.username} créé (id {agent.id}, agence {agent.agency_id})")
            return 0

        return _run(add)

    if args.action == "list":

        async def show(sessions: auth.Sessions) -> int:
            for agent in await auth.list_agents(sessions, args.agency):
                state = "actif" if agent.active else "désactivé"
                print(f"{agent.id}\t{agent.username}\t{agent.role}\t{state}")
            return 0

        return _run(show)

    async def disable(sessions: auth.Sessions) -> int:
        async with sessions() as session:
            agent: Any = (
                await session.execute(
                    select(Agent).where(
                        Agent.username == args.username.lower(), Agent.agency_id == args.agency
                    )
                )
            ).scalar_one_or_none()
        if agent is None:
            print("erreur : agent inconnu pour cette agence", file=sys.stderr)
            return 1
        await auth.set_agent_active(sessions, args.agency, agent.id, False)
        print(f"agent {agent.username} désactivé")
        return 0

    return _run(disable)


def token_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="tranquillite agency-token")
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("create", help="create an API token (printed once)")
    p.add_argument("--agency", required=True)
    p.add_argument("--name", required=True, help="what uses the token")
    p.add_argument("--role", default="agent", choices=("agent", "observer"))
    p.add_argument("--territory", default="", help="observer tokens: the territory they see")
    p = sub.add_parser("list", help="list an agency's tokens (prefixes only)")
    p.add_argument("--agency", required=True)
    p = sub.add_parser("revoke", help="revoke a token")
    p.add_argument("--agency", required=True)
    p.add_argument("--id", required=True, type=int)
    args = parser.parse_args(list(argv))

    async def create(sessions: auth.Sessions) -> int:
        stored = _territory(args.agency, args.role, args.territory)
        token, clear = await auth.create_api_token(sessions, args.agency, args.name, args.role)
        if stored:
            await territory.set_token_territory(sessions, token.id, stored)
        print(clear)
        print(
            f"jeton {token.id} ({token.token_prefix}…) créé pour {token.agency_id} : "
            "copiez-le maintenant, il ne sera plus affiché.",
            file=sys.stderr,
        )
        return 0

    async def show(sessions: auth.Sessions) -> int:
        for token in await auth.list_tokens(sessions, args.agency):
            state = "révoqué" if token.revoked_at else "actif"
            print(f"{token.id}\t{token.token_prefix}…\t{token.name}\t{token.role}\t{state}")
        return 0

    async def revoke(sessions: auth.Sessions) -> int:
        if not await auth.revoke_token(sessions, args.agency, args.id):
            print("erreur : jeton inconnu ou déjà révoqué", file=sys.stderr)
            return 1
        print(f"jeton {args.id} révoqué")
        return 0

    return _run({"create": create, "list": show, "revoke": revoke}[args.action])
