"""`tranquillite bench-tickets` prints ticket writes per second on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from webhook.config import PROJECT_ROOT


def test_bench_tickets_prints_writes_per_second_on_both_databases() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "webhook.cli", "bench-tickets", "--count", "20"],
        cwd=PROJECT_ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    rates = re.findall(
        r"^(sqlite|postgresql)\s+concurrency\s+(\d+):\s+([\d.]+) ticket writes/s$",
        done.stdout,
        re.MULTILINE,
    )
    assert [(db, level) for db, level, _ in rates] == [
        ("sqlite", "1"),
        ("sqlite", "20"),
        ("postgresql", "1"),
        ("postgresql", "20"),
    ], done.stdout
    assert all(float(rate) > 0 for _, _, rate in rates)
