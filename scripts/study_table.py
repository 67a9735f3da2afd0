#!/usr/bin/env python3
"""Tabulate runs written by scripts/model_study.py: per variant, mean ± sd over seeds of the best
validation Recall@50 (what chose the defaults), the steps to it, and the test Recall@50.

    python scripts/study_table.py runs/study-sports --variants sa-max,sa,dr-shared --seeds 19,20,21
    python scripts/study_table.py docs/study/sports --variants sa-max,dr-shared   # the per-user files

STUDY is model_study.py's --out (run directories) or its --per-user directory (NAME-sSEED.npz).

Recall in %, standard protocol (equal to the authors' for Recall on these data: no repeated
targets). A variant missing a seed is shown with the seeds it has.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def cell(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f} (1 seed)"
    return f"{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("study")
    ap.add_argument("--variants", required=True)
    ap.add_argument("--seeds", default="19,20,21")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    print("| variant | seeds | valid R@50 | steps to best | test R@50 |")
    print("|---|---|---|---|---|")
    for variant in args.variants.split(","):
        valid, test, best = [], [], []
        for seed in seeds:
            saved = Path(args.study) / f"{variant}-s{seed}.npz"  # model_study.py --per-user
            if saved.is_file():
                z = np.load(saved)
                valid.append(100 * float(np.nanmean(z["valid"])))
                test.append(100 * float(np.nanmean(z["test"])))
                best.append(int(z["best_step"]))
                continue
            path = Path(args.study) / f"{variant}-s{seed}" / "metrics.json"
            if not path.is_file():
                continue
            m = json.loads(path.read_text())
            ((_, v),) = m["valid"]["standard"].items()
            ((_, t),) = m["test"]["standard"].items()
            valid.append(100 * v["recall@50"])
            test.append(100 * t["recall@50"])
            best.append(m["best_step"])
        steps = "/".join(f"{b / 1000:g}k" for b in best) or "–"
        print(f"| {variant} | {len(valid)} | {cell(valid)} | {steps} | {cell(test)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
