"""`tranquillite bench-latency` against the real stack (a short run), and its statistics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from webhook import cli
from webhook.ops import bench_latency
from webhook.ops.supervisor import Stack


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert bench_latency.percentile(values, 95) == 95.0
    assert bench_latency.percentile(values, 50) == 50.0
    assert bench_latency.percentile([3.0], 95) == 3.0
    assert bench_latency.percentile(list(reversed(values)), 100) == 100.0


def test_benchmark_messages_avoid_the_emergency_path() -> None:
    bench_latency.check_messages()  # raises SystemExit if a message is flagged as danger


@pytest.mark.e2e
@pytest.mark.parametrize("separate", [False, True])
def test_bench_latency_command_measures_both_paths(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str], separate: bool
) -> None:
    out = tmp_path / "bench.json"
    argv = [
        "bench-latency",
        "--gateway-url",
        stack.settings.gateway_url,
        "--rasa-url",
        stack.settings.rasa_url,
        "--concurrency",
        "1,3",
        "--messages",
        "6",
        "--rounds",
        "1",
        "--warmup",
        "1",
        "--json",
        str(out),
    ] + (["--separate"] if separate else [])
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "ratio gateway / Rasa" in printed
    results = json.loads(out.read_text())
    assert [row["concurrency"] for row in results["levels"]] == [1, 3]
    for row in results["levels"]:
        for path in ("gateway", "rasa"):
            assert row[path]["n"] == 6
            assert row[path]["errors"] == 0
            assert 0 < row[path]["median_ms"] <= row[path]["p95_ms"]
        assert row["ratio_median"] == pytest.approx(
            row["gateway"]["median_ms"] / row["rasa"]["median_ms"], rel=1e-2
        )
