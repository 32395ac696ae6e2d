"""``tranquillite bench-tickets``: ticket writes per second on SQLite and on PostgreSQL.

A write is one filed report as in production: routing decision, reference number (locked
counter), ticket, destinations, first history event and the outbox rows, in one transaction.
By default it runs on a temporary SQLite file and on a throwaway PostgreSQL database created on
the server of TRANQUILLITE_BENCH_POSTGRES_DSN (default: the test server) and dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from webhook.store import tickets
from webhook.store.db import create_engine, migrate, session_factory

DEFAULT_PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
COMMUNES = ("39198", "39300", "04070", "04112", "75056", "13055")
TYPES = ("incivilite", "arnaque", "vol_cambriolage", "harcelement")


@contextmanager
def throwaway_postgres(admin_dsn: str) -> Iterator[str]:
    import psycopg

    name = f"tranquillite_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def bench_url(url: str, count: int, concurrency_levels: list[int]) -> list[float]:
    engine = create_engine(url)
    try:
        await migrate(engine)
        sessions = session_factory(engine)
        rates: list[float] = []
        for concurrency in concurrency_levels:
            run = uuid.uuid4().hex[:8]
            semaphore = asyncio.Semaphore(concurrency)

            async def one(n: int, run: str = run, semaphore: asyncio.Semaphore = semaphore) -> None:
                async with semaphore:
                    await tickets.file_report(
                        sessions,
                        tickets.NewReport(
                            report_type=TYPES[n % len(TYPES)],
                            commune_insee=COMMUNES[n % len(COMMUNES)],
                            fields={"description": f"benchmark {n}"},
                            channel="api",
                            idempotency_key=f"bench-{run}-{n}",
                        ),
                    )

            started = time.perf_counter()
            await asyncio.gather(*(one(n) for n in range(count)))
            rates.append(count / (time.perf_counter() - started))
        return rates
    finally:
        await engine.dispose()


def bench_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tranquillite bench-tickets",
        description="Ticket writes per second (default: temporary SQLite file and a throwaway "
        "PostgreSQL database).",
    )
    parser.add_argument(
        "--database-url",
        action="append",
        default=None,
        help="SQLAlchemy URL to benchmark (repeatable; tickets are written into it)",
    )
    parser.add_argument("--count", type=int, default=400, help="tickets per run (default 400)")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 20], help="levels (default 1 20)"
    )
    args = parser.parse_args(argv)
    for noisy in ("webhook.store.tickets", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.count < 1 or any(c < 1 for c in args.concurrency):
        parser.error("--count and --concurrency must be positive")

    def report(label: str, rates: list[float]) -> None:
        for concurrency, rate in zip(args.concurrency, rates, strict=True):
            print(
                f"{label:12} concurrency {concurrency:3d}: {rate:8.1f} ticket writes/s", flush=True
            )

    print(f"{args.count} tickets per run")
    if args.database_url:
        for url in args.database_url:
            label = url.split(":", 1)[0].split("+", 1)[0]
            report(label, asyncio.run(bench_url(url, args.count, args.concurrency)))
        return 0
    with tempfile.TemporaryDirectory(prefix="tranquillite-bench-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        report("sqlite", asyncio.run(bench_url(url, args.count, args.concurrency)))
    admin = os.environ.get("TRANQUILLITE_BENCH_POSTGRES_DSN") or os.environ.get(
        "TRANQUILLITE_TEST_POSTGRES_DSN", DEFAULT_PG_DSN
    )
    import psycopg

    try:
        with throwaway_postgres(admin) as pg_url:
            report("postgresql", asyncio.run(bench_url(pg_url, args.count, args.concurrency)))
    except psycopg.OperationalError as exc:
        print(
            f"postgresql   unavailable ({type(exc).__name__}): set TRANQUILLITE_BENCH_POSTGRES_DSN"
        )
        return 1
    return 0
