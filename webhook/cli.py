"""`tranquillite` command line: run the product, set it up, train, and operator tools."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from webhook.config import Settings
from webhook.ops import envsetup


def _cmd_setup(args: argparse.Namespace) -> int:
    envsetup.ensure_rasa_env()
    print(f"Rasa environment ready: {envsetup.RASA_VENV}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    path = envsetup.ensure_model(force=args.force)
    print(path)
    return 0


def _cmd_db_upgrade(args: argparse.Namespace) -> int:
    from webhook.store.db import create_engine, migrate

    async def upgrade() -> None:
        engine = create_engine(Settings.from_env().database_url)
        try:
            await migrate(engine)
        finally:
            await engine.dispose()

    asyncio.run(upgrade())
    print("database schema up to date")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from webhook.ops.supervisor import Stack, StartupError

    settings = Settings.from_env()
    model = envsetup.ensure_model()
    stack = Stack.build(settings, model)
    stop_requested = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print("Starting Rasa, the action server and the gateway (about a minute)...", flush=True)
    try:
        stack.start()
    except StartupError as exc:
        print(f"Start-up failed: {exc}", file=sys.stderr)
        return 1
    for process in stack.processes:
        print(
            f"  {process.name:8} ready after {process.ready_after:5.1f} s "
            f"(pid {process.popen.pid if process.popen else '?'}, log {process.log_path})"
        )
    print(
        f"\nTranquillité is running. Chat page: {settings.gateway_url}/\nPress Ctrl-C to stop.",
        flush=True,
    )
    exit_code = 0
    while not stop_requested.wait(1.0):
        dead = stack.check_alive()
        if dead is not None:
            print(f"{dead.name} stopped unexpectedly; see {dead.log_path}", file=sys.stderr)
            exit_code = 1
            break
    print("Stopping...", flush=True)
    stack.stop()
    print("Stopped.")
    return exit_code


# Commands implemented by other packages: `tranquillite NAME ARGS...` calls MODULE.FUNCTION(ARGS).
DELEGATED: dict[str, tuple[str, str, str]] = {
    "explain": ("routing.cli", "explain_main", "explain a routing decision as JSON"),
    "routing-import": (
        "routing.cli",
        "import_main",
        "rebuild routing reference data from the official CSV files",
    ),
    "bench-routing": ("routing.cli", "bench_main", "benchmark routing (load time, decisions/s)"),
    "agency-user": (
        "webhook.agency.cli",
        "user_main",
        "agency agents: add (password from a prompt or stdin), list, disable",
    ),
    "agency-token": (
        "webhook.agency.cli",
        "token_main",
        "agency API tokens: create (printed once), list, revoke",
    ),
    "bench-latency": (
        "webhook.ops.bench_latency",
        "main",
        "latency of a message through the gateway vs directly to Rasa (median, p95, ratio)",
    ),
    "bench-footprint": (
        "webhook.ops.bench_footprint",
        "main",
        "RSS and time to ready per process, Rasa's messages/s, triage start-up, training time",
    ),
    "cluster": (
        "webhook.ops.cluster",
        "main",
        "start HAProxy, N gateways, M Rasa + action servers and the workers on PostgreSQL + Redis",
    ),
    "bench-cluster": (
        "webhook.ops.bench_cluster",
        "main",
        "messages/s, p50/p95 through HAProxy with 1 and 2 Rasa instances, RSS per instance",
    ),
    "triage": ("webhook.nlu.triage", "main", "triage JSON lines from stdin to stdout (SPEC §8)"),
    "eval": (
        "webhook.nlu.evaluate",
        "main",
        "evaluate the model on the held-out split (F1, confusion, entities, danger recall)",
    ),
    "outbox-worker": (
        "webhook.delivery.outbox",
        "worker_main",
        "deliver the outbox as a separate process (agencies, citizens)",
    ),
    "purge": (
        "webhook.store.retention",
        "purge_main",
        "anonymise tickets past their retention period [--dry-run]",
    ),
    "bench-abuse": (
        "webhook.ops.bench_abuse",
        "main",
        "flood of reports under rotating sender ids from one address vs a resident's latency",
    ),
    "bench-tickets": (
        "webhook.ops.bench_tickets",
        "bench_main",
        "benchmark ticket writes per second (SQLite, PostgreSQL)",
    ),
    "veille-worker": (
        "webhook.veille.cli",
        "worker_main",
        "evaluate the cellule de veille's alerts as a separate process [--once]",
    ),
    "veille-recompute": (
        "webhook.veille.cli",
        "recompute_main",
        "evaluate every alert key of a département now",
    ),
    "veille-channel": (
        "webhook.veille.cli",
        "channel_main",
        "e-mail and webhook channels of observers' territories: add, list, disable, enable",
    ),
    "veille-demo": (
        "webhook.veille.cli",
        "demo_main",
        "fill a separate database with a demo year of the cellule de veille (04, 39)",
    ),
    "bench-veille": (
        "webhook.veille.cli",
        "bench_main",
        "time the veille's full recomputation and its evaluation per filing at peak volume",
    ),
}


def _run_delegated(name: str, argv: list[str]) -> int:
    import importlib

    module, function, _ = DELEGATED[name]
    result: int = getattr(importlib.import_module(module), function)(argv)
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tranquillite",
        description="Tranquillité: citizen reporting chatbot and routing to the competent agency.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="install what is missing, train if needed, start everything")
    p.set_defaults(func=_cmd_run)
    p = sub.add_parser("setup", help="create or update the Rasa environment (.venv-rasa)")
    p.set_defaults(func=_cmd_setup)
    p = sub.add_parser("train", help="train the Rasa model if its data or config changed")
    p.add_argument("--force", action="store_true", help="train even if the model exists")
    p.set_defaults(func=_cmd_train)
    p = sub.add_parser("db-upgrade", help="apply database migrations")
    p.set_defaults(func=_cmd_db_upgrade)

    for name, (_, _, help_text) in DELEGATED.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED:
        return _run_delegated(argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except envsetup.SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    raise SystemExit(main())
