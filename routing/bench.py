"""Benchmark: load time of all routing data and decisions per second on one core."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

from routing.engine import REPORT_TYPES
from routing.loader import load_engine
from routing.rules import FLAGS


@dataclass(frozen=True)
class BenchResult:
    load_seconds: float
    decisions: int
    decide_seconds: float
    resolutions: int
    resolve_seconds: float

    @property
    def decisions_per_second(self) -> float:
        return self.decisions / self.decide_seconds

    @property
    def resolutions_per_second(self) -> float:
        return self.resolutions / self.resolve_seconds


def run_bench(decisions: int = 200_000, data_dir: Path | None = None, seed: int = 0) -> BenchResult:
    """Load the data once (timed), then time ``decisions`` decisions over random inputs."""
    start = time.perf_counter()
    engine = load_engine(data_dir)
    load_seconds = time.perf_counter() - start

    rng = random.Random(seed)  # noqa: S311 - reproducible sample, not security
    communes = [c.insee for c in engine.communes()]
    cases = [
        (
            rng.choice(REPORT_TYPES),
            rng.choice(communes),
            {flag: rng.random() < 0.2 for flag in FLAGS},
        )
        for _ in range(min(decisions, 20_000))
    ]
    decide = engine.decide
    start = time.perf_counter()
    done = 0
    while done < decisions:
        for report_type, insee, flags in cases:
            decide(report_type, insee, **flags)
        done += len(cases)
    decide_seconds = time.perf_counter() - start

    names = [c.name for c in rng.sample(list(engine.communes()), 5_000)]
    queries = [n.upper() if i % 2 else n.replace("-", " ") for i, n in enumerate(names)]
    start = time.perf_counter()
    for query in queries:
        engine.resolve_commune(query)
    resolve_seconds = time.perf_counter() - start
    return BenchResult(load_seconds, done, decide_seconds, len(queries), resolve_seconds)
