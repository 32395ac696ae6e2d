"""Operator commands of the cellule de veille (delegated from ``tranquillite``):

    tranquillite veille-worker [--once]
    tranquillite veille-recompute --departement DD [--no-deliveries]
    tranquillite veille-channel add --agency ID --territory T --email ADDRESS | --webhook URL
    tranquillite veille-channel list [--agency ID]
    tranquillite veille-channel disable|enable --agency ID --id N
    tranquillite veille-demo --database-url URL
    tranquillite bench-veille [...]

They use ``TRANQUILLITE_DATABASE_URL`` (migrated first), except veille-demo and bench-veille.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence

from webhook.config import Settings
from webhook.store import tickets
from webhook.store.db import create_engine, migrate, session_factory, utcnow
from webhook.veille import alerts, channels
from webhook.veille.channels import ChannelError, Sessions
from webhook.veille.config import get_config


def _run(work: Callable[[Sessions], Awaitable[int]]) -> int:
    async def main() -> int:
        engine = create_engine(Settings.from_env().database_url)
        try:
            await migrate(engine)
            return await work(session_factory(engine))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except ChannelError as exc:
        print(f"erreur : {exc}", file=sys.stderr)
        return 2


def worker_main(argv: Sequence[str]) -> int:
    from webhook.veille.worker import worker_main as main

    return main(list(argv))


def demo_main(argv: Sequence[str]) -> int:
    from webhook.veille.demo import main

    return main(list(argv))


def bench_main(argv: Sequence[str]) -> int:
    from webhook.veille.bench import main

    return main(list(argv))


def recompute_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tranquillite veille-recompute",
        description="Evaluate every alert key of a département now (after a restore, a change "
        "of veille.yml or of the routing reference data, or a worker stopped for long).",
    )
    parser.add_argument("--departement", required=True)
    parser.add_argument(
        "--no-deliveries", action="store_true", help="raise alerts without sending them"
    )
    args = parser.parse_args(list(argv))

    async def work(sessions: Sessions) -> int:
        # the EPCI each ticket is counted in, from the routing reference data in use
        aligned = await tickets.align_epcis(sessions, args.departement)
        if aligned:
            print(f"{args.departement} : EPCI mis à jour pour {aligned} signalement(s)")
        outcome = await alerts.recompute(
            sessions, args.departement, utcnow(), get_config(), deliver=not args.no_deliveries
        )
        print(
            f"{args.departement} : {len(outcome.created)} alerte(s) levée(s), "
            f"{len(outcome.updated)} mise(s) à jour, {len(outcome.ended)} vague(s) terminée(s)"
        )
        return 0

    return _run(work)


def channel_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="tranquillite veille-channel")
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("add", help="add an e-mail or webhook channel for a territory's alerts")
    p.add_argument("--agency", required=True, help="agency that owns the observers")
    p.add_argument("--territory", default="", help="departement:DD, epci:SIREN[@DD], commune:INSEE")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--email")
    target.add_argument("--webhook", help="https URL (its HMAC key is printed once)")
    p = sub.add_parser("list", help="list the channels")
    p.add_argument("--agency")
    for action in ("disable", "enable"):
        p = sub.add_parser(action, help=f"{action} a channel")
        p.add_argument("--agency", required=True)
        p.add_argument("--id", required=True, type=int)
    args = parser.parse_args(list(argv))

    async def add(sessions: Sessions) -> int:
        kind, target_value = ("email", args.email) if args.email else ("webhook", args.webhook)
        channel, secret = await channels.add_channel(
            sessions, args.agency, args.territory, kind, target_value
        )
        print(f"canal {channel.id} ({kind}) ajouté pour {channel.territory}")
        if secret:
            print(secret)
            print("clé de signature du webhook : copiez-la maintenant.", file=sys.stderr)
        return 0

    async def show(sessions: Sessions) -> int:
        for channel in await channels.list_channels(sessions, args.agency):
            state = "actif" if channel.active else "désactivé"
            print(
                f"{channel.id}\t{channel.agency_id}\t{channel.territory}\t{channel.kind}\t"
                f"{channel.target}\t{state}"
            )
        return 0

    async def toggle(sessions: Sessions) -> int:
        done = await channels.set_active(sessions, args.agency, args.id, args.action == "enable")
        if not done:
            print("erreur : canal inconnu pour cette agence", file=sys.stderr)
            return 1
        print(f"canal {args.id} {'réactivé' if args.action == 'enable' else 'désactivé'}")
        return 0

    work = {"add": add, "list": show, "disable": toggle, "enable": toggle}[args.action]
    return _run(work)
