"""``comirec evaluate``: a run's metrics on the valid or test users, one retrieval for all λ."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..config import EvalConfig
from ..evaluation import Report, evaluate_model, format_report, report_to_json
from ..interests import build_index


def run(args: argparse.Namespace) -> int:
    """``comirec evaluate``: a run's metrics on the valid or test users, one retrieval for all λ."""
    from ..config import EvalConfig, from_namespace
    from ..data import load_prepared
    from ..retrieval import check_factory
    from ..runs import check_same_items, load_model, load_run_config
    from ..device import resolve_device

    cfg = from_namespace(EvalConfig, args)
    # paths and settings first: mistakes are reported before torch is imported (seconds)
    run_cfg = load_run_config(Path(cfg.run))
    data = cfg.data or run_cfg["dataset"]["path"]
    if not Path(data).exists():
        raise FileNotFoundError(f"the run's dataset {data} is not there any more: pass --data DIR (a prepared dataset)")
    ds = load_prepared(data)
    if cfg.plot is not None and not Path(cfg.plot).resolve().parent.is_dir():
        raise FileNotFoundError(f"--plot {cfg.plot}: its directory does not exist")
    check_factory(cfg.index, arg="--index")
    device = resolve_device(cfg.device)
    model, run_cfg = load_model(Path(cfg.run), device)
    check_same_items(model.n_items, ds, f"evaluate --run {cfg.run}")
    index = build_index(model, device, cfg.index, cfg.nprobe, cfg.ef_search)
    print("retrieval: " + ", ".join(f"{k} {v}" for k, v in index.describe().items()), file=sys.stderr)
    from tqdm import tqdm

    # disable=None: on a terminal only, so that a log file or an error's one line stays clean
    with tqdm(total=len(ds.users(cfg.split)), desc="evaluate", unit=" users", file=sys.stderr, dynamic_ncols=True,
              disable=True if cfg.json or not cfg.progress else None) as bar:
        report = evaluate_model(model, ds, split=cfg.split, ns=cfg.n, lams=cfg.lam, protocols=(cfg.protocol,),
                                maxlen=int(run_cfg["model"]["maxlen"]), batch_size=cfg.batch_size, device=device, index=index,
                                on_users=bar.update)
    name = run_cfg["model"]["model"]
    if cfg.json:
        print(json.dumps({"units": "fraction", **report_to_json(report)[cfg.protocol]}))
    else:
        label = " (SYNTHETIC data)" if run_cfg["dataset"].get("synthetic") else ""
        print(format_report(report, f"{name} on {ds.path}{label}, {cfg.split} users, metrics in %"))
    if cfg.plot is not None:
        _plot_report(report, cfg, name, cfg.plot)
    return 0


def _plot_report(report: Report, cfg: EvalConfig, name: str, where: str) -> None:
    from ..plots import PlotUnavailable, tradeoff_points, write_tradeoff_plot

    n = 50 if 50 in cfg.n else max(cfg.n)
    points = tradeoff_points(report_to_json(report)[cfg.protocol], n)
    try:
        path = write_tradeoff_plot({name: points}, where, n=n, title=f"{name}, {cfg.split} users, protocol {cfg.protocol}")
    except PlotUnavailable as exc:
        print(f"--plot: skipped: {exc}", file=sys.stderr)
        return
    print(f"plot: {path}", file=sys.stderr)
