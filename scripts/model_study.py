#!/usr/bin/env python3
"""Train model variants on prepared datasets and tabulate validation (and test) Recall@50.

The study behind the defaults in docs/models.md ("Why the defaults differ from the authors'").
Choices are made on the validation column only; the test column is printed for the record.

    python scripts/model_study.py --data data/sports --out runs/study-sports \\
        --variant dr-authors:comirec-dr --variant dr-glorot:comirec-dr:dr_init=glorot \\
        --max-steps 20000 --eval-every 1000 --seeds 19

A variant is NAME:MODEL[:field=value,...] with ModelConfig / TrainConfig fields. Finished runs
(metrics.json present) are reused, so the command can be re-run to extend a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
from pathlib import Path

from comirec.config import ModelConfig, TrainConfig


def parse_variant(text: str) -> tuple[str, str, dict[str, str]]:
    parts = text.split(":")
    if len(parts) < 2:
        raise SystemExit(f"--variant: expected NAME:MODEL[:field=value,...], got {text!r}")
    opts = dict(kv.split("=", 1) for kv in parts[2].split(",") if kv) if len(parts) > 2 else {}
    return parts[0], parts[1], opts


def typed(cls: type, opts: dict[str, str]) -> dict[str, object]:
    out: dict[str, object] = {}
    names = {f.name: f for f in dataclasses.fields(cls)}
    for k, v in opts.items():
        if k not in names:
            continue
        default = names[k].default
        if isinstance(default, bool):
            out[k] = v.lower() in ("1", "true", "yes")
        elif isinstance(default, int):
            out[k] = int(v)
        elif isinstance(default, float):
            out[k] = float(v)
        else:
            out[k] = v
    return out


def save_per_user(run: Path, data: str, path: Path) -> None:
    """Per-user Recall@50 of the run's best checkpoint on valid and test users (protocol comirec),
    float32 in ``dataset.users(split)`` order, with the dataset's name and the user counts."""
    if path.is_file():
        return
    import numpy as np

    from comirec.data import load_prepared
    from comirec.evaluation import per_user_metrics
    from comirec.runs import load_model

    ds = load_prepared(data)
    model, cfg = load_model(run)
    arrays = {
        split: per_user_metrics(model, ds, split=split, n=50, protocol="comirec", maxlen=cfg["model"]["maxlen"])["recall@50"].astype(np.float32)
        for split in ("valid", "test")
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays, run=str(run), best_step=json.loads((run / "metrics.json").read_text())["best_step"])
    tmp.replace(path)


def run_parallel(args: argparse.Namespace) -> None:
    """Each unfinished (variant, seed) run in a child process of this script, ``args.jobs`` at a
    time; a failed child stops the study with its log named."""
    import os
    import subprocess
    import time

    todo = []
    for text in args.variant:
        name = parse_variant(text)[0]
        for seed in args.seeds.split(","):
            if not (Path(args.out) / f"{name}-s{seed}" / "metrics.json").is_file():
                todo.append((text, name, seed))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    common = ["--data", args.data, "--out", args.out, "--max-steps", str(args.max_steps),
              "--eval-every", str(args.eval_every), "--patience", str(args.patience)]
    if args.per_user:
        common += ["--per-user", args.per_user]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    running: list[tuple[subprocess.Popen[bytes], Path]] = []
    failed: list[Path] = []
    while todo or running:
        while todo and len(running) < args.jobs:
            text, name, seed = todo.pop(0)
            log = Path(args.out) / f"{name}-s{seed}.log"
            with log.open("wb") as fh:
                cmd = [sys.executable, __file__, *common, "--variant", text, "--seeds", seed]
                running.append((subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env), log))
        time.sleep(1.0)
        for proc, log in list(running):
            if proc.poll() is not None:
                running.remove((proc, log))
                if proc.returncode != 0:
                    failed.append(log)
    if failed:
        raise SystemExit("runs failed; see " + ", ".join(map(str, failed)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--variant", action="append", required=True)
    ap.add_argument("--seeds", default="19")
    ap.add_argument("--max-steps", type=int, default=20000)
    ap.add_argument("--eval-every", type=int, default=1000)
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument("--per-user", default=None, metavar="DIR",
                    help="also write each run's per-user Recall@50 (valid and test, protocol comirec) to "
                         "DIR/<variant>-s<seed>.npz, small files that scripts/paired.py reads without the runs")
    ap.add_argument("--jobs", type=int, default=1,
                    help="train up to this many (variant, seed) runs at once, each in its own process with one "
                         "torch thread (its output in OUT/<variant>-s<seed>.log); the table follows when all end")
    args = ap.parse_args()
    if args.jobs < 1:
        raise SystemExit(f"--jobs must be >= 1, got {args.jobs}")
    if args.jobs > 1:
        run_parallel(args)

    from comirec.training import train

    rows = []
    for text in args.variant:
        name, model, opts = parse_variant(text)
        unknown = set(opts) - {f.name for f in dataclasses.fields(ModelConfig)} - {f.name for f in dataclasses.fields(TrainConfig)}
        if unknown:
            raise SystemExit(f"--variant {text}: unknown fields {sorted(unknown)}")
        for seed in [int(s) for s in args.seeds.split(",")]:
            run = Path(args.out) / f"{name}-s{seed}"
            if not (run / "metrics.json").is_file():
                if run.exists():  # an unfinished run: start it again
                    shutil.rmtree(run)
                mcfg = ModelConfig(model=model, **typed(ModelConfig, opts))  # type: ignore[arg-type]
                tkw = dict(max_steps=args.max_steps, eval_every=args.eval_every, patience=args.patience, seed=seed, threads=1, progress=False)
                tkw.update(typed(TrainConfig, opts))
                tcfg = TrainConfig(data=args.data, out=str(run), **tkw)  # type: ignore[arg-type]
                train(mcfg, tcfg)
            if args.per_user:
                save_per_user(run, args.data, Path(args.per_user) / f"{name}-s{seed}.npz")
            m = json.loads((run / "metrics.json").read_text())
            (valid,) = m["valid"]["standard"].values()  # one λ (0)
            (test,) = m["test"]["standard"].values()
            row = dict(variant=name, seed=seed, best_step=m["best_step"], steps=m["steps"],
                       valid_r50=100 * valid["recall@50"], test_r50=100 * test["recall@50"])
            rows.append(row)
            print(json.dumps(row), flush=True)
    print()
    print("| variant | seed | steps (best) | valid R@50 | test R@50 |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['seed']} | {r['steps']} ({r['best_step']}) | {r['valid_r50']:.3f} | {r['test_r50']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
