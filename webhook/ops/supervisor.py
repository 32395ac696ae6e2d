"""Starts and stops the three processes of the product: Rasa, the action server, the gateway."""

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


@dataclass
class Process:
    name: str
    command: list[str]
    env: dict[str, str]
    ready_url: str
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
        run_dir = s.var_dir / "run"
        log_dir = s.var_dir / "log"
        run_dir.mkdir(parents=True, exist_ok=True)
        endpoints = run_dir / f"endpoints-{s.rasa_port}.yml"
        # may hold the database password: owner only
        private_file(endpoints)
        endpoints.write_text(
            f'action_endpoint:\n  url: "http://{s.host}:{s.actions_port}/webhook"\n'
            + tracker_store_config(s)
        )
        shared = {
            "TRANQUILLITE_GATEWAY_URL": s.gateway_url,
            "TRANQUILLITE_INTERNAL_TOKEN": s.internal_token,
        }
        actions_env = {
            **rasa_env(),
            **shared,
            "SANIC_HOST": s.host,
            "ACTION_SERVER_SANIC_WORKERS": "1",
        }
        gateway_env = {
            **os.environ,
            **shared,
            "TRANQUILLITE_HOST": s.host,
            "TRANQUILLITE_GATEWAY_PORT": str(s.gateway_port),
            "TRANQUILLITE_RASA_URL": s.rasa_url,
            "TRANQUILLITE_DATABASE_URL": s.database_url,
            "TRANQUILLITE_VAR_DIR": str(s.var_dir),
            **self.gateway_env,
        }
        return [
            Process(
                name="actions",
                command=[
                    str(rasa_bin("python")),
                    "-m",
                    "rasa_sdk",
                    "--actions",
                    "actions",
                    "--port",
                    str(s.actions_port),
                ],
                env=actions_env,
                ready_url=f"http://{s.host}:{s.actions_port}/health",
                log_path=log_dir / "actions.log",
            ),
            Process(
                name="rasa",
                command=[
                    str(rasa_bin()),
                    "run",
                    "--model",
                    str(self.model_path),
                    "--endpoints",
                    str(endpoints),
                    "--credentials",
                    str(BOT_DIR / "credentials.yml"),
                    "--logging-config-file",
                    str(BOT_DIR / "logging.yml"),
                    "--interface",
                    s.host,
                    "--port",
                    str(s.rasa_port),
                ],
                env=rasa_env(),
                ready_url=f"{s.rasa_url}/",
                log_path=log_dir / "rasa.log",
            ),
            Process(
                name="gateway",
                command=gateway_command(s),
                env=gateway_env,
                ready_url=f"{s.gateway_url}/health",
                log_path=log_dir / "gateway.log",
            ),
        ]

    def process(self, name: str) -> Process:
        return next(p for p in self.processes if p.name == name)

    def start(self, timeout: float = 240.0) -> None:
        self.started_at = time.monotonic()
        for process in self.processes:
            process.start()
        deadline = self.started_at + timeout
        pending = list(self.processes)
        with httpx.Client(timeout=5.0) as client:
            while pending:
                for process in list(pending):
                    if not process.alive():
                        self.stop()
                        raise StartupError(
                            f"{process.name} exited during start-up; see {process.log_path}"
                        )
                    try:
                        ok = client.get(process.ready_url).status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    if ok:
                        process.ready_after = time.monotonic() - self.started_at
                        pending.remove(process)
                if pending and time.monotonic() > deadline:
                    self.stop()
                    names = ", ".join(p.name for p in pending)
                    raise StartupError(f"not ready after {timeout:.0f} s: {names}")
                if pending:
                    time.sleep(0.5)
            self._warm_up(client)

    def _warm_up(self, client: httpx.Client) -> None:
        """First inference builds TensorFlow graphs: do it before a citizen waits for it."""
        started = time.monotonic()
        client.post(
            f"{self.settings.rasa_url}/webhooks/rest/webhook",
            json={"sender": f"warmup-{secrets.token_hex(4)}", "message": "bonjour"},
            timeout=120.0,
        )
        self.process("rasa").ready_after = (self.process("rasa").ready_after or 0) + (
            time.monotonic() - started
        )

    def check_alive(self) -> Process | None:
        """The first process that died, if any."""
        return next((p for p in self.processes if not p.alive()), None)

    def stop(self) -> None:
        # Gateway first (stops taking messages), then Rasa, then the action server.
        for process in reversed(self.processes):
            process.stop()
