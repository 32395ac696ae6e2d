"""Benchmark of the routing engine: ``python scripts/bench_routing.py [--decisions N]``.

Same as ``tranquillite bench-routing`` / ``python -m routing bench``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from routing.cli import bench_main

if __name__ == "__main__":
    sys.exit(bench_main(sys.argv[1:]))
