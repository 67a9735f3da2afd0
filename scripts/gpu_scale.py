#!/usr/bin/env python
"""Issue 10 item 4 on one GPU (run by hand on a CUDA machine): the stages of the scale run.

A SYNTHETIC catalogue (``comirec synth``), a short ComiRec-SA training on the GPU (dense and
``--sparse-items`` item table), then ``comirec recommend`` for every test user with the exact
search on the GPU (torch: matmul + topk; faiss-gpu when installed) and, for comparison on the
same machine and users, the CPU search with an IVF index; the IVF lists' overlap with the exact
ones; and the torch search alone at two chunk sizes. Each step's result is appended to
``OUT/gpu_scale.jsonl`` as it finishes, so a run cut short still reports what it did. Example::

    python scripts/gpu_scale.py --out /tmp/gpu-scale --users 1200000 --items 1000000 --train-minutes 0.7

``--device cpu`` with small sizes runs the same steps anywhere (to check the script).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="scratch directory (data, runs, outputs)")
    ap.add_argument("--report", help="JSON-lines file for the results (default OUT/gpu_scale.jsonl)")
    ap.add_argument("--users", type=int, default=1_200_000)
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--categories", type=int, default=1000)
    ap.add_argument("--train-minutes", type=float, default=0.7)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads (torch, faiss, the Rust stages)")
    ap.add_argument("--ivf", default="IVF1024,Flat")
    ap.add_argument("--nprobe", type=int, default=32)
    ap.add_argument("--cpu-users", type=int, default=20000, help="test users for the CPU IVF comparison (0: skip it)")
    ap.add_argument("--tables", default="dense,sparse-items", help="item tables to train: dense, sparse-items (the first is used)")
    args = ap.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = Path(args.report) if args.report else out / "gpu_scale.jsonl"

    def record(step: str, **fields: object) -> None:
        line = json.dumps({"step": step, **fields})
        print(line, flush=True)
        with report.open("a") as f:
            f.write(line + "\n")

    def comirec(*argv: str) -> float:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "comirec", *argv], check=True)
        return round(time.perf_counter() - t, 2)

    import torch

    record("machine", torch=torch.__version__, cuda=torch.version.cuda, device=args.device,
           gpu=torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None, cpus=os.cpu_count())

    data = out / "synth"
    secs = comirec("synth", "--users", str(args.users), "--items", str(args.items), "--categories", str(args.categories),
                   "--out", str(data), "--seed", "0")
    record("synth", users=args.users, items=args.items, seconds=secs)

    common = ["--model", "comirec-sa", "--data", str(data), "--device", args.device, "--threads", str(args.threads),
              "--max-minutes", str(args.train_minutes), "--eval-every", "1000000", "--eval-users", "2000",
              "--final-eval-users", "2000", "--no-progress"]
    runs = {}
    for name in args.tables.split(","):
        extra = {"dense": [], "sparse-items": ["--sparse-items"]}[name]
        run = out / f"sa-{name}"
        secs = comirec("train", *common, "--out", str(run), *extra)
        m = json.loads((run / "metrics.json").read_text())
        record("train", table=name, wall_seconds=secs, steps=m["steps"], train_samples_per_s=m["train_samples_per_s"],
               train_seconds=m["train_seconds"], valid_recall50=m["valid"]["comirec"]["0.0"]["recall@50"],
               test_recall50=m["test"]["comirec"]["0.0"]["recall@50"], eval_users=m["final_eval_users"])
        runs[name] = run

    run = runs[args.tables.split(",")[0]]
    exact = out / "recs-exact"
    secs = comirec("recommend", "--run", str(run), "--data", str(data), "--split", "test", "--out", str(exact), "--engine", "local",
                   "--device", args.device, "--lam", "0.1", "--n", "50", "--threads", str(args.threads))
    s = json.loads((exact / "_summary.json").read_text())
    u = s["users"]
    st = s["stage_seconds"]
    record("recommend-exact", device=args.device, wall_seconds=secs, summary=s,
           users_per_s={"end_to_end": s["users_per_s"], **{k: round(u / max(v, 1e-9), 1) for k, v in st.items()}})

    # The CPU search on this machine's cores, IVF (an exact CPU search of every test user would take hours).
    if args.cpu_users > 0:
        cpu_ivf(args, out, data, run, exact, record, comirec)
    torch_search(args, run, record)
    rank_paths(args, run, data, record)
    return 0


def _median_of_3(call: Any, device: str) -> tuple[float, Any]:
    """The median wall time of three calls (the device synchronised before each) and the last result."""
    import torch

    times, got = [], None
    for _ in range(3):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        got = call()
        times.append(time.perf_counter() - t)
    return sorted(times)[1], got


class _Unmasked:
    """An index seen without ``exclude``: Recommender.rank then searches deeper and filters."""

    can_exclude = False

    def __init__(self, index: Any) -> None:
        self.index = index

    def search(self, queries: Any, n: int, exclude: Any = None) -> Any:
        return self.index.search(queries, n)


def rank_paths(args: argparse.Namespace, run: Path, data: Path, record: Any) -> None:
    """RankStage on one batch of 4,096 test users (their seen items excluded), one process: the
    torch search masking the seen items before its top-50, against searching deeper and filtering."""
    import numpy as np

    from comirec.recommend import EmbedStage, RankStage, read_split

    table = next(read_split(str(data), "test", 4096))
    emb = EmbedStage(str(run), device=args.device, threads=args.threads)(table)
    rank = RankStage(str(run), n=50, lam=0.1, device=args.device, threads=args.threads)
    masked = rank.rec.index
    out = {}
    for name, index in (("masked", masked), ("deep-then-filter", _Unmasked(masked)), ("masked-again", masked)):
        rank.rec.index = index
        rank(emb)
        median, got = _median_of_3(lambda: rank(emb), args.device)
        out[name] = {"median_s": round(median, 4), "users_per_s": round(table.num_rows / median, 1),
                     "items": got.column("items").to_pylist()}
    same = out["masked"]["items"] == out["deep-then-filter"]["items"]
    differ = sum(a != b for a, b in zip(out["masked"]["items"], out["deep-then-filter"]["items"]))
    for v in out.values():
        del v["items"]
    record("rank-paths", users=table.num_rows, backend=masked.backend, lam=0.1, n=50, paths=out, same_lists=bool(same),
           users_with_other_lists=int(differ), max_seen=int(np.diff(table.column("history").combine_chunks().offsets.to_numpy()).max()))


def cpu_ivf(args: argparse.Namespace, out: Path, data: Path, run: Path, exact: Path, record: Any, comirec: Any) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    users = pq.read_table(exact).column("user_id").to_numpy()[: args.cpu_users]
    hist_src = out / "cpu-users.parquet"
    from comirec.recommend import read_split

    tables = []
    need = set(users.tolist())
    for t in read_split(str(data), "test", 65536):
        keep = np.isin(t.column("user_id").to_numpy(), list(need))
        tables.append(t.filter(pa.array(keep)))
        if sum(x.num_rows for x in tables) >= len(need):
            break
    pq.write_table(pa.concat_tables(tables), hist_src)
    ivf = out / "recs-ivf-cpu"
    secs = comirec("recommend", "--run", str(run), "--users", str(hist_src), "--out", str(ivf), "--engine", "local",
                   "--device", "cpu", "--index", args.ivf, "--nprobe", str(args.nprobe), "--lam", "0.1", "--n", "50",
                   "--threads", str(args.threads))
    s = json.loads((ivf / "_summary.json").read_text())
    st = s["stage_seconds"]
    a = pq.read_table(exact).to_pydict()
    b = pq.read_table(ivf).to_pydict()
    ex = dict(zip(a["user_id"], a["items"]))
    overlap = [len(set(items) & set(ex[uid])) / max(len(ex[uid]), 1) for uid, items in zip(b["user_id"], b["items"])]
    record("recommend-ivf-cpu", index=args.ivf, nprobe=args.nprobe, threads=args.threads, wall_seconds=secs, summary=s,
           users_per_s={"end_to_end": s["users_per_s"], **{k: round(s["users"] / max(v, 1e-9), 1) for k, v in st.items()}},
           recall50_vs_exact=round(float(np.mean(overlap)), 4))


def torch_search(args: argparse.Namespace, run: Path, record: Any) -> None:
    """The torch exact search alone: blocks of 256 MiB of scores (the default before 2026-12-04),
    the default for the device (None), and 8 GiB."""
    import torch

    from comirec.retrieval import ItemIndex
    from comirec.runs import load_model

    model, _ = load_model(run, args.device)
    vectors = model.item_vectors().detach()
    gen = torch.Generator(device="cpu").manual_seed(0)
    q = (torch.randn(4096, 4, vectors.shape[1], generator=gen) * vectors.std().cpu()).to(args.device)
    times = {}
    for mib in (256, None, 8192):
        index = ItemIndex(vectors, device=args.device, backend="torch", chunk_bytes=None if mib is None else mib << 20)
        index.search(q[:64], 50)
        median, got = _median_of_3(lambda: index.search(q, 50), args.device)
        key = "default" if mib is None else f"{mib}MiB"
        times[key] = {"median_s": round(median, 4), "users_per_s": round(4096 / median, 1)}
        if mib == 256:
            first = got.items
        else:
            times[key]["same_items_as_256MiB"] = bool((got.items == first).all())
    from comirec.retrieval import default_chunk_bytes

    record("torch-search", users=4096, k=4, n=50, items=int(vectors.shape[0]), chunks=times,
           default_chunk_mib=default_chunk_bytes(args.device) >> 20)


if __name__ == "__main__":
    sys.exit(main())
