#!/usr/bin/env python3
"""Approximate retrieval against exact search (issue 10 item 3): for each Faiss index, the build
time, the index size, the search speed and the Recall@n of the *final aggregated list*
(``comirec.aggregate`` at λ = 0 and 0.1) relative to the list exact search gives.

    python benches/ann_recall.py --synthetic 1000000 --users 2000 --out ann-1m.jsonl
    python benches/ann_recall.py --run runs/beauty-sa --data data/beauty --out ann-beauty.jsonl

One process, the same queries for every index; exact search (``Flat``) is the baseline and is
measured first. Each result is one JSON line, written as soon as it is measured. A script, not a
pytest-benchmark file: one configuration takes minutes at a million items.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from comirec import aggregate
from comirec.retrieval import ItemIndex

#: Each index is built once, then searched with each of its settings.
FACTORIES = [
    ("Flat", [{}]),
    ("IVF{nlist},Flat", [{"nprobe": 8}, {"nprobe": 32}, {"nprobe": 128}]),
    ("IVF{nlist},PQ32", [{"nprobe": 32}, {"nprobe": 128}]),
    ("HNSW32", [{"ef_search": 64}, {"ef_search": 256}]),
]


def synthetic(n_items: int, n_users: int, k: int, d: int, n_cats: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Overlapping clusters (a category centre, smaller than the noise around it, norms spread like
    popularity) and user interests near category centres: (item vectors (n, d), categories
    (n + 1,), queries (u, k, d)). The clusters overlap so that an item's nearest neighbours are
    spread over several IVF lists, as in trained embeddings (tight clusters make IVF exact)."""
    rng = np.random.default_rng(seed)
    centres = 0.6 * rng.standard_normal((n_cats, d)).astype(np.float32)
    cats = rng.integers(0, n_cats, n_items)
    items = centres[cats] + rng.standard_normal((n_items, d)).astype(np.float32) / np.sqrt(2)
    items *= (1.0 + 0.5 * rng.random(n_items)).astype(np.float32)[:, None]
    user_cats = rng.integers(0, n_cats, (n_users, k))
    queries = centres[user_cats] + 0.5 * rng.standard_normal((n_users, k, d)).astype(np.float32)
    return items, np.concatenate([[-1], cats]).astype(np.int64), queries


def from_run(run: str, data: str, max_users: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A trained run's item vectors and its test users' interests (evaluation histories)."""
    from comirec.data import eval_batches, load_prepared
    from comirec.interests import compute_interests
    from comirec.runs import load_model

    model, cfg = load_model(run)
    ds = load_prepared(data)
    users = ds.users("test")[:max_users]
    parts = [compute_interests(model, b.history, b.mask).numpy()
             for b in eval_batches(ds.indptr, ds.items, users=users, maxlen=int(cfg["model"]["maxlen"]))]
    items = model.item_vectors().detach().numpy().astype(np.float32)
    return items, np.asarray(ds.item_cat, np.int64), np.concatenate(parts)


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over rows of |a ∩ b| / |b| (b: the exact lists; -1 pads ignored)."""
    total = 0.0
    for x, y in zip(a, b):
        want = set(y[y > 0].tolist())
        total += len(want & set(x[x > 0].tolist())) / max(len(want), 1)
    return total / len(b)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--synthetic", type=int, default=0, help="items of a synthetic catalogue (else --run/--data)")
    p.add_argument("--run")
    p.add_argument("--data")
    p.add_argument("--users", type=int, default=2000)
    p.add_argument("--n", type=int, default=50)
    p.add_argument("--nlist", type=int, default=0, help="IVF lists (0: about 4·sqrt(items), a power of two)")
    p.add_argument("--only", default="", help="comma-separated factory strings to run (default: all)")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    if a.synthetic:
        items, cats, queries = synthetic(a.synthetic, a.users, 4, 64, 1000, 0)
        name = f"synthetic {a.synthetic} items"
    else:
        items, cats, queries = from_run(a.run, a.data, a.users)
        name = f"{Path(a.data).name} ({a.run})"
    nlist = a.nlist or int(2 ** round(np.log2(4 * np.sqrt(items.shape[0]))))
    out = open(a.out, "a")
    exact: dict[float, np.ndarray] = {}
    flat_qps = None
    import faiss

    for pattern, settings in FACTORIES:
        factory = pattern.format(nlist=nlist)
        if a.only and factory not in a.only.split(","):
            continue
        t0 = time.perf_counter()
        index = ItemIndex(items, factory=factory)
        build = time.perf_counter() - t0
        size = int(faiss.serialize_index(index._index).nbytes)
        for params in settings:
            for key, value in params.items():  # the search-time setting, on the built index
                faiss.ParameterSpace().set_index_parameter(index._index, {"ef_search": "efSearch"}.get(key, key), value)
            t0 = time.perf_counter()
            cands = index.search(queries, a.n)
            search = time.perf_counter() - t0
            row = {"catalogue": name, "items": int(items.shape[0]), "users": int(queries.shape[0]),
                   "interests": int(queries.shape[1]), "factory": factory, **params, "build_s": round(build, 2),
                   "index_mb": round(size / 2**20, 1), "search_s": round(search, 3),
                   "users_per_s": round(queries.shape[0] / search, 1)}
            for lam in (0.0, 0.1):
                recs = np.asarray(aggregate(cands, cats, lam=lam, n=a.n).items)
                if factory == "Flat":
                    exact[lam] = recs
                row[f"recall_vs_exact_lam{lam}"] = round(overlap(recs, exact[lam]), 4) if exact else None
            if factory == "Flat":
                flat_qps = row["users_per_s"]
            row["speed_vs_flat"] = round(row["users_per_s"] / flat_qps, 2) if flat_qps else None
            out.write(json.dumps(row) + "\n")
            out.flush()
            print(json.dumps(row), file=sys.stderr)
        del index
    return 0


if __name__ == "__main__":
    sys.exit(main())
