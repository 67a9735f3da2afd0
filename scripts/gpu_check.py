#!/usr/bin/env python
"""GPU check (run by hand on a CUDA machine): ComiRec-SA and ComiRec-DR on Amazon Beauty.

Trains each model on CUDA for a bounded time, then reports training samples/s, the test
Recall@50 (both protocols), and checks the torch retrieval path against faiss (CPU) on the
trained item table. Finishes with one JSON line on stdout. Example::

    python scripts/gpu_check.py --beauty ../shared/data/amazon-beauty --minutes 3 --out /tmp/gpu-check

Compare with the same command and ``--device cpu`` on the CPU machine for the speed ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--beauty", required=True, help="the amazon-beauty directory (Beauty.txt, DERIVED tsv, split-seed1230.tsv) or a prepared dataset")
    ap.add_argument("--out", required=True, help="scratch directory for the prepared data and the runs")
    ap.add_argument("--minutes", type=float, default=3.0, help="training budget per model")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--models", default="comirec-sa,comirec-dr")
    args = ap.parse_args()

    import numpy as np
    import torch

    from comirec.config import ModelConfig, ReproduceConfig, TrainConfig
    from comirec.data import load_prepared
    from comirec.evaluation import evaluate_model
    from comirec.interests import build_index
    from comirec.reproduce import resolve_dataset
    from comirec.training import train
    from comirec.runs import load_model

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data_dir = resolve_dataset(ReproduceConfig(out=str(out), data=args.beauty), out)
    ds = load_prepared(data_dir)
    print(f"device: {args.device} ({torch.cuda.get_device_name(0) if args.device.startswith('cuda') else 'cpu'}), "
          f"dataset {data_dir}: {ds.n_users} users, {ds.n_items} items", file=sys.stderr)
    results: dict[str, object] = {"device": args.device, "minutes_per_model": args.minutes}
    for name in args.models.split(","):
        run = out / f"run-{name}-{args.device.replace(':', '')}-{int(time.time())}"
        train(ModelConfig(model=name), TrainConfig(data=str(data_dir), out=str(run), max_steps=10**7, max_minutes=args.minutes,
                                                     eval_every=1000, patience=10**6, device=args.device, progress=False), dataset=ds)
        final = json.loads((run / "metrics.json").read_text())
        entry = {"steps": final["steps"], "best_step": final["best_step"], "train_samples_per_s": final["train_samples_per_s"],
                 "test_recall@50_standard": final["test"]["standard"]["0.0"]["recall@50"],
                 "test_recall@50_comirec": final["test"]["comirec"]["0.0"]["recall@50"]}
        # Retrieval: the torch path (CUDA, no faiss GPU needed) against exact faiss on the CPU.
        model, _ = load_model(run, args.device)
        cpu_index = build_index(model, "cpu")
        from comirec.retrieval import ItemIndex

        torch_index = ItemIndex(model.item_vectors().detach(), device=args.device, backend="torch")
        q = torch.randn(4096, 4, model.dim, device=args.device) * 0.1
        t0 = time.perf_counter()
        a = torch_index.search(q, 50)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t_torch = time.perf_counter() - t0
        t0 = time.perf_counter()
        b = cpu_index.search(q.cpu(), 50)
        t_faiss = time.perf_counter() - t0
        entry["retrieval_top50_agreement"] = float(np.mean(a.items == b.items))
        entry["retrieval_seconds_torch_vs_faiss_cpu"] = [round(t_torch, 4), round(t_faiss, 4)]
        rep = evaluate_model(model, ds, split="test", ns=(50,), protocols=("comirec",), device=args.device)
        entry["test_recall@50_comirec_reeval"] = rep["comirec"][0.0]["recall@50"]
        results[name] = entry
        print(name, json.dumps(entry), file=sys.stderr)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
