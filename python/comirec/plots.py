"""The accuracy-diversity trade-off as a picture: Recall@N against Diversity@N over λ, one curve
per model (the paper's Table 5 drawn). matplotlib is optional (the ``plot`` extra); without it
:func:`write_tradeoff_plot` raises :class:`PlotUnavailable`, which the commands report in one
line and go on."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

#: (λ, recall, diversity), fractions
Point = tuple[float, float, float]


class PlotUnavailable(ImportError):
    """matplotlib is not installed."""


MISSING = "matplotlib is not installed (pip install 'comirec[plot]')"


def tradeoff_points(by_lam: Mapping[str, Mapping[str, float]], n: int = 50) -> list[Point]:
    """``{λ: {metric: value}}`` (a report's λ keys, e.g. "0.1" or "inf") -> the (λ, Recall@n,
    Diversity@n) points, by increasing λ; λ values without both metrics are left out."""
    points = []
    for lam_key, metrics in by_lam.items():
        r, d = metrics.get(f"recall@{n}"), metrics.get(f"diversity@{n}")
        if r is not None and d is not None and not (math.isnan(r) or math.isnan(d)):
            points.append((float(lam_key), float(r), float(d)))
    return sorted(points)


def write_tradeoff_plot(curves: Mapping[str, list[Point]], path: str | os.PathLike[str], *, n: int = 50, title: str = "") -> Path:
    """A PNG of Recall@n (y) against Diversity@n (x), in %, one line per model through its λ
    points (each labelled with its λ). Written beside ``path`` and renamed over it."""
    try:
        from matplotlib.figure import Figure  # the object API: no pyplot, no global backend state
    except ImportError:
        raise PlotUnavailable(MISSING) from None
    path = Path(path)
    if not any(curves.values()):
        raise ValueError(f"{path}: no Recall@{n} and Diversity@{n} to draw (the dataset needs item categories)")
    fig = Figure(figsize=(6.4, 4.8), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    for name, points in curves.items():
        if not points:
            continue
        lams, recall, diversity = zip(*points)
        xs, ys = [100 * d for d in diversity], [100 * r for r in recall]
        ax.plot(xs, ys, marker="o", label=name)
        for lam, x, y in zip(lams, xs, ys):
            ax.annotate(f"λ={lam:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel(f"Diversity@{n} (%)")
    ax.set_ylabel(f"Recall@{n} (%)")
    ax.set_title(title or f"Recall@{n} vs Diversity@{n} over λ", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
