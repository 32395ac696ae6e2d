"""`tranquillite bench-latency`: latency of a chat message through the gateway vs directly to Rasa.

Sends the same conversations (greetings and report descriptions: no emergency, nothing filed)
through the gateway (``POST /api/v1/chat``) and directly to Rasa's REST channel
(``POST /webhooks/rest/webhook``), at each concurrency level (concurrent conversations), and
prints the median and p95 latency of both paths and their ratio. The gateway's target overhead
is at most 10 %. By default each concurrent worker sends its successive conversations through
the two paths in turn, so that both paths are measured under the same load (the machine may be
shared); ``--separate`` measures them in separate phases instead, alternating their order over
the rounds.

Without ``--gateway-url``/``--rasa-url`` it starts its own stack (Rasa, action server, gateway on
free ports, temporary SQLite file) with the current model (``TRANQUILLITE_MODEL`` if set).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import secrets
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from webhook.config import Settings

# Each conversation: a greeting, then a report described over a few turns. The form then asks
# for the commune, where the conversation stops: nothing is filed.
CONVERSATIONS: tuple[tuple[str, ...], ...] = (
    (
        "Bonjour",
        "Mes voisins mettent la musique très fort tous les soirs",
        "Dans mon immeuble, au troisième étage",
        "depuis deux semaines",
    ),
    (
        "Bonjour, je voudrais faire un signalement",
        "Des sacs poubelle sont déposés derrière le stade",
        "derrière le stade municipal",
        "depuis un mois",
    ),
    (
        "Salut",
        "Il y a des tags sur le mur de la salle des fêtes",
        "rue de la Gare",
        "depuis hier",
    ),
    (
        "Bonsoir",
        "Des voitures sont garées sur le trottoir devant chez moi tous les jours",
        "avenue de la République",
        "tous les jours depuis la rentrée",
    ),
)
PATHS = ("gateway", "rasa")
PATH_LABELS = {"gateway": "gateway POST /api/v1/chat", "rasa": "Rasa REST channel"}
TARGET_OVERHEAD = 0.10


@dataclass
class Cell:
    latencies: list[float] = field(default_factory=list)  # seconds
    errors: int = 0
    wall: float = 0.0

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.wall if self.wall else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def check_messages() -> None:
    """The benchmark must not go down the emergency path: check with the real safety layer."""
    import safety

    for script in CONVERSATIONS:
        for number, message in enumerate(script):
            assessment = safety.assess(message, "fr")
            # after the first message, the scripts answer the report's questions: there the
            # gateway does not let the danger model alone decide (webhook.conversation.turn)
            if assessment.immediate_danger and not (number > 0 and assessment.model_alone):
                raise SystemExit(f"benchmark message flagged as danger: {message!r}")


class Runner:
    def __init__(self, gateway_url: str, rasa_url: str, timeout: float) -> None:
        self.gateway_url = gateway_url.rstrip("/")
        self.rasa_url = rasa_url.rstrip("/")
        self.timeout = timeout
        self._run_id = secrets.token_hex(3)
        self._senders = itertools.count()

    def _new_sender(self, path: str) -> str:
        return f"bench-{self._run_id}-{path[0]}{next(self._senders)}"

    async def _send(
        self, client: httpx.AsyncClient, path: str, sender: str, text: str
    ) -> float | None:
        if path == "gateway":
            url = f"{self.gateway_url}/api/v1/chat"
            body: dict[str, Any] = {"sender": sender, "text": text}
        else:
            # The same request the gateway makes for a web-chat message.
            url = f"{self.rasa_url}/webhooks/rest/webhook"
            body = {
                "sender": f"web-{sender}",
                "message": text,
                "metadata": {"channel": "web", "language": "fr"},
            }
        started = time.perf_counter()
        try:
            response = await client.post(url, json=body)
        except httpx.HTTPError:
            return None
        elapsed = time.perf_counter() - started
        return elapsed if response.status_code == 200 else None

    async def phase(self, paths: Sequence[str], concurrency: int, total: int) -> dict[str, Cell]:
        """``total`` messages per path over ``concurrency`` concurrent conversations.

        With several paths, each worker sends its successive conversations through them in
        turn, so that at any time the paths share the same load (paired measurement)."""
        cells = {path: Cell() for path in paths}
        remaining = dict.fromkeys(paths, total)
        limits = httpx.Limits(
            max_connections=concurrency + 2, max_keepalive_connections=concurrency
        )

        async def worker(client: httpx.AsyncClient, index: int) -> None:
            scripts = itertools.cycle(CONVERSATIONS[index % len(CONVERSATIONS) :] + CONVERSATIONS)
            for turn in itertools.count(index):
                # this conversation's path: the next in turn that still has messages to send
                candidates = [paths[(turn + k) % len(paths)] for k in range(len(paths))]
                path = next((p for p in candidates if remaining[p] > 0), None)
                if path is None:
                    return
                cell = cells[path]
                sender = self._new_sender(path)
                for text in next(scripts):
                    if remaining[path] <= 0:
                        break
                    remaining[path] -= 1
                    latency = await self._send(client, path, sender, text)
                    if latency is None:
                        cell.errors += 1
                    else:
                        cell.latencies.append(latency)

        async with httpx.AsyncClient(timeout=self.timeout, limits=limits) as client:
            started = time.perf_counter()
            await asyncio.gather(*(worker(client, i) for i in range(concurrency)))
            wall = time.perf_counter() - started
        for cell in cells.values():
            cell.wall = wall
        return cells

    async def run(
        self, levels: Sequence[int], messages: int, rounds: int, warmup: int, mixed: bool
    ) -> dict[tuple[int, str], Cell]:
        await self.phase(PATHS, 1, warmup)
        cells = {(c, p): Cell() for c in levels for p in PATHS}
        for round_index in range(rounds):
            order = PATHS if round_index % 2 == 0 else tuple(reversed(PATHS))
            for level in levels:
                groups = [order] if mixed else [(path,) for path in order]
                for group in groups:
                    measured = await self.phase(group, level, messages)
                    for path, cell in measured.items():
                        total = cells[(level, path)]
                        total.latencies += cell.latencies
                        total.errors += cell.errors
                        total.wall += cell.wall
                        print(
                            f"  round {round_index + 1}/{rounds}, {level:2d} conversation(s), "
                            f"{path:7}: median {statistics.median(cell.latencies) * 1000:7.1f} ms"
                            if cell.latencies
                            else f"  round {round_index + 1}: {path} failed",
                            file=sys.stderr,
                            flush=True,
                        )
        return cells


def report(cells: dict[tuple[int, str], Cell], levels: Sequence[int]) -> dict[str, Any]:
    results: dict[str, Any] = {"levels": []}
    lines = [
        f"{'conv.':>5}  {'path':28} {'n':>5} {'median ms':>10} {'p95 ms':>9} "
        f"{'msg/s':>7} {'errors':>6}"
    ]
    for level in levels:
        row: dict[str, Any] = {"concurrency": level}
        for path in PATHS:
            cell = cells[(level, path)]
            median = statistics.median(cell.latencies) * 1000 if cell.latencies else math.nan
            p95 = percentile(cell.latencies, 95) * 1000
            row[path] = {
                "n": len(cell.latencies),
                "median_ms": round(median, 2),
                "p95_ms": round(p95, 2),
                "throughput_per_s": round(cell.throughput, 2),
                "errors": cell.errors,
            }
            lines.append(
                f"{level:>5}  {PATH_LABELS[path]:28} {len(cell.latencies):>5} {median:>10.1f} "
                f"{p95:>9.1f} {cell.throughput:>7.1f} {cell.errors:>6}"
            )
        g, r = row["gateway"], row["rasa"]
        ratio_median = g["median_ms"] / r["median_ms"] if r["median_ms"] else math.nan
        ratio_p95 = g["p95_ms"] / r["p95_ms"] if r["p95_ms"] else math.nan
        verdict = "OK" if ratio_median <= 1 + TARGET_OVERHEAD else "ABOVE TARGET"
        row["ratio_median"] = round(ratio_median, 3)
        row["ratio_p95"] = round(ratio_p95, 3)
        row["overhead_median_ms"] = round(g["median_ms"] - r["median_ms"], 2)
        row["within_target"] = ratio_median <= 1 + TARGET_OVERHEAD
        lines.append(
            f"{level:>5}  {'ratio gateway / Rasa':28} {'':>5} {ratio_median:>10.3f} "
            f"{ratio_p95:>9.3f}   overhead {row['overhead_median_ms']:+.1f} ms on the median "
            f"({(ratio_median - 1) * 100:+.1f} %, target ≤ {TARGET_OVERHEAD * 100:.0f} %: "
            f"{verdict})"
        )
        results["levels"].append(row)
    print("\n".join(lines))
    return results


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def local_stack_settings(var_dir: Path) -> Settings:
    """Settings of a throwaway stack for a benchmark: free ports on 127.0.0.1, SQLite in
    ``var_dir``, no internal token."""
    rasa_port = _free_port()
    return replace(
        Settings.from_env(),
        host="127.0.0.1",
        gateway_port=_free_port(),
        rasa_port=rasa_port,
        actions_port=_free_port(),
        var_dir=var_dir,
        database_url=f"sqlite+aiosqlite:///{var_dir / 'bench.db'}",
        rasa_url=f"http://127.0.0.1:{rasa_port}",
        internal_token="",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tranquillite bench-latency",
        description="Median and p95 latency of a chat message through the gateway and directly "
        "to Rasa's REST channel, and their ratio (target: gateway overhead ≤ 10 %).",
    )
    parser.add_argument("--gateway-url", help="running gateway (else a stack is started)")
    parser.add_argument("--rasa-url", help="its Rasa server (with --gateway-url)")
    parser.add_argument(
        "--concurrency", default="1,20", help="concurrent conversations, comma-separated"
    )
    parser.add_argument(
        "--messages", type=int, default=100, help="messages per path, level and round"
    )
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (default 2)")
    parser.add_argument("--warmup", type=int, default=8, help="unmeasured messages per path")
    parser.add_argument(
        "--separate",
        action="store_true",
        help="measure each path in its own phase (default: the two paths alternate conversation "
        "by conversation in the same phase, so that both see the same load)",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="per request, seconds")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    levels = [int(x) for x in args.concurrency.split(",") if x.strip()]
    if bool(args.gateway_url) != bool(args.rasa_url):
        print("error: give both --gateway-url and --rasa-url, or neither", file=sys.stderr)
        return 2
    check_messages()
    stack = None
    gateway_url, rasa_url = args.gateway_url, args.rasa_url
    if not gateway_url:
        from webhook.ops import envsetup
        from webhook.ops.supervisor import Stack, StartupError

        var_dir = Path(tempfile.mkdtemp(prefix="tranquillite-bench-"))
        settings = local_stack_settings(var_dir)
        stack = Stack.build(settings, envsetup.ensure_model())
        print(f"Starting a stack (logs in {var_dir / 'log'})...", file=sys.stderr, flush=True)
        try:
            stack.start()
        except StartupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        gateway_url, rasa_url = settings.gateway_url, settings.rasa_url
    try:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
        print(
            f"Benchmark: {args.messages} messages per path, level and round, {args.rounds} "
            f"rounds, levels {levels}, paths "
            f"{'in separate phases' if args.separate else 'alternating in the same phase'}; "
            f"{os.cpu_count()} CPUs, load average {load:.2f}",
            flush=True,
        )
        runner = Runner(gateway_url, rasa_url, args.timeout)
        cells = asyncio.run(
            runner.run(levels, args.messages, args.rounds, args.warmup, not args.separate)
        )
        results = report(cells, levels)
        if stack is not None:
            # The gateway answers from its guided mode when Rasa fails (degraded mode): such
            # answers would not be a measurement of the gateway in front of Rasa.
            log = stack.process("gateway").log_path.read_text(errors="replace")
            fallbacks = log.count("Rasa REST channel failed")
            results["gateway_rasa_failures"] = fallbacks
            print(f"Gateway calls to Rasa that failed (degraded-mode answers): {fallbacks}")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    finally:
        if stack is not None:
            stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
