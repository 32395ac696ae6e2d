"""`tranquillite bench-footprint`: its /proc readings, its verdicts, and a short run on the real
stack (the session's stack: no extra Rasa start) and the real `triage`."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from webhook.ops import bench_footprint
from webhook.ops.bench_footprint import ProcessFigures
from webhook.ops.supervisor import Stack

# A child that starts a grandchild holding 60 MB, then says so and waits for its stdin to close.
PARENT = """
import subprocess, sys
child = subprocess.Popen(
    [sys.executable, "-c", "import sys; b = bytearray(60_000_000); print('held', flush=True); "
     "sys.stdin.read()"],
    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
)
assert child.stdout.readline().strip() == "held"
print(child.pid, flush=True)
sys.stdin.read()
child.stdin.close()
child.wait()
"""


def test_rss_counts_the_process_and_its_descendants() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        grandchild = int(parent.stdout.readline())
        assert bench_footprint.process_tree(parent.pid) == [parent.pid, grandchild]
        own = bench_footprint.rss_bytes(grandchild)
        assert own >= 60_000_000
        assert bench_footprint.rss_bytes(parent.pid) > own
        assert bench_footprint.peak_rss_bytes(parent.pid) >= bench_footprint.rss_bytes(parent.pid)
        # allocating and touching 60 MB cost the grandchild some CPU; the tree counts it
        assert bench_footprint.cpu_seconds(parent.pid) >= bench_footprint.cpu_seconds(grandchild)
    finally:
        assert parent.stdin is not None
        parent.stdin.close()
        parent.wait(timeout=30)
        assert parent.stdout is not None
        parent.stdout.close()
    # a process that is gone weighs nothing (polled: /proc may lag the exit by a moment)
    deadline = time.monotonic() + 10
    while bench_footprint.rss_bytes(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert bench_footprint.rss_bytes(grandchild) == 0


def _processes(rasa_mb: float) -> dict[str, ProcessFigures]:
    return {
        "rasa": ProcessFigures("rasa", 18.0, rasa_mb, rasa_mb + 10, rasa_mb + 20),
        "actions": ProcessFigures("actions", 4.0, 90.0, 120.0, 121.0),
        "gateway": ProcessFigures("gateway", 9.0, 180.0, 185.0, 186.0),
    }


def test_verdicts_follow_the_targets() -> None:
    throughput = {"messages_per_second": 30.0}
    good = bench_footprint.summarize(_processes(900.0), throughput, {"ready_seconds": 12.0}, None)
    assert good["headline"]["rasa_rss_mb"] == 910.0
    assert good["total"]["rss_after_load_mb"] == 1215.0
    assert good["verdicts"] == {
        "rasa_rss_mb": "met",
        "total_rss_mb": "met",
        "rasa_ready_seconds": "met",
        "training_seconds": "not measured",
        "triage_ready_seconds": "met",
        "rasa_messages_per_second": "met",
    }
    bad = bench_footprint.summarize(
        _processes(1900.0), {"messages_per_second": 11.0}, None, {"seconds": 200.0}
    )
    assert bad["verdicts"]["rasa_rss_mb"] == "MISSED"
    assert bad["verdicts"]["total_rss_mb"] == "MISSED"
    assert bad["verdicts"]["rasa_messages_per_second"] == "MISSED"
    assert bad["verdicts"]["training_seconds"] == "MISSED"
    assert bad["verdicts"]["triage_ready_seconds"] == "not measured"


@pytest.mark.e2e
def test_footprint_of_the_real_stack_and_triage(stack: Stack, trained_model: Path) -> None:
    processes, throughput = bench_footprint.measure_stack(
        stack, concurrency=4, messages=12, warmup=1
    )
    triage = bench_footprint.triage_figures(trained_model)
    results = bench_footprint.summarize(processes, throughput, triage, None)
    out = io.StringIO()
    bench_footprint.print_report(results, out)
    printed = out.getvalue()

    assert set(results["processes"]) == {"rasa", "actions", "gateway"}
    for name, figures in results["processes"].items():
        assert figures["ready_seconds"] > 0, name
        # every Python process of the product holds at least its interpreter and its libraries
        assert 30 < figures["rss_after_start_mb"] <= figures["peak_rss_mb"], name
        assert 30 < figures["rss_after_load_mb"] <= figures["peak_rss_mb"], name
        assert figures["cpu_during_load_seconds"] >= 0, name
    # Rasa parsed and answered the 12 messages: it used CPU for them
    assert results["processes"]["rasa"]["cpu_during_load_seconds"] > 0
    # Rasa loads spaCy's vectors and the model: the heaviest process
    assert results["processes"]["rasa"]["rss_after_start_mb"] > max(
        results["processes"][n]["rss_after_start_mb"] for n in ("actions", "gateway")
    )
    assert throughput["messages"] == 12 and throughput["errors"] == 0
    assert throughput["messages_per_second"] > 0
    assert 0 < throughput["median_ms"] <= throughput["p95_ms"]
    assert triage["exit_code"] == 0
    assert 0 < triage["model_ready_seconds"] < triage["ready_seconds"]
    assert triage["rss_mb"] > 100  # triage and its NLU worker with the model
    for key in ("rasa_rss_mb", "total_rss_mb", "rasa_ready_seconds", "triage_ready_seconds"):
        assert results["verdicts"][key] in {"met", "MISSED"}, key
    assert results["verdicts"]["training_seconds"] == "not measured"
    for label in ("rasa", "actions", "gateway", "total", "messages/s", "triage: first answer"):
        assert label in printed
    json.dumps(results)  # the --json output
