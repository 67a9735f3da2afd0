#!/usr/bin/env python3
"""Steps until each model's validation Recall@50 first reaches a bar, from runs' log.jsonl files.

    python scripts/steps_to_reach.py docs/study/sports-s7/logs --models sa-max,dr-max \\
        --baselines ytdnn,gru4rec,mind --seeds 19,20,21

The bar is the best baseline's best validation Recall@50 (mean over its seeds). For each model and
seed: the first validated step at or above the bar ("-" if never), and the run's own best step;
the baselines' own steps to their best are printed too. LOGS holds <variant>-s<seed>.jsonl files
(or <variant>-s<seed>/log.jsonl run directories).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path


def curve(logs: Path, variant: str, seed: int) -> list[tuple[int, float]]:
    path = logs / f"{variant}-s{seed}.jsonl"
    if not path.is_file():
        path = logs / f"{variant}-s{seed}" / "log.jsonl"
    if not path.is_file():
        raise SystemExit(f"{logs}: no log for {variant} seed {seed} ({variant}-s{seed}.jsonl or {variant}-s{seed}/log.jsonl)")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    out = [(int(r["step"]), 100 * float(r["valid"]["recall@50"])) for r in rows if "valid" in r]
    if not out:
        raise SystemExit(f"{path}: no validation records")
    return out


def best_step(c: list[tuple[int, float]]) -> int:
    top = max(x for _, x in c)
    return next(t for t, x in c if x == top)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("logs", type=Path)
    ap.add_argument("--models", default="sa-max,dr-max")
    ap.add_argument("--baselines", default="ytdnn,gru4rec,mind")
    ap.add_argument("--seeds", default="19,20,21")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    bests = {b: [max(x for _, x in curve(args.logs, b, s)) for s in seeds] for b in args.baselines.split(",")}
    bar_model = max(bests, key=lambda b: statistics.mean(bests[b]))
    bar = statistics.mean(bests[bar_model])
    print(f"bar: {bar_model}'s best validation Recall@50, mean over seeds {args.seeds}: {bar:.2f}")
    print("| variant | first step at the bar (per seed) | own best step (per seed) |")
    print("|---|---|---|")
    for v in [*args.models.split(","), *bests]:
        reach, own = [], []
        for s in seeds:
            c = curve(args.logs, v, s)
            reach.append(next((f"{t / 1000:g}k" for t, x in c if x >= bar), "-"))
            own.append(f"{best_step(c) / 1000:g}k")
        print(f"| {v} | {' / '.join(reach)} | {' / '.join(own)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
