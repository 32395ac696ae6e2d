"""Charts of the cellule de veille: SVG drawn on the server by matplotlib (Agg, no display, no
font or file fetched), text kept as text (``svg.fonttype: none``) so that it can be read, searched
and zoomed. Every chart shows published values only:

- a count above 10 is a bar with its value written above;
- a count from 1 to 10 ("< 11") is a hatched bar of fixed height with "< 11" above — the same for
  1 as for 10, so the drawing says no more than the label;
- a secret count (hidden so that a total does not give a small one back) has no bar, "secret";
- the value axis shows 0 and values above 10 only.

Each chart has a caption and the same numbers as an HTML table on its page.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Sequence
from typing import Any

ACCENT = "#000091"
HIDDEN = "#8585f6"
TEXT = "#1e1e1e"
_LOCK = threading.Lock()
_MATPLOTLIB: dict[str, Any] = {}


def _matplotlib() -> dict[str, Any]:
    """Import matplotlib once, lazily (about half a second), with the settings of this module."""
    with _LOCK:
        if not _MATPLOTLIB:
            import matplotlib

            matplotlib.use("Agg")
            from matplotlib.backends.backend_svg import FigureCanvasSVG
            from matplotlib.figure import Figure

            matplotlib.rcParams.update(
                {
                    "svg.fonttype": "none",
                    "svg.hashsalt": "tranquillite-veille",
                    "font.family": "DejaVu Sans",
                    "font.size": 10,
                    "axes.edgecolor": "#666666",
                    "axes.labelcolor": TEXT,
                    "xtick.color": TEXT,
                    "ytick.color": TEXT,
                }
            )
            _MATPLOTLIB.update(Figure=Figure, Canvas=FigureCanvasSVG)
    return _MATPLOTLIB


def _ticks(top: float, small_max: int) -> list[float]:
    """0, then round values above ``small_max`` up to ``top``."""
    ticks = [0.0, float(small_max + 1)]
    if top <= small_max + 1:
        return ticks
    step = 10 ** math.floor(math.log10(top / 3))
    for factor in (1, 2, 5, 10):
        if top / (step * factor) <= 5:
            step *= factor
            break
    value = step * math.ceil((small_max + 1) / step)
    ticks = [0.0]
    while value <= top:
        if value > small_max:
            ticks.append(float(value))
        value += step
    return ticks


def weekly_bars(
    labels: Sequence[str],
    values: Sequence[int | str],
    *,
    small_max: int = 10,
    description: str = "",
) -> bytes:
    """A bar per week of published values (ints, "< 11" or "secret")."""
    mpl = _matplotlib()
    figure = mpl["Figure"](figsize=(7.2, 2.6), dpi=100)
    mpl["Canvas"](figure)
    axes = figure.add_subplot(1, 1, 1)
    numbers = [v for v in values if isinstance(v, int)]
    top = max([*numbers, small_max + 1]) * 1.25
    positions = list(range(len(values)))
    for position, value in zip(positions, values, strict=True):
        if isinstance(value, int):
            label = str(value)
            if value > 0:
                axes.bar(position, value, width=0.7, color=ACCENT)
            y = value
        elif value.startswith("<"):
            axes.bar(
                position,
                small_max,
                width=0.7,
                color="white",
                edgecolor=HIDDEN,
                hatch="///",
                linewidth=1.0,
            )
            label, y = value, small_max
        else:
            label, y = value, 0
        text = axes.text(
            position, y + top * 0.03, label, ha="center", va="bottom", fontsize=9, color=TEXT
        )
        text.set_gid(f"value-{position}")
    axes.set_xticks(positions)
    axes.set_xticklabels(labels, rotation=0, fontsize=8)
    axes.set_xlim(-0.6, len(values) - 0.4)
    axes.set_ylim(0, top)
    axes.set_yticks(_ticks(top / 1.1, small_max))
    axes.set_yticklabels([f"{int(t)}" for t in _ticks(top / 1.1, small_max)])
    axes.spines["top"].set_visible(False)
    axes.spines["right"].set_visible(False)
    axes.set_ylabel("signalements")
    figure.tight_layout(pad=0.6)
    buffer = io.BytesIO()
    metadata = {"Date": None, "Title": description or None}
    figure.savefig(buffer, format="svg", metadata=metadata)
    return buffer.getvalue()
