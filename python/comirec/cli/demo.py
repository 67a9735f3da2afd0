"""``comirec demo``: aggregate + metrics on generated candidates, one row per λ (:mod:`comirec.demo`)."""

from __future__ import annotations

import argparse
import math
import time

from .. import core
from ..config import DemoConfig, from_namespace
from ..demo import generate


def run(args: argparse.Namespace) -> int:
    cfg = from_namespace(DemoConfig, args)
    items, scores, cats, targets = generate(cfg)
    print(
        f"comirec demo: {cfg.users:,} users, K={cfg.interests} interests x N={cfg.per_interest} candidates, "
        f"{cfg.items:,} items in {cfg.categories} categories (synthetic, seed {cfg.seed}); "
        f"top-{cfg.n}, metrics protocol 'standard', in %"
    )
    ks = tuple(sorted({min(20, cfg.n), cfg.n}))
    cols = [f"{m}@{k}" for k in ks for m in ("recall", "ndcg", "hitrate", "diversity")]
    header = f"{'lambda':>8}  " + "  ".join(f"{c:>13}" for c in cols) + f"  {'users/s':>12}"
    print(header)
    print("-" * len(header))
    for lam in cfg.lams:
        start = time.perf_counter()
        out = core.aggregate((items, scores), cats, lam, cfg.n)
        speed = cfg.users / (time.perf_counter() - start)
        res = core.metrics(out.items, targets, cats, ks=ks)
        lam_text = "inf" if math.isinf(lam) else f"{lam:g}"
        print(f"{lam_text:>8}  " + "  ".join(f"{100 * res[c]:>13.2f}" for c in cols) + f"  {speed:>12,.0f}")
    return 0
