"""``comirec recommend``: top-n lists for many users as Parquet shards (:mod:`comirec.recommend`)."""

from __future__ import annotations

import argparse
import sys

from ..config import RecommendConfig, from_namespace


def run(args: argparse.Namespace) -> int:
    from ..recommend import recommend

    cfg = from_namespace(RecommendConfig, args)
    summary = recommend(cfg)
    print(f"{summary['users']} users: top-{cfg.n} lists (λ = {cfg.lam}) in {summary['shards']} Parquet shard(s) -> {cfg.out}  "
          f"[{summary['engine']}, {summary['seconds']:.1f} s, {summary['users_per_s']:.0f} users/s]")
    if "stage_seconds" in summary:
        print("stage seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in summary["stage_seconds"].items()), file=sys.stderr)
    return 0
