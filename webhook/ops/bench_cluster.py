"""`tranquillite bench-cluster`: throughput and latency of the local cluster through HAProxy.

For each number of Rasa instances (``--rasa``, default 1 and 2) it starts the local cluster
(:mod:`webhook.ops.cluster`: HAProxy, ``--gateways`` gateways, the Rasa + action servers, the
workers, on PostgreSQL and Redis), then sends the scripted conversations of ``bench-latency``
(greeting and a report described over a few turns; nothing is filed) through the load balancer
at each concurrency level (``--concurrency``, default 20 and 100 concurrent conversations), and
prints messages per second, median and p95 latency, errors, and the resident memory (RSS, with
children) of every process after the load. No figure is asserted: the machine may be shared; its
CPU count and load average are printed with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from webhook.ops import bench_latency
from webhook.ops.bench_footprint import load_average, process_tree, rss_bytes
from webhook.ops.cluster import DEFAULT_REDIS, ONE_ADDRESS_BENCH_LIMITS, Cluster, ClusterConfig

MB = 1_000_000


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of ``pid`` and its descendants so far, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def cpu_by_kind(cluster: Cluster) -> dict[str, float]:
    """CPU seconds used so far by each kind of process (rasa, actions, gateway, ...)."""
    kinds: dict[str, float] = {}
    for p in cluster.processes:
        if p.pid is not None and p.alive():
            kind = p.name.rsplit("-", 1)[0] if p.name[-1].isdigit() else p.name
            kinds[kind] = kinds.get(kind, 0.0) + cpu_seconds(p.pid)
    return kinds


def measure(
    cluster: Cluster, levels: Sequence[int], messages: int, warmup: int, timeout: float
) -> list[dict[str, Any]]:
    runner = bench_latency.Runner(cluster.lb_url, cluster.lb_url, timeout)
    rows: list[dict[str, Any]] = []

    async def run() -> None:
        await runner.phase(("gateway",), 2, warmup)
        for level in levels:
            load = load_average()
            # every concurrent conversation gets at least one whole script
            total = max(messages, level * len(bench_latency.CONVERSATIONS[0]))
            cpu_before = cpu_by_kind(cluster)
            cell = (await runner.phase(("gateway",), level, total))["gateway"]
            cpu_after = cpu_by_kind(cluster)
            latencies = cell.latencies
            # CPU per answered message, per kind of process: what sizing needs, whatever else
            # the machine was doing
            cpu_ms = (
                {
                    kind: round(
                        (cpu_after[kind] - cpu_before.get(kind, 0.0)) * 1000 / len(latencies), 1
                    )
                    for kind in cpu_after
                }
                if latencies
                else {}
            )
            rows.append(
                {
                    "concurrency": level,
                    "messages": len(latencies),
                    "errors": cell.errors,
                    "messages_per_second": round(cell.throughput, 2),
                    "p50_ms": round(statistics.median(latencies) * 1000, 1)
                    if latencies
                    else math.nan,
                    "p95_ms": round(bench_latency.percentile(latencies, 95) * 1000, 1),
                    "load_average_before": round(load, 2),
                    "cpu_ms_per_message": cpu_ms,
                }
            )
            print(
                f"  {len(cluster.rasa_urls)} Rasa, {level:3d} conversations: "
                f"{cell.throughput:6.1f} msg/s",
                file=sys.stderr,
                flush=True,
            )

    asyncio.run(run())
    return rows


def memory(cluster: Cluster) -> dict[str, float]:
    return {
        p.name: round(rss_bytes(p.pid) / MB, 1)
        for p in cluster.processes
        if p.pid is not None and p.alive()
    }


def degraded_answers(cluster: Cluster) -> int:
    """Messages the gateways could send to no Rasa instance (answered in guided mode)."""
    return sum(
        p.log_path.read_text(errors="replace").count("No Rasa instance answers")
        for p in cluster.named("gateway-")
    )


def print_report(results: dict[str, Any]) -> None:
    print(
        f"\nbench-cluster: {results['gateways']} gateways behind HAProxy, PostgreSQL, Redis; "
        f"{results['cpus']} CPUs"
    )
    print(
        f"{'Rasa':>4} {'conv.':>5} {'n':>5} {'msg/s':>7} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'errors':>6} {'load':>5}"
    )
    for run in results["runs"]:
        for row in run["levels"]:
            print(
                f"{run['rasa']:>4} {row['concurrency']:>5} {row['messages']:>5} "
                f"{row['messages_per_second']:>7.1f} {row['p50_ms']:>8.0f} {row['p95_ms']:>8.0f} "
                f"{row['errors']:>6} {row['load_average_before']:>5.1f}"
            )
    print("\nCPU per answered message (ms, by kind of process; all instances together):")
    for run in results["runs"]:
        for row in run["levels"]:
            parts = ", ".join(f"{k} {v:.0f}" for k, v in row["cpu_ms_per_message"].items())
            print(f"  {run['rasa']} Rasa, {row['concurrency']:3d} conversations: {parts}")
    print("\nResident memory after the load (MB, process and children):")
    for run in results["runs"]:
        parts = ", ".join(f"{name} {mb:.0f}" for name, mb in run["rss_mb"].items())
        print(f"  {run['rasa']} Rasa: {parts}")
        if run["degraded_answers"]:
            print(f"  {run['rasa']} Rasa: {run['degraded_answers']} guided-mode answers (no Rasa)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tranquillite bench-cluster",
        description="Messages/s, p50/p95 through HAProxy at several concurrency levels with 1 "
        "and 2 Rasa instances, and the RSS of every process (PostgreSQL and Redis on 127.0.0.1).",
    )
    parser.add_argument("--gateways", type=int, default=2, help="gateway instances (default 2)")
    parser.add_argument("--rasa", default="1,2", help="Rasa instance counts (default 1,2)")
    parser.add_argument("--concurrency", default="20,100", help="concurrent conversations")
    parser.add_argument(
        "--messages", type=int, default=400, help="messages per level (at least 4 per conversation)"
    )
    parser.add_argument("--warmup", type=int, default=8, help="unmeasured messages per cluster")
    parser.add_argument("--timeout", type=float, default=120.0, help="per request, seconds")
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="PostgreSQL server (admin DSN); database tranquillite_bench_cluster is recreated",
    )
    parser.add_argument("--redis", default=DEFAULT_REDIS, help="Redis URL")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from webhook.ops import envsetup
    from webhook.ops.supervisor import StartupError

    args = build_parser().parse_args(argv)
    counts = [int(x) for x in args.rasa.split(",") if x.strip()]
    levels = [int(x) for x in args.concurrency.split(",") if x.strip()]
    bench_latency.check_messages()
    model = envsetup.ensure_model()
    results: dict[str, Any] = {"gateways": args.gateways, "cpus": os.cpu_count(), "runs": []}
    for count in counts:
        var_dir = Path(tempfile.mkdtemp(prefix=f"tranquillite-bench-cluster-{count}-"))
        config = ClusterConfig(
            gateways=args.gateways,
            rasa=count,
            database="tranquillite_bench_cluster",
            fresh_database=True,
            postgres_admin_dsn=args.postgres,
            redis_url=args.redis,
            var_dir=var_dir,
            rasa_timeout=args.timeout,
            gateway_env=dict(ONE_ADDRESS_BENCH_LIMITS),
        )
        cluster = Cluster.build(config, model)
        print(
            f"Starting a cluster: {args.gateways} gateways, {count} Rasa (logs in {var_dir})...",
            file=sys.stderr,
            flush=True,
        )
        try:
            cluster.start()
        except StartupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        try:
            rows = measure(cluster, levels, args.messages, args.warmup, args.timeout)
            results["runs"].append(
                {
                    "rasa": count,
                    "levels": rows,
                    "rss_mb": memory(cluster),
                    "ready_seconds": {
                        p.name: round(p.ready_after or math.nan, 1) for p in cluster.processes
                    },
                    "degraded_answers": degraded_answers(cluster),
                }
            )
        finally:
            cluster.stop()
    print_report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
