#!/usr/bin/env python3
"""Paired per-user Recall@50 differences between trained runs (test users unless --split valid).

    python scripts/paired.py --data data/sports --split test --runs A=runs/x-s19,runs/x-s20 B=runs/y-s19

Each NAME=RUN[,RUN...] is one model (a RUN is a run directory, or a per-user .npz file written
by scripts/model_study.py --per-user); with several runs (seeds) a user's Recall@50 is first
averaged over the runs, then the difference A - B is taken per user, and its mean and standard
error over users are printed (for every pair where A is listed before B), with each model's mean
and the sd of its per-seed means.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="test", choices=("valid", "test"))
    ap.add_argument("--protocol", default="comirec", choices=("standard", "comirec"))
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    ap.add_argument("runs", nargs="+", metavar="NAME=RUN[,RUN...]")
    args = ap.parse_args()

    from comirec.data import load_prepared
    from comirec.evaluation import per_user_metrics
    from comirec.runs import load_model

    ds = load_prepared(args.data)
    per_model: dict[str, np.ndarray] = {}
    seed_means: dict[str, list[float]] = {}
    for spec in args.runs:
        name, _, paths = spec.partition("=")
        arrays = []
        for path in paths.split(","):
            if path.endswith(".npz"):  # written by scripts/model_study.py --per-user (protocol comirec)
                if args.protocol != "comirec":
                    raise SystemExit(f"{path}: per-user files hold protocol comirec; use --protocol comirec")
                r = np.load(path)[args.split].astype(np.float64)
                if len(r) != len(ds.users(args.split)):
                    raise SystemExit(f"{path}: {len(r)} users, but {args.data} has {len(ds.users(args.split))} {args.split} users")
            else:
                model, cfg = load_model(path)
                r = per_user_metrics(model, ds, split=args.split, n=50, protocol=args.protocol, maxlen=cfg["model"]["maxlen"])["recall@50"]
            arrays.append(r)
        stacked = np.vstack(arrays)
        per_model[name] = stacked.mean(0)
        seed_means[name] = [float(100 * np.nanmean(a)) for a in arrays]
    out: dict[str, object] = {"split": args.split, "protocol": args.protocol, "models": {}, "paired": {}}
    print(f"Recall@50 (%), {args.split} users, protocol {args.protocol}")
    for name, arr in per_model.items():
        s = seed_means[name]
        sd = float(np.std(s, ddof=1)) if len(s) > 1 else float("nan")
        print(f"  {name}: {100 * np.nanmean(arr):.3f} (seeds: {', '.join(f'{x:.3f}' for x in s)}; sd {sd:.3f})")
        out["models"][name] = {"mean": float(100 * np.nanmean(arr)), "per_seed": s, "sd": sd}  # type: ignore[index]
    names = list(per_model)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            d = 100 * (per_model[a] - per_model[b])
            d = d[np.isfinite(d)]
            se = float(d.std(ddof=1) / np.sqrt(len(d)))
            print(f"  {a} - {b}: {d.mean():+.2f} ± {se:.2f} ({len(d)} users)")
            out["paired"][f"{a} - {b}"] = {"mean": float(d.mean()), "se": se, "users": int(len(d))}  # type: ignore[index]
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
