"""`tranquillite bench-abuse`: a flood of reports under rotating sender ids from one address,
while a resident keeps chatting from another one.

Bounded: ``--reports`` complete guided reports (menu, type, answers, summary, "Envoyer"), each
under a new sender id, ``--concurrency`` at a time, all from one address (203.0.113.66); in
parallel, one legitimate conversation (198.51.100.20) makes guided reports again and again. It
prints how many flood reports were filed, refused at filing (429), cut off by the message limits
(429 before the summary) or failed (5xx, network), the gateway's resident memory (RSS) before
and after and its peak, and the legitimate conversation's latency (median, p95) alone and during
the flood.

Without ``--gateway-url`` it starts its own gateway as ``tranquillite run`` does (uvicorn, a
temporary SQLite file, Rasa absent: the guided mode answers, which needs no model) behind a
"reverse proxy" it plays itself: the gateway trusts X-Forwarded-For from 127.0.0.1 only for this
run (``TRANQUILLITE_TRUSTED_PROXIES``), so that the two addresses are distinct. With
``--gateway-url`` the gateway must trust this machine as a proxy the same way; ``--gateway-pid``
then gives the process whose memory to read.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

FLOODER = "203.0.113.66"
RESIDENT = "198.51.100.20"
# the guided report of the flood and of the resident: an incivilité in Lons-le-Saunier
STEPS: tuple[tuple[str, str], ...] = (
    ("payload", "/mode_guide"),
    ("payload", "/guide:type:incivilite"),
    ("button", "Passer"),
    ("button", "Bruit"),
    ("text", "Place de la Liberté"),
    ("button", "Tous les jours"),
    ("text", "lons le saunier"),
    ("payload", "/guide:send"),
)


REFUSED = "refused at filing (429)"
CUT_OFF = "cut off before the summary (429)"


class Cut(Exception):
    """A step of a report was refused (429) or failed: the report goes no further."""

    def __init__(self, status: int, at_filing: bool = False) -> None:
        super().__init__(str(status))
        self.status = status
        self.at_filing = at_filing


def _payload_of(data: dict[str, Any], title: str) -> str:
    for message in data.get("messages", []):
        for button in message.get("buttons", []):
            if button.get("title") == title:
                return str(button["payload"])
    raise Cut(0)


async def guided_report(
    client: httpx.AsyncClient, sender: str, address: str, latencies: list[float] | None = None
) -> str:
    """One guided report; returns "filed", or raises :class:`Cut` with the refusing status."""
    headers = {"X-Forwarded-For": address}
    last: dict[str, Any] = {}
    for index, (kind, value) in enumerate(STEPS):
        at_filing = index == len(STEPS) - 1
        body: dict[str, Any] = {"sender": sender}
        if kind == "button":
            body["payload"] = _payload_of(last, value)
        else:
            body[kind] = value
        started = time.perf_counter()
        try:
            response = await client.post("/api/v1/chat", json=body, headers=headers)
        except httpx.HTTPError:
            raise Cut(-1, at_filing) from None
        if latencies is not None:
            latencies.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise Cut(response.status_code, at_filing)
        last = response.json()
    return "filed" if last.get("tickets") else "not filed"


@dataclass
class Flood:
    outcomes: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


async def flood(client: httpx.AsyncClient, reports: int, concurrency: int) -> Flood:
    result = Flood()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(reports):
        queue.put_nowait(n)

    async def worker() -> None:
        while True:
            try:
                n = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            sender = f"flood{n}{secrets.token_hex(4)}"
            try:
                outcome = await guided_report(client, sender, FLOODER)
            except Cut as cut:
                if cut.status == 429:
                    outcome = REFUSED if cut.at_filing else CUT_OFF
                elif cut.status >= 500 or cut.status < 0:
                    outcome = "failed (5xx or network)"
                else:
                    outcome = f"answered HTTP {cut.status}"
            result.outcomes[outcome] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result


async def resident(client: httpx.AsyncClient, stop: asyncio.Event, latencies: list[float]) -> int:
    """The legitimate conversation: guided reports one after the other until ``stop``."""
    sender = f"resident{secrets.token_hex(4)}"
    done = 0
    while not stop.is_set():
        try:
            await guided_report(client, sender, RESIDENT, latencies)
        except Cut:
            pass
        done += 1
        await asyncio.sleep(0.2)  # a person reads before answering
    return done


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def rss_kib(pid: int | None) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) of a process in KiB, from /proc (Linux)."""
    if pid is None:
        return None
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    values = {
        line.split(":")[0]: int(line.split()[1])
        for line in lines
        if line.startswith(("VmRSS", "VmHWM"))
    }
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_gateway(var_dir: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """The gateway as `tranquillite run` starts it, alone (Rasa absent: the guided mode)."""
    from webhook.config import PROJECT_ROOT, Settings
    from webhook.ops.supervisor import gateway_command

    settings = replace(
        Settings.from_env(),
        host="127.0.0.1",
        gateway_port=_free_port(),
        var_dir=var_dir,
        database_url=f"sqlite+aiosqlite:///{var_dir / 'bench-abuse.db'}",
        rasa_url=f"http://127.0.0.1:{_free_port()}",
    )
    env = {
        **os.environ,
        "TRANQUILLITE_VAR_DIR": str(var_dir),
        "TRANQUILLITE_DATABASE_URL": settings.database_url,
        "TRANQUILLITE_RASA_URL": settings.rasa_url,
        "TRANQUILLITE_TRUSTED_PROXIES": "127.0.0.1",
        "TRANQUILLITE_TELEGRAM_TOKEN": "",
    }
    log = (var_dir / "gateway.log").open("wb")
    process = subprocess.Popen(
        gateway_command(settings), cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    log.close()
    deadline = time.monotonic() + 90
    with httpx.Client(timeout=5.0) as client:
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the gateway exited; see {var_dir / 'gateway.log'}")
            try:
                if client.get(f"{settings.gateway_url}/health").status_code in (200, 503):
                    return settings.gateway_url, process
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                process.kill()
                raise SystemExit("the gateway did not start")
            time.sleep(0.3)


def _ms(values: Sequence[float]) -> str:
    if not values:
        return "no answer"
    return (
        f"median {statistics.median(values) * 1000:6.1f} ms, "
        f"p95 {percentile(values, 0.95) * 1000:6.1f} ms ({len(values)} messages)"
    )


async def run(url: str, pid: int | None, reports: int, concurrency: int, warmup: float) -> None:
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60.0, limits=limits) as client:
        # the resident alone: the usual latency
        alone: list[float] = []
        stop = asyncio.Event()
        task = asyncio.create_task(resident(client, stop, alone))
        await asyncio.sleep(warmup)
        stop.set()
        await task
        before = rss_kib(pid)

        during: list[float] = []
        stop = asyncio.Event()
        task = asyncio.create_task(resident(client, stop, during))
        result = await flood(client, reports, concurrency)
        stop.set()
        await task
        after = rss_kib(pid)

    print(f"gateway {url}" + (f" (pid {pid})" if pid else ""))
    print(
        f"flood: {reports} guided reports from {FLOODER}, each under a new sender id, "
        f"{concurrency} at a time, in {result.seconds:.1f} s"
    )
    for outcome in ("filed", REFUSED, CUT_OFF):
        print(f"  {outcome:34} {result.outcomes.get(outcome, 0):6d}")
    for outcome, count in sorted(result.outcomes.items()):
        if outcome not in ("filed", REFUSED, CUT_OFF):
            print(f"  {outcome:34} {count:6d}")
    if before and after:
        print(
            f"gateway RSS: before {before[0] / 1024:.1f} MiB, after {after[0] / 1024:.1f} MiB, "
            f"peak {after[1] / 1024:.1f} MiB"
        )
    else:
        print("gateway RSS: not measured (no --gateway-pid)")
    print(f"resident ({RESIDENT}) alone:        {_ms(alone)}")
    print(f"resident during the flood:       {_ms(during)}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tranquillite bench-abuse",
        description="Flood of reports under rotating sender ids from one address vs a resident.",
    )
    parser.add_argument("--reports", type=int, default=200, help="flood reports (default 200)")
    parser.add_argument("--concurrency", type=int, default=20, help="at a time (default 20)")
    parser.add_argument(
        "--warmup", type=float, default=10.0, help="seconds of the resident alone (default 10)"
    )
    parser.add_argument("--gateway-url", help="a running gateway (trusting 127.0.0.1 as proxy)")
    parser.add_argument("--gateway-pid", type=int, help="its process id, to read its memory")
    args = parser.parse_args(argv)
    if args.reports < 1 or args.concurrency < 1:
        parser.error("--reports and --concurrency must be positive")
    if args.gateway_url:
        asyncio.run(
            run(args.gateway_url, args.gateway_pid, args.reports, args.concurrency, args.warmup)
        )
        return 0
    with tempfile.TemporaryDirectory(prefix="tq-bench-abuse-") as tmp:
        url, process = start_gateway(Path(tmp))
        try:
            asyncio.run(run(url, process.pid, args.reports, args.concurrency, args.warmup))
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
