"""Starts and stops the three processes of the product: Rasa, the action server, the gateway.

The builders of each process (:func:`actions_process`, :func:`rasa_process`,
:func:`gateway_process`), the endpoints file (:func:`write_endpoints`) and :func:`wait_ready` are
shared with the local cluster (:mod:`webhook.ops.cluster`: N gateways, M Rasa + action servers).
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from webhook.config import PROJECT_ROOT, Settings
from webhook.ops.envsetup import BOT_DIR, rasa_bin, rasa_env
from webhook.store.db import private_file

logger = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 15.0


class StartupError(Exception):
    """A process did not come up."""


def gateway_command(s: Settings) -> list[str]:
    """uvicorn as the gateway runs: no access log (request lines may hold secrets), and no
    X-Forwarded-For handling by uvicorn — by default it believes that header from 127.0.0.1,
    which lets any local client choose its address; the gateway reads the header itself, from
    the proxies listed in TRANQUILLITE_TRUSTED_PROXIES only (webhook.security.clients)."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "webhook.app:create_app",
        "--factory",
        "--host",
        s.host,
        "--port",
        str(s.gateway_port),
        "--no-access-log",
        "--no-proxy-headers",
    ]


def tracker_store_config(s: Settings) -> str:
    """Rasa's SQL tracker store (YAML for the endpoints file): conversations are kept in a
    database that ``tranquillite purge`` reaches, not in the Rasa process's memory."""
    url = s.rasa_tracker_url
    if url.startswith("postgresql"):
        plain = "postgresql://" + url.split("://", 1)[1]  # Rasa's own driver (psycopg2)
        return f'tracker_store:\n  type: SQL\n  dialect: postgresql\n  url: "{plain}"\n'
    path = Path(url.split("///", 1)[1])
    private_file(path)
    return f'tracker_store:\n  type: SQL\n  dialect: sqlite\n  db: "{path}"\n'


LOCK_STORE_CLASS = "bot.runtime.lock_store.LeasedRedisLockStore"


def lock_store_config(redis_url: str) -> str:
    """Rasa's lock store on Redis (YAML for the endpoints file), needed as soon as more than one
    Rasa instance shares the tracker store: a conversation's messages are processed one at a
    time across instances. Not Rasa's own ``redis`` type (its tickets expire while they wait
    and race between instances) but one renewed lease per conversation,
    ``bot.runtime.lock_store.LeasedRedisLockStore``, whose lifetime is Rasa's
    ``TICKET_LOCK_LIFETIME``. ``redis_url`` is redis://[user:password@]host[:port][/db]."""
    parts = urlsplit(redis_url)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(f"not a redis:// URL: {redis_url!r}")
    lines = [
        "lock_store:",
        f"  type: {LOCK_STORE_CLASS}",
        f'  url: "{parts.hostname or "127.0.0.1"}"',
        f"  port: {parts.port or 6379}",
        f"  db: {int(parts.path.strip('/') or 0)}",
        "  key_prefix: tranquillite",
    ]
    if parts.username:
        lines.append(f'  username: "{parts.username}"')
    if parts.password:
        lines.append(f'  password: "{parts.password}"')
    if parts.scheme == "rediss":
        lines.append("  use_ssl: true")
    return "\n".join(lines) + "\n"


def write_endpoints(path: Path, actions_url: str, tracker_store: str, lock_store: str = "") -> Path:
    """Rasa's endpoints file: its action server, tracker store and (several instances) lock
    store. Owner-only: it may hold the database password."""
    path.parent.mkdir(parents=True, exist_ok=True)
    private_file(path)
    path.write_text(
        f'action_endpoint:\n  url: "{actions_url}/webhook"\n' + tracker_store + lock_store
    )
    return path


@dataclass
class Process:
    name: str
    command: list[str]
    env: dict[str, str]
    # polled until it answers 200; None: ready once started (a worker without an HTTP port)
    ready_url: str | None
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    ready_after: float | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        # Own session: Ctrl-C reaches only the supervisor, which stops children in order.
        self.popen = subprocess.Popen(
            self.command,
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.popen.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=5)

    def kill(self) -> None:
        """SIGKILL, no clean-up (what a crash looks like to the others)."""
        if self.popen is None or self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        self.popen.wait(timeout=10)

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None


def actions_process(
    name: str, host: str, port: int, gateway_url: str, internal_token: str, log_path: Path
) -> Process:
    """A Rasa action server; it files reports through ``gateway_url``'s internal API."""
    env = {
        **rasa_env(),
        "TRANQUILLITE_GATEWAY_URL": gateway_url,
        "TRANQUILLITE_INTERNAL_TOKEN": internal_token,
        "SANIC_HOST": host,
        "ACTION_SERVER_SANIC_WORKERS": "1",
    }
    return Process(
        name=name,
        command=[
            str(rasa_bin("python")),
            "-m",
            "rasa_sdk",
            "--actions",
            "actions",
            "--port",
            str(port),
        ],
        env=env,
        ready_url=f"http://{host}:{port}/health",
        log_path=log_path,
    )


def rasa_process(
    name: str,
    model_path: Path,
    endpoints: Path,
    host: str,
    port: int,
    log_path: Path,
    extra_env: dict[str, str] | None = None,
) -> Process:
    """A Rasa server (REST channel) on ``model_path`` with the given endpoints file."""
    return Process(
        name=name,
        command=[
            str(rasa_bin()),
            "run",
            "--model",
            str(model_path),
            "--endpoints",
            str(endpoints),
            "--credentials",
            str(BOT_DIR / "credentials.yml"),
            "--logging-config-file",
            str(BOT_DIR / "logging.yml"),
            "--interface",
            host,
            "--port",
            str(port),
        ],
        env={**rasa_env(), **(extra_env or {})},
        ready_url=f"http://{host}:{port}/",
        log_path=log_path,
    )


def gateway_process(name: str, s: Settings, log_path: Path, extra_env: dict[str, str]) -> Process:
    """A gateway (uvicorn) configured by ``s`` and ``extra_env`` (which wins)."""
    env = {
        **os.environ,
        "TRANQUILLITE_GATEWAY_URL": s.gateway_url,
        "TRANQUILLITE_INTERNAL_TOKEN": s.internal_token,
        "TRANQUILLITE_HOST": s.host,
        "TRANQUILLITE_GATEWAY_PORT": str(s.gateway_port),
        "TRANQUILLITE_RASA_URL": s.rasa_url,
        "TRANQUILLITE_DATABASE_URL": s.database_url,
        "TRANQUILLITE_VAR_DIR": str(s.var_dir),
        **extra_env,
    }
    return Process(
        name=name,
        command=gateway_command(s),
        env=env,
        ready_url=f"{s.gateway_url}/health",
        log_path=log_path,
    )


def wait_ready(
    processes: list[Process], started_at: float, timeout: float, poll_seconds: float = 0.5
) -> None:
    """Poll every process's ready URL until each answers 200 (sets ``ready_after``); raise
    StartupError at once if one exits, or when ``timeout`` is over. Stops nothing."""
    deadline = started_at + timeout
    pending = list(processes)
    with httpx.Client(timeout=5.0) as client:
        while pending:
            for process in list(pending):
                if not process.alive():
                    raise StartupError(
                        f"{process.name} exited during start-up; see {process.log_path}"
                    )
                if process.ready_url is None:
                    ok = True
                else:
                    try:
                        ok = client.get(process.ready_url).status_code == 200
                    except httpx.HTTPError:
                        ok = False
                if ok:
                    process.ready_after = time.monotonic() - started_at
                    pending.remove(process)
            if pending and time.monotonic() > deadline:
                names = ", ".join(p.name for p in pending)
                raise StartupError(f"not ready after {timeout:.0f} s: {names}")
            if pending:
                time.sleep(poll_seconds)


def warm_up(rasa_url: str) -> float:
    """First inference builds TensorFlow graphs: do it before a citizen waits for it. Returns
    the seconds it took."""
    started = time.monotonic()
    httpx.post(
        f"{rasa_url}/webhooks/rest/webhook",
        json={"sender": f"warmup-{secrets.token_hex(4)}", "message": "bonjour"},
        timeout=120.0,
    )
    return time.monotonic() - started


@dataclass
class Stack:
    settings: Settings
    model_path: Path
    processes: list[Process] = field(default_factory=list)
    started_at: float = 0.0
    # environment of the gateway beyond the settings (e.g. limits of a test or a benchmark)
    gateway_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(
        cls, settings: Settings, model_path: Path, gateway_env: dict[str, str] | None = None
    ) -> Stack:
        if not settings.internal_token:
            settings = replace(settings, internal_token=secrets.token_urlsafe(32))
        stack = cls(settings=settings, model_path=model_path, gateway_env=dict(gateway_env or {}))
        stack.processes = stack._processes()
        return stack

    def _processes(self) -> list[Process]:
        s = self.settings
        log_dir = s.var_dir / "log"
        endpoints = write_endpoints(
            s.var_dir / "run" / f"endpoints-{s.rasa_port}.yml",
            f"http://{s.host}:{s.actions_port}",
            tracker_store_config(s),
        )
        rasa = rasa_process(
            "rasa", self.model_path, endpoints, s.host, s.rasa_port, log_dir / "rasa.log"
        )
        rasa.ready_url = f"{s.rasa_url}/"
        return [
            actions_process(
                "actions",
                s.host,
                s.actions_port,
                s.gateway_url,
                s.internal_token,
                log_dir / "actions.log",
            ),
            rasa,
            gateway_process("gateway", s, log_dir / "gateway.log", self.gateway_env),
        ]

    def process(self, name: str) -> Process:
        return next(p for p in self.processes if p.name == name)

    def start(self, timeout: float = 240.0) -> None:
        self.started_at = time.monotonic()
        for process in self.processes:
            process.start()
        try:
            wait_ready(self.processes, self.started_at, timeout)
        except StartupError:
            self.stop()
            raise
        rasa = self.process("rasa")
        rasa.ready_after = (rasa.ready_after or 0) + warm_up(self.settings.rasa_url)

    def check_alive(self) -> Process | None:
        """The first process that died, if any."""
        return next((p for p in self.processes if not p.alive()), None)

    def stop(self) -> None:
        # Gateway first (stops taking messages), then Rasa, then the action server.
        for process in reversed(self.processes):
            process.stop()
