"""Small PNG charts (matplotlib, headless) for asset metadata and the monthly report.

The Dagster UI renders markdown images, so a chart travels as `![title](data:image/png;base64,...)`
inside a `MetadataValue.md`; the report writes the same bytes to files.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # no display on servers; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402

Number = float | int | None


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


def bars(categories: Sequence[str], series: Mapping[str, Sequence[Number]], title: str, xlabel: str = "",
         errors: Mapping[str, tuple[Sequence[Number], Sequence[Number]]] | None = None) -> bytes:
    """Horizontal grouped bars, one group per category (top to bottom in the given order).

    `errors[name] = (low, high)` draws an interval around that series' bars.
    """
    n = max(len(series), 1)
    height = 0.8 / n
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(categories) * max(n, 2) / 2 + 1.4))
    for i, (name, values) in enumerate(series.items()):
        ys = [c + (i - (n - 1) / 2) * height for c in range(len(categories))]
        vals = [float("nan") if v is None else float(v) for v in values]
        xerr = None
        if errors and name in errors:
            low, high = errors[name]
            xerr = [[max(v - (lo if lo is not None else v), 0) for v, lo in zip(vals, low)],
                    [max((hi if hi is not None else v) - v, 0) for v, hi in zip(vals, high)]]
        ax.barh(ys, vals, height=height, label=name, xerr=xerr, capsize=2)
    ax.set_yticks(range(len(categories)), categories, fontsize=8)
    ax.invert_yaxis()
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel, fontsize=8)
    if len(series) > 1:
        ax.legend(fontsize=7, loc="best")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def scatter(x: Sequence[float], y: Sequence[float], title: str, xlabel: str, ylabel: str) -> bytes:
    """Scatter with the y = x line, for predicted vs observed."""
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(x, y, s=6, alpha=0.5)
    if len(x):
        lo, hi = min(min(x), min(y)), max(max(x), max(y))
        ax.plot([lo, hi], [lo, hi], color="grey", linewidth=1)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    return _png(fig)


def markdown_image(png: bytes, alt: str) -> str:
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"
