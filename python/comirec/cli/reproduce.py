"""``comirec reproduce``: the paper's tables for all six models on one split (:mod:`comirec.reproduce`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..config import ReproduceConfig, from_namespace
from ..core import PROTOCOLS
from ..models import PAPER_NAMES
from ..reproduce import parse_models, render, run_all


def run(args: argparse.Namespace) -> int:
    cfg = from_namespace(ReproduceConfig, args)
    from ..data._writing import OutputLock

    parse_models(cfg.models)  # fail before any work
    if cfg.data is not None and not Path(cfg.data).exists():  # before --out is created
        raise FileNotFoundError(f"--data {cfg.data} does not exist")
    out = Path(cfg.out)
    if os.path.lexists(out) and not out.is_dir():
        raise FileExistsError(f"--out {out}: exists and is not a directory; expected an output directory")
    with OutputLock(out):  # a second reproduce into the same --out fails at once (exit 1)
        report = run_all(cfg, log=lambda text: print(text, file=sys.stderr))
        (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        md = "\n\n".join(f"## protocol: {p}\n\n" + render(report, p) for p in PROTOCOLS)
        (out / "report.md").write_text("# comirec reproduce\n\n" + md + "\n")
        plots = write_plots(report, out) if cfg.plot else []
    print(render(report, cfg.protocol))
    other = next(p for p in PROTOCOLS if p != cfg.protocol)
    print(f"\nreport: {out / 'report.json'}, {out / 'report.md'} (both protocols; printed above: {cfg.protocol}, "
          f"--protocol {other} prints the other)" + "".join(f"\nplot: {p}" for p in plots))
    return 0


def write_plots(report: dict[str, Any], out: Path) -> list[Path]:
    """``OUT/tradeoff-<protocol>.png``: Recall@50 against Diversity@50 over λ, one curve per model
    (single-λ models are one point); skipped with one line when matplotlib is missing."""
    from ..plots import PlotUnavailable, tradeoff_points, write_tradeoff_plot

    written = []
    for p in PROTOCOLS:
        curves = {PAPER_NAMES[m]: tradeoff_points(r["test"][p], 50) for m, r in report["models"].items()}
        d = report["dataset"]
        title = f"{d['name'] or d['path']}{' (SYNTHETIC)' if d['synthetic'] else ''}, test users, protocol {p}"
        try:
            written.append(write_tradeoff_plot(curves, out / f"tradeoff-{p}.png", n=50, title=title))
        except (PlotUnavailable, ValueError) as exc:  # no matplotlib; no categories, so no Diversity
            print(f"plot: skipped: {exc}", file=sys.stderr)
            break
    return written
