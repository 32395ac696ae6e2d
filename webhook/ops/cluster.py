"""`tranquillite cluster`: the production layout on this machine, on 127.0.0.1.

HAProxy (Debian's, ``scripts/install_cluster_parts.sh``) in front of N gateways, M Rasa servers
each with its own action server, the outbox worker and the cellule de veille's worker as their
own processes, on PostgreSQL (a database of the local server, created if missing) and Redis:

* every gateway gets the M Rasa URLs (``TRANQUILLITE_RASA_URLS``: each conversation goes to its
  instance, :mod:`webhook.conversation.rasa_client`), the same database, Redis, internal token and
  secret key, and ``TRANQUILLITE_OUTBOX_WORKER=off`` / ``TRANQUILLITE_VEILLE_WORKER=off``;
* every Rasa server keeps conversations in PostgreSQL (SQL tracker store) and, with more than
  one instance, takes a conversation's lock in Redis (lock store);
* every action server files reports through the load balancer (any gateway);
* HAProxy balances the gateways round-robin and checks each one's ``/health`` every second.

The schema is migrated once before the gateways start (they start with auto-migration off), and
the first Rasa server creates the tracker store's table before the others start (two creating it
at once would collide). :class:`Cluster` is the Python API of the tests and of
``bench-cluster``: ``start()`` polls every process until it answers (and HAProxy until it sees
every gateway up), ``stop()`` stops them all, load balancer first.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

import httpx
import psycopg
from psycopg import sql

from webhook.config import PROJECT_ROOT, Settings
from webhook.ops.supervisor import (
    Process,
    StartupError,
    actions_process,
    gateway_process,
    lock_store_config,
    rasa_process,
    tracker_store_config,
    wait_ready,
    warm_up,
    write_endpoints,
)

HAPROXY = os.environ.get("TQ_HAPROXY", "/usr/sbin/haproxy")
INSTALL_SCRIPT = PROJECT_ROOT / "scripts" / "install_cluster_parts.sh"
DEFAULT_POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
# the gateways' shared state (webhook.store.state); Rasa's lock store uses LOCK_STORE_DB
DEFAULT_REDIS = "redis://127.0.0.1:6379/2"
# Redis database of Rasa's lock store (the gateways' state uses the URL's own database)
LOCK_STORE_DB = 1
# A killed Rasa leaves its conversation's ticket lock in Redis until it expires: short enough
# that a conversation moved to another instance waits little, long enough for a message.
TICKET_LOCK_LIFETIME_SECONDS = 20


# Load tests and benchmarks play hundreds of residents from one address (127.0.0.1): the limits
# of one address are those of that bench, not of production.
ONE_ADDRESS_BENCH_LIMITS = {
    "TRANQUILLITE_LIMIT_MESSAGES_PER_ADDRESS": "100000,100000/s",
    "TRANQUILLITE_LIMIT_CONVERSATIONS_PER_ADDRESS": "100000,100000/h",
    "TRANQUILLITE_LIMIT_MAX_CONVERSATIONS_PER_ADDRESS": "100000",
    "TRANQUILLITE_LIMIT_FILINGS_PER_ADDRESS": "100000,100000/h",
    "TRANQUILLITE_LIMIT_FILINGS_PER_CONVERSATION": "1000,1000/h",
}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class ClusterConfig:
    gateways: int = 2
    rasa: int = 2
    host: str = "127.0.0.1"
    # the load balancer's port (0: a free one); every other process gets a free port
    port: int = 0
    database: str = "tranquillite_cluster"
    # drop and create the database first (tests, benchmarks)
    fresh_database: bool = False
    postgres_admin_dsn: str = DEFAULT_POSTGRES_ADMIN
    redis_url: str = DEFAULT_REDIS
    var_dir: Path = field(default_factory=lambda: PROJECT_ROOT / "var" / "cluster")
    # seconds a gateway waits for a Rasa instance (a loaded 2-core machine is slow)
    rasa_timeout: float = 60.0
    # environment of every gateway beyond the cluster's (e.g. a test's limits)
    gateway_env: dict[str, str] = field(default_factory=dict)
    # seconds between HAProxy's health checks of each gateway
    check_interval: float = 1.0


def _dsn_for(admin_dsn: str, database: str) -> str:
    parts = urlsplit(admin_dsn)
    return parts._replace(path=f"/{database}").geturl()


def ensure_database(admin_dsn: str, database: str, fresh: bool) -> str:
    """Create ``database`` on the server of ``admin_dsn`` if missing (dropped first when
    ``fresh``); returns its SQLAlchemy URL for the gateways (psycopg 3 driver)."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if exists and fresh:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(database)))
            exists = None
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    return "postgresql+psycopg://" + _dsn_for(admin_dsn, database).split("://", 1)[1]


def _migrate(database_url: str) -> None:
    from webhook.store.db import create_engine, migrate

    async def run() -> None:
        engine = create_engine(database_url)
        try:
            await migrate(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())


def _table_exists(database_url: str, table: str) -> bool:
    dsn = "postgresql://" + database_url.split("://", 1)[1]
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT to_regclass(%s)", (f"public.{table}",)).fetchone()
    return row is not None and row[0] is not None


def haproxy_config(
    host: str,
    port: int,
    stats_port: int,
    gateways: Sequence[tuple[str, str, int]],
    check_interval: float = 1.0,
) -> str:
    """HAProxy's configuration: one frontend, the gateways round-robin with health checks on
    ``/health``, a statistics page (CSV) on ``stats_port``. No access log: request lines may
    hold secrets (the gateways log what they need, without message text)."""
    inter = f"{max(int(check_interval * 1000), 100)}ms"
    servers = "\n".join(
        f"    server {name} {server_host}:{server_port} check"
        for name, server_host, server_port in gateways
    )
    return f"""# Generated by webhook/ops/cluster.py (deploy/haproxy.cfg is the documented copy)
global
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    timeout http-request 15s
    # a gateway busy with a burst may take seconds to answer its check: only a gateway that
    # answers nothing for 10 s (or refuses connections) is taken out
    timeout check 10s
    # a request is retried on another gateway only when no connection could be made (a message
    # that reached a gateway is never sent twice by the load balancer)
    retries 2
    option redispatch 1
    retry-on conn-failure

frontend tranquillite
    bind {host}:{port}
    option forwardfor
    default_backend gateways

backend gateways
    balance roundrobin
    option httpchk GET /health
    http-check expect status 200
    default-server inter {inter} fall 2 rise 1 on-marked-down shutdown-sessions
{servers}

listen stats
    bind {host}:{stats_port}
    stats enable
    stats uri /stats
    stats refresh 5s
"""


def haproxy_process(config_path: Path, stats_url: str, log_path: Path) -> Process:
    return Process(
        name="haproxy",
        # -db: foreground, no daemon (stopped by the launcher); -W: master-worker
        command=[HAPROXY, "-db", "-W", "-f", str(config_path)],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        ready_url=stats_url,
        log_path=log_path,
    )


def ensure_haproxy() -> None:
    if not Path(HAPROXY).is_file():
        raise StartupError(f"HAProxy not found at {HAPROXY}: run {INSTALL_SCRIPT}")


@dataclass
class Cluster:
    config: ClusterConfig
    model_path: Path
    settings: Settings
    database_url: str = ""
    processes: list[Process] = field(default_factory=list)
    started_at: float = 0.0
    lb_url: str = ""
    stats_url: str = ""
    rasa_urls: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, config: ClusterConfig, model_path: Path) -> Cluster:
        host = config.host
        settings = replace(
            Settings.from_env(),
            host=host,
            var_dir=config.var_dir,
            internal_token=secrets.token_urlsafe(32),
            secret_key=secrets.token_urlsafe(32),
        )
        cluster = cls(config=config, model_path=model_path, settings=settings)
        cluster.lb_url = f"http://{host}:{config.port or free_port(host)}"
        cluster.stats_url = f"http://{host}:{free_port(host)}/stats"
        return cluster

    # ----------------------------------------------------------------------------- layout
    def _layout(self) -> list[Process]:
        c, s = self.config, self.settings
        run_dir, log_dir = c.var_dir / "run", c.var_dir / "log"
        run_dir.mkdir(parents=True, exist_ok=True)
        tracker = tracker_store_config(replace(s, database_url=self.database_url))
        redis = urlsplit(c.redis_url)
        lock = (
            lock_store_config(redis._replace(path=f"/{LOCK_STORE_DB}").geturl())
            if c.rasa > 1
            else ""
        )
        processes: list[Process] = []
        self.rasa_urls = []
        for i in range(1, c.rasa + 1):
            actions_port, rasa_port = free_port(c.host), free_port(c.host)
            endpoints = write_endpoints(
                run_dir / f"endpoints-rasa-{i}.yml",
                f"http://{c.host}:{actions_port}",
                tracker,
                lock,
            )
            processes.append(
                actions_process(
                    f"actions-{i}",
                    c.host,
                    actions_port,
                    self.lb_url,
                    s.internal_token,
                    log_dir / f"actions-{i}.log",
                )
            )
            processes.append(
                rasa_process(
                    f"rasa-{i}",
                    self.model_path,
                    endpoints,
                    c.host,
                    rasa_port,
                    log_dir / f"rasa-{i}.log",
                    {"TICKET_LOCK_LIFETIME": str(TICKET_LOCK_LIFETIME_SECONDS)},
                )
            )
            self.rasa_urls.append(f"http://{c.host}:{rasa_port}")
        shared_env = {
            "TRANQUILLITE_DATABASE_URL": self.database_url,
            "TRANQUILLITE_REDIS_URL": c.redis_url,
            "TRANQUILLITE_INTERNAL_TOKEN": s.internal_token,
            "TRANQUILLITE_SECRET_KEY": s.secret_key,
            "TRANQUILLITE_VAR_DIR": str(c.var_dir),
            "TRANQUILLITE_OUTBOX_WORKER": "off",
            "TRANQUILLITE_VEILLE_WORKER": "off",
            # links in e-mails and the action servers' calls go through the load balancer
            "TRANQUILLITE_DASHBOARD_URL": f"{self.lb_url}/agence",
        }
        gateways: list[tuple[str, str, int]] = []
        for i in range(1, c.gateways + 1):
            port = free_port(c.host)
            gs = replace(
                s,
                gateway_port=port,
                database_url=self.database_url,
                rasa_url=self.rasa_urls[0],
                rasa_urls=tuple(self.rasa_urls),
            )
            env = {
                **shared_env,
                "TRANQUILLITE_RASA_URLS": ",".join(self.rasa_urls),
                "TRANQUILLITE_RASA_TIMEOUT": str(c.rasa_timeout),
                "TRANQUILLITE_AUTO_MIGRATE": "0",
                # the load balancer's X-Forwarded-For tells the citizen's address
                "TRANQUILLITE_TRUSTED_PROXIES": c.host,
                **c.gateway_env,
            }
            processes.append(gateway_process(f"gateway-{i}", gs, log_dir / f"gateway-{i}.log", env))
            gateways.append((f"gateway-{i}", c.host, port))
        worker_env = {**os.environ, **shared_env, "TRANQUILLITE_GATEWAY_URL": self.lb_url}
        for name, command in (
            ("outbox-worker", "outbox-worker"),
            ("veille-worker", "veille-worker"),
        ):
            processes.append(
                Process(
                    name=name,
                    command=[sys.executable, "-m", "webhook.cli", command],
                    env=worker_env,
                    ready_url=None,
                    log_path=log_dir / f"{name}.log",
                )
            )
        lb_port = int(urlsplit(self.lb_url).port or 0)
        stats_port = int(urlsplit(self.stats_url).port or 0)
        config_path = run_dir / "haproxy.cfg"
        config_path.write_text(
            haproxy_config(c.host, lb_port, stats_port, gateways, c.check_interval)
        )
        processes.append(haproxy_process(config_path, self.stats_url, log_dir / "haproxy.log"))
        return processes

    # ----------------------------------------------------------------------------- API
    def process(self, name: str) -> Process:
        return next(p for p in self.processes if p.name == name)

    def named(self, prefix: str) -> list[Process]:
        return [p for p in self.processes if p.name.startswith(prefix)]

    def start(self, timeout: float = 600.0) -> None:
        """Start everything and return when every process answers and HAProxy sees every
        gateway up. On failure, stops what was started and raises StartupError."""
        ensure_haproxy()
        self.started_at = time.monotonic()
        deadline = self.started_at + timeout
        self.database_url = ensure_database(
            self.config.postgres_admin_dsn, self.config.database, self.config.fresh_database
        )
        _migrate(self.database_url)
        self.processes = self._layout()
        try:
            rasas = self.named("rasa-")
            first, others = rasas[0], rasas[1:]
            for process in self.processes:
                if process not in others:
                    process.start()
            # the first Rasa creates the tracker store's table; then the others start
            while others and not _table_exists(self.database_url, "events"):
                if not first.alive():
                    raise StartupError(f"{first.name} exited during start-up; see {first.log_path}")
                if time.monotonic() > deadline:
                    raise StartupError(f"{first.name} did not create the tracker store's table")
                time.sleep(0.5)
            for process in others:
                process.start()
            wait_ready(self.processes, self.started_at, max(deadline - time.monotonic(), 1.0))
            for process, url in zip(rasas, self.rasa_urls, strict=True):
                process.ready_after = (process.ready_after or 0) + warm_up(url)
            self.wait_backends_up(max(deadline - time.monotonic(), 1.0))
        except BaseException:
            self.stop()
            raise

    def backend_status(self) -> dict[str, str]:
        """The load balancer's view of each gateway (UP, DOWN, ...), from its statistics."""
        response = httpx.get(f"{self.stats_url};csv", timeout=5.0)
        response.raise_for_status()
        lines = response.text.lstrip("# ").splitlines()
        header = lines[0].split(",")
        status: dict[str, str] = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(","), strict=False))
            if row.get("pxname") == "gateways" and row.get("svname") not in ("BACKEND", None):
                status[row["svname"]] = row.get("status", "")
        return status

    def wait_backends_up(self, timeout: float = 60.0, names: Sequence[str] | None = None) -> None:
        """Poll HAProxy until the gateways ``names`` (all by default) are UP."""
        wanted = list(names or [p.name for p in self.named("gateway-")])
        deadline = time.monotonic() + timeout
        while True:
            status = self.backend_status()
            if all(status.get(n, "").startswith("UP") for n in wanted):
                return
            if time.monotonic() > deadline:
                raise StartupError(f"HAProxy does not see every gateway up: {status}")
            time.sleep(0.2)

    def wait_backend_down(self, name: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.backend_status().get(name, "").startswith("DOWN"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"HAProxy still sees {name} up")
            time.sleep(0.2)

    def check_alive(self) -> Process | None:
        return next((p for p in self.processes if not p.alive()), None)

    def stop(self) -> None:
        """Load balancer first (no new requests), then gateways and workers, Rasa servers,
        action servers."""
        order = ("haproxy", "gateway-", "outbox-", "veille-", "rasa-", "actions-")
        for prefix in order:
            for process in self.named(prefix):
                process.stop()

    def describe(self) -> list[str]:
        return [
            f"  {p.name:14} pid {p.pid or '?':>7}  ready after "
            f"{p.ready_after if p.ready_after is not None else float('nan'):6.1f} s  "
            f"log {p.log_path}"
            for p in self.processes
        ]


@contextmanager
def running(config: ClusterConfig, model_path: Path, timeout: float = 600.0) -> Iterator[Cluster]:
    """A started cluster, stopped on exit."""
    cluster = Cluster.build(config, model_path)
    cluster.start(timeout)
    try:
        yield cluster
    finally:
        cluster.stop()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tranquillite cluster",
        description="Start HAProxy, N gateways, M Rasa + action servers, the outbox and veille "
        "workers on 127.0.0.1, on PostgreSQL and Redis; Ctrl-C stops everything.",
    )
    parser.add_argument("--gateways", type=int, default=2, help="gateway instances (default 2)")
    parser.add_argument("--rasa", type=int, default=2, help="Rasa + action servers (default 2)")
    parser.add_argument("--port", type=int, default=8080, help="load balancer port (default 8080)")
    parser.add_argument(
        "--database",
        default="tranquillite_cluster",
        help="PostgreSQL database (created if missing)",
    )
    parser.add_argument(
        "--postgres", default=DEFAULT_POSTGRES_ADMIN, help="PostgreSQL server (admin DSN)"
    )
    parser.add_argument("--redis", default=DEFAULT_REDIS, help="Redis URL")
    parser.add_argument(
        "--var-dir", type=Path, help="logs and run files (default: a temporary directory)"
    )
    parser.add_argument("--fresh", action="store_true", help="drop and recreate the database")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from webhook.ops import envsetup

    args = build_parser().parse_args(argv)
    if args.gateways < 1 or args.rasa < 1:
        print("error: at least one gateway and one Rasa", file=sys.stderr)
        return 2
    var_dir = args.var_dir or Path(tempfile.mkdtemp(prefix="tranquillite-cluster-"))
    config = ClusterConfig(
        gateways=args.gateways,
        rasa=args.rasa,
        port=args.port,
        database=args.database,
        fresh_database=args.fresh,
        postgres_admin_dsn=args.postgres,
        redis_url=args.redis,
        var_dir=var_dir,
    )
    if not Path(HAPROXY).is_file():
        print(f"HAProxy missing: running {INSTALL_SCRIPT}", flush=True)
        subprocess.run([str(INSTALL_SCRIPT)], check=False)
    model = envsetup.ensure_model()
    cluster = Cluster.build(config, model)
    stop_requested = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(
        f"Starting {args.gateways} gateway(s), {args.rasa} Rasa + action server(s), workers and "
        f"HAProxy (logs in {var_dir / 'log'})...",
        flush=True,
    )
    try:
        cluster.start()
    except StartupError as exc:
        print(f"Start-up failed: {exc}", file=sys.stderr)
        return 1
    print("\n".join(cluster.describe()))
    print(
        f"\nTranquillité cluster running. Chat page: {cluster.lb_url}/  "
        f"(HAProxy statistics: {cluster.stats_url})\nPress Ctrl-C to stop.",
        flush=True,
    )
    exit_code = 0
    while not stop_requested.wait(1.0):
        dead = cluster.check_alive()
        if dead is not None:
            print(f"{dead.name} stopped unexpectedly; see {dead.log_path}", file=sys.stderr)
            exit_code = 1
            break
    print("Stopping...", flush=True)
    cluster.stop()
    print("Stopped.")
    return exit_code


if __name__ == "__main__":
    raise SystemExit(main())
