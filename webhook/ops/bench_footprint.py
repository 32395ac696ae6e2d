"""`tranquillite bench-footprint`: memory, start-up and throughput of the product's processes.

Starts the product's stack (Rasa, action server, gateway on free ports, temporary SQLite file)
with the current model (``TRANQUILLITE_MODEL`` if set) and prints, with the targets of issue 17:

* per process, the time from its start until it answers (Rasa: its first message answered too,
  as :meth:`Stack.start` warms it up), its resident memory (RSS of the process and its
  children, from ``/proc``) after start, after the load below, and its peak, and the CPU time
  it used during that load (where a message's time goes: Rasa, or its action server);
* the whole product's RSS (the three processes);
* one Rasa instance alone under ``--concurrency`` concurrent conversations (the scripted
  conversations of ``bench-latency``, sent straight to Rasa's REST channel): messages per second,
  median and p95 latency;
* ``tranquillite triage``: time from its start until its first answer, the model load time the
  NLU worker reports, and its RSS (triage and its worker);
* with ``--train``: a forced training of the current data into a temporary directory (the model
  cache is neither read nor written) and its wall time.

The machine's load average is printed with each phase: on a shared machine every figure is
higher than on an idle one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from webhook.config import PROJECT_ROOT
from webhook.ops import bench_latency

PROCESSES = ("rasa", "actions", "gateway")
MB = 1_000_000  # figures in decimal megabytes, as the targets are written (1.2 GB = 1200 MB)
# Targets of issue 17 (≤ unless "min").
TARGETS: dict[str, tuple[float, str]] = {
    "rasa_rss_mb": (1200.0, "max"),
    "total_rss_mb": (2000.0, "max"),
    "rasa_ready_seconds": (20.0, "max"),
    "training_seconds": (180.0, "max"),
    "triage_ready_seconds": (15.0, "max"),
    "rasa_messages_per_second": (25.0, "min"),
}
TRIAGE_PROBE = {"id": "bench-footprint", "text": "Bonjour", "commune": "Manosque"}


# --------------------------------------------------------------------------- /proc


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (every thread's list), empty if it is gone."""
    found: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as handle:
                found += [int(x) for x in handle.read().split()]
        except OSError:
            continue
    return found


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    pids, pending = [], [pid]
    while pending:
        current = pending.pop()
        pids.append(current)
        pending += _children(current)
    return pids


def _status_kib(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants (VmRSS summed)."""
    return sum(_status_kib(p, "VmRSS") for p in process_tree(pid)) * 1024


def peak_rss_bytes(pid: int) -> int:
    """Peak resident memory of ``pid`` and its descendants (VmHWM summed)."""
    return sum(_status_kib(p, "VmHWM") for p in process_tree(pid)) * 1024


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by ``pid`` and its descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / ticks


def load_average() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan


# --------------------------------------------------------------------------- measurements


@dataclass
class ProcessFigures:
    name: str
    ready_seconds: float | None
    rss_after_start_mb: float
    rss_after_load_mb: float = math.nan
    peak_rss_mb: float = math.nan
    cpu_during_load_seconds: float = math.nan

    def as_dict(self) -> dict[str, Any]:
        return {
            "ready_seconds": _round(self.ready_seconds),
            "rss_after_start_mb": _round(self.rss_after_start_mb),
            "rss_after_load_mb": _round(self.rss_after_load_mb),
            "peak_rss_mb": _round(self.peak_rss_mb),
            "cpu_during_load_seconds": _round(self.cpu_during_load_seconds),
        }


def _round(value: float | None, digits: int = 1) -> float | None:
    if value is None or math.isnan(value):
        return None
    return round(value, digits)


def _pid(stack: Any, name: str) -> int:
    popen = stack.process(name).popen
    if popen is None or popen.poll() is not None:
        raise RuntimeError(f"{name} is not running")
    return int(popen.pid)


def stack_figures(stack: Any) -> dict[str, ProcessFigures]:
    """Ready time and RSS after start of each process of a started :class:`Stack`."""
    return {
        name: ProcessFigures(
            name=name,
            ready_seconds=stack.process(name).ready_after,
            rss_after_start_mb=rss_bytes(_pid(stack, name)) / MB,
        )
        for name in PROCESSES
    }


def rasa_throughput(
    rasa_url: str, concurrency: int, messages: int, warmup: int, timeout: float = 60.0
) -> dict[str, Any]:
    """``messages`` messages straight to Rasa over ``concurrency`` concurrent conversations."""
    runner = bench_latency.Runner(rasa_url, rasa_url, timeout)

    async def measure() -> bench_latency.Cell:
        if warmup:
            await runner.phase(("rasa",), 1, warmup)
        return (await runner.phase(("rasa",), concurrency, messages))["rasa"]

    load_before = load_average()
    cell = asyncio.run(measure())
    latencies = cell.latencies
    return {
        "concurrency": concurrency,
        "messages": len(latencies),
        "errors": cell.errors,
        "seconds": round(cell.wall, 2),
        "messages_per_second": round(cell.throughput, 2),
        "median_ms": _round(statistics.median(latencies) * 1000 if latencies else None),
        "p95_ms": _round(bench_latency.percentile(latencies, 95) * 1000),
        "load_average": [round(load_before, 2), round(load_average(), 2)],
    }


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def triage_figures(model: Path, timeout: float = 600.0) -> dict[str, Any]:
    """Start ``tranquillite triage``, send one line at once; time until its answer, its RSS."""
    load_before = load_average()
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "webhook.cli", "triage", "--model", str(model)],
        cwd=PROJECT_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        bufsize=1,
    )
    out: queue.Queue[str | None] = queue.Queue()
    err: queue.Queue[str | None] = queue.Queue()
    assert process.stdin and process.stdout and process.stderr
    threads = [
        threading.Thread(target=_pump, args=(process.stdout, out), daemon=True),
        threading.Thread(target=_pump, args=(process.stderr, err), daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        process.stdin.write(json.dumps(TRIAGE_PROBE, ensure_ascii=False) + "\n")
        process.stdin.flush()
        try:
            answer = out.get(timeout=timeout)
        except queue.Empty:
            answer = None
        ready = time.perf_counter() - started
        if not answer or "report_type" not in json.loads(answer):
            raise RuntimeError(f"triage gave no answer: {''.join(_drain(err))[-2000:]}")
        rss = rss_bytes(process.pid) / MB
        peak = peak_rss_bytes(process.pid) / MB
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for thread in threads:
            thread.join(timeout=10)
        process.stdout.close()
        process.stderr.close()
    model_ready = None
    for line in _drain(err):
        if line.startswith("triage: model ready in "):
            model_ready = float(line.split()[4])
    return {
        "ready_seconds": round(ready, 2),
        "model_ready_seconds": model_ready,
        "rss_mb": _round(rss),
        "peak_rss_mb": _round(peak),
        "exit_code": process.returncode,
        "load_average": [round(load_before, 2), round(load_average(), 2)],
    }


def _drain(lines: queue.Queue[str | None]) -> Iterator[str]:
    while True:
        try:
            line = lines.get_nowait()
        except queue.Empty:
            return
        if line is not None:
            yield line


def training_figures() -> dict[str, Any]:
    """A forced training of the current data in a temporary directory, without the cache."""
    out_dir = Path(tempfile.mkdtemp(prefix="tranquillite-train-bench-"))
    env = {
        **os.environ,
        "TRANQUILLITE_MODELS_DIR": str(out_dir),
        "TRANQUILLITE_MODEL_CACHE": "off",
    }
    env.pop("TRANQUILLITE_MODEL", None)
    load_before = load_average()
    started = time.perf_counter()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "webhook.cli", "train", "--force"],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - started
        models = list(out_dir.glob("*.tar.gz"))
        if result.returncode != 0 or not models:
            raise RuntimeError(f"training failed (exit {result.returncode}): {result.stderr}")
        size = models[0].stat().st_size / MB
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    return {
        "seconds": round(seconds, 1),
        "model_mb": round(size, 1),
        "load_average": [round(load_before, 2), round(load_average(), 2)],
    }


# --------------------------------------------------------------------------- run and report


def measure_stack(
    stack: Any, concurrency: int, messages: int, warmup: int
) -> tuple[dict[str, ProcessFigures], dict[str, Any]]:
    """Figures of a started stack: per process, then Rasa's throughput."""
    figures = stack_figures(stack)
    cpu_before = {name: cpu_seconds(_pid(stack, name)) for name in figures}
    throughput = rasa_throughput(stack.settings.rasa_url, concurrency, messages, warmup)
    for name, process in figures.items():
        pid = _pid(stack, name)
        process.rss_after_load_mb = rss_bytes(pid) / MB
        process.peak_rss_mb = peak_rss_bytes(pid) / MB
        process.cpu_during_load_seconds = cpu_seconds(pid) - cpu_before[name]
    return figures, throughput


def summarize(
    processes: dict[str, ProcessFigures],
    throughput: dict[str, Any],
    triage: dict[str, Any] | None,
    training: dict[str, Any] | None,
) -> dict[str, Any]:
    total = {
        key: _round(sum(getattr(p, key) for p in processes.values()))
        for key in ("rss_after_start_mb", "rss_after_load_mb", "peak_rss_mb")
    }
    rasa = processes["rasa"]
    headline: dict[str, float | None] = {
        "rasa_rss_mb": _round(max(rasa.rss_after_start_mb, rasa.rss_after_load_mb)),
        "total_rss_mb": _round(
            max(total["rss_after_start_mb"] or 0.0, total["rss_after_load_mb"] or 0.0)
        ),
        "rasa_ready_seconds": _round(rasa.ready_seconds),
        "training_seconds": training["seconds"] if training else None,
        "triage_ready_seconds": triage["ready_seconds"] if triage else None,
        "rasa_messages_per_second": throughput["messages_per_second"],
    }
    verdicts: dict[str, str] = {}
    for key, (target, kind) in TARGETS.items():
        value = headline[key]
        if value is None:
            verdicts[key] = "not measured"
        else:
            met = value <= target if kind == "max" else value >= target
            verdicts[key] = "met" if met else "MISSED"
    return {
        "processes": {name: p.as_dict() for name, p in processes.items()},
        "total": total,
        "rasa_throughput": throughput,
        "triage": triage,
        "training": training,
        "headline": headline,
        "targets": {k: {"target": t, "kind": kind} for k, (t, kind) in TARGETS.items()},
        "verdicts": verdicts,
        "cpus": os.cpu_count(),
    }


def _fmt(value: Any, unit: str = "") -> str:
    return "—" if value is None else f"{value:.1f}{unit}"


def print_report(results: dict[str, Any], stream: IO[str] | None = None) -> None:
    out = stream or sys.stdout
    lines = [
        f"{'process':10} {'ready s':>8} {'RSS start MB':>13} {'RSS load MB':>12} "
        f"{'peak MB':>9} {'CPU s (load)':>13}"
    ]
    for name, p in results["processes"].items():
        lines.append(
            f"{name:10} {_fmt(p['ready_seconds']):>8} {_fmt(p['rss_after_start_mb']):>13} "
            f"{_fmt(p['rss_after_load_mb']):>12} {_fmt(p['peak_rss_mb']):>9} "
            f"{_fmt(p['cpu_during_load_seconds']):>13}"
        )
    t = results["total"]
    lines.append(
        f"{'total':10} {'':>8} {_fmt(t['rss_after_start_mb']):>13} "
        f"{_fmt(t['rss_after_load_mb']):>12} {_fmt(t['peak_rss_mb']):>9}"
    )
    r = results["rasa_throughput"]
    lines.append(
        f"Rasa alone, {r['concurrency']} concurrent conversations: {r['messages']} messages in "
        f"{r['seconds']:.1f} s, {r['messages_per_second']:.1f} messages/s, median "
        f"{_fmt(r['median_ms'], ' ms')}, p95 {_fmt(r['p95_ms'], ' ms')}, {r['errors']} errors "
        f"(load average {r['load_average'][0]:.2f} → {r['load_average'][1]:.2f})"
    )
    tr = results["triage"]
    if tr:
        lines.append(
            f"triage: first answer {tr['ready_seconds']:.1f} s after start (model ready "
            f"{_fmt(tr['model_ready_seconds'], ' s')}), RSS {_fmt(tr['rss_mb'], ' MB')} "
            f"(load average {tr['load_average'][0]:.2f} → {tr['load_average'][1]:.2f})"
        )
    else:
        lines.append("triage: not measured (--no-triage)")
    tg = results["training"]
    if tg:
        lines.append(
            f"training (forced, no cache): {tg['seconds']:.1f} s, model {tg['model_mb']:.1f} MB "
            f"(load average {tg['load_average'][0]:.2f} → {tg['load_average'][1]:.2f})"
        )
    else:
        lines.append("training: not measured (use --train)")
    lines.append(f"Targets (issue 17), {results['cpus']} CPUs:")
    for key, verdict in results["verdicts"].items():
        target = results["targets"][key]
        sign = "≤" if target["kind"] == "max" else "≥"
        lines.append(
            f"  {key:26} {_fmt(results['headline'][key]):>8}  {sign} {target['target']:g}: "
            f"{verdict}"
        )
    print("\n".join(lines), file=out, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tranquillite bench-footprint",
        description="RSS and time to ready per process, Rasa's messages/s at 20 concurrent "
        "conversations, triage's start-up, training time (--train).",
    )
    parser.add_argument("--concurrency", type=int, default=20, help="concurrent conversations")
    parser.add_argument("--messages", type=int, default=400, help="messages sent to Rasa")
    parser.add_argument("--warmup", type=int, default=8, help="unmeasured messages first")
    parser.add_argument("--no-triage", action="store_true", help="skip triage's start-up")
    parser.add_argument(
        "--train", action="store_true", help="also time a forced training (minutes)"
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    bench_latency.check_messages()
    from webhook.ops import envsetup
    from webhook.ops.supervisor import Stack, StartupError

    model = envsetup.ensure_model()
    var_dir = Path(tempfile.mkdtemp(prefix="tranquillite-footprint-"))
    settings = bench_latency.local_stack_settings(var_dir)
    # many conversations from one address: the per-address limits are not what is measured
    stack = Stack.build(
        settings,
        model,
        gateway_env={"TRANQUILLITE_LIMIT_CONVERSATIONS_PER_ADDRESS": "100000,100000/h"},
    )
    print(
        f"Starting the stack with {model.name} (load average {load_average():.2f}; logs in "
        f"{var_dir / 'log'})...",
        file=sys.stderr,
        flush=True,
    )
    try:
        stack.start()
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        processes, throughput = measure_stack(stack, args.concurrency, args.messages, args.warmup)
    finally:
        stack.stop()
    triage = None if args.no_triage else triage_figures(model)
    training = training_figures() if args.train else None
    results = summarize(processes, throughput, triage, training)
    results["model"] = model.name
    print_report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
