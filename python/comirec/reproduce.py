"""``comirec reproduce``: the paper's Table 3 (all six models) and Table 5 (λ) on one dataset.

Every model trains on the same split with the same seed and the same budget; each is then
evaluated on the test users (N = 20, 50; both metric protocols are kept in the report). The
printed tables and ``report.md`` name the dataset (SYNTHETIC when it is), the protocol and the
training budget actually used, so that no number is read out of context.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from .config import ModelConfig, ReproduceConfig, TrainConfig

ALL_MODELS = ("mostpop", "youtube-dnn", "gru4rec", "mind", "comirec-sa", "comirec-dr")
COMIREC = ("comirec-sa", "comirec-dr")
PAPER_NAMES = {"mostpop": "MostPopular", "youtube-dnn": "YouTube DNN", "gru4rec": "GRU4Rec", "mind": "MIND",
               "comirec-sa": "ComiRec-SA", "comirec-dr": "ComiRec-DR"}
TABLE3_KEYS = ("recall@20", "ndcg@20", "hitrate@20", "recall@50", "ndcg@50", "hitrate@50")
SYNTH_ARGS = ["--users", "6000", "--items", "3000", "--categories", "30"]


def parse_models(text: str) -> tuple[str, ...]:
    if text.strip() == "all":
        return ALL_MODELS
    names = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    for n in names:
        if n not in ALL_MODELS:
            raise ValueError(f"--models: unknown model {n!r}: expected 'all' or a comma-separated list of {', '.join(ALL_MODELS)}")
    if not names:
        raise ValueError("--models: expected at least one model")
    return names


def _is_prepared(path: Path) -> bool:
    from .data import load_prepared

    try:
        load_prepared(path)
    except (ValueError, FileNotFoundError, OSError):
        return False
    return True


def resolve_dataset(cfg: ReproduceConfig, out: Path) -> Path:
    """A prepared dataset directory for the run: given, prepared from raw sequences, or synthetic."""
    from .cli import main as cli_main

    source = cfg.data or os.environ.get("COMIREC_BEAUTY")
    if source is not None:
        src = Path(source)
        if not src.exists():
            raise FileNotFoundError(f"--data {src} does not exist")
        if _is_prepared(src):
            return src
        target = out / "dataset"
        if _is_prepared(target):
            return target
        argv = ["prepare", "--format", "sequences", "--input", str(src), "--out", str(target)]
        splits = sorted(src.glob("split-*.tsv")) if src.is_dir() else []
        if splits:
            argv += ["--split-file", str(splits[0])]
        print(f"preparing {src} -> {target}" + (f" (user split from {splits[0].name})" if splits else ""), file=sys.stderr)
        if cli_main(argv) != 0:
            raise ValueError(f"--data {src}: neither a prepared dataset nor a sequences directory that comirec prepare accepts")
        return target
    target = out / "synthetic"
    if not _is_prepared(target):
        print(f"no --data and no $COMIREC_BEAUTY: generating a small SYNTHETIC dataset in {target}", file=sys.stderr)
        if cli_main(["synth", *SYNTH_ARGS, "--seed", str(cfg.seed), "--out", str(target)]) != 0:
            raise ValueError("could not generate the synthetic dataset")
    return target


def run_all(cfg: ReproduceConfig) -> dict[str, Any]:
    from .data import load_prepared
    from .training import auto_threads, resolve_device

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    models = parse_models(cfg.models)
    data_dir = resolve_dataset(cfg, out)
    ds = load_prepared(data_dir)
    device = resolve_device(cfg.device)
    if device.type == "cpu" and not cfg.threads:  # decided once, before our own training loads the machine
        cfg = dataclasses.replace(cfg, threads=auto_threads())
    extra_k = [k for k in cfg.table4_k if k != cfg.interests]
    table4_models = [m for m in COMIREC if m in models] if extra_k else []
    n_runs = len([m for m in models if m != "mostpop"]) + len(extra_k) * len(table4_models)
    per_model = cfg.budget_minutes / max(n_runs, 1) if cfg.budget_minutes > 0 else 0.0
    report: dict[str, Any] = {
        "dataset": {"path": str(Path(data_dir).resolve()), "name": ds.header.get("name"), "synthetic": bool(ds.header.get("synthetic", False)),
                    "n_users": int(ds.n_users), "n_items": int(ds.n_items), "n_interactions": int(ds.n_interactions)},
        "config": dataclasses.asdict(cfg), "budget_minutes_per_model": per_model, "models": {}, "table4": {},
    }
    for name in models:
        lams = cfg.lams if name in COMIREC else (0.0,)
        report["models"][name] = _run_one(cfg, ds, data_dir, device, name, cfg.interests, out / "runs" / name, per_model, lams)
    report["paired"] = _paired_differences(cfg, ds, device, out, [m for m in models if m != "mostpop"])
    for name in table4_models:
        by_k = {cfg.interests: report["models"][name]}
        for k in extra_k:
            by_k[k] = _run_one(cfg, ds, data_dir, device, name, k, out / "runs" / f"{name}-K{k}", per_model, (0.0,))
        report["table4"][name] = {str(k): by_k[k] for k in sorted(by_k)}
    return report


def _paired_differences(cfg: ReproduceConfig, ds: Any, device: Any, out: Path, models: list[str]) -> dict[str, Any]:
    """Recall@50 of each ComiRec model minus each learned baseline, per test user, with the
    standard error of the mean difference (both protocols)."""
    import numpy as np

    from .evaluation import per_user_metrics
    from .training import load_model

    baselines = [m for m in models if m not in COMIREC]
    ours = [m for m in models if m in COMIREC]
    if not baselines or not ours:
        return {}
    result: dict[str, Any] = {}
    for protocol in ("standard", "comirec"):
        recall = {}
        for name in baselines + ours:
            model, _ = load_model(out / "runs" / name, device)
            recall[name] = per_user_metrics(model, ds, split="test", n=50, protocol=protocol, maxlen=cfg.maxlen, device=device)["recall@50"]
        result[protocol] = {
            f"{a} - {b}": {"mean": float(d.mean()), "se": float(d.std(ddof=1) / np.sqrt(len(d))), "users": len(d)}
            for a in ours for b in baselines for d in [recall[a] - recall[b]]
        }
    return result


def _run_one(cfg: ReproduceConfig, ds: Any, data_dir: Path, device: Any, name: str, k: int, run: Path,
             minutes: float, lams: tuple[float, ...]) -> dict[str, Any]:
    """Train one model (unless its run finished before) and evaluate it on the test users."""
    from .evaluation import evaluate_model, report_to_json
    from .training import METRICS, load_model, train

    if not (run / METRICS).is_file():  # a finished run is reused: reproduce can be re-run
        if run.exists():
            import shutil

            shutil.rmtree(run)
        t0 = time.perf_counter()
        train(ModelConfig(model=name, dim=cfg.dim, interests=k, maxlen=cfg.maxlen),
              TrainConfig(data=str(data_dir), out=str(run), max_steps=cfg.max_steps, max_minutes=minutes, batch_size=cfg.batch_size,
                          lr=cfg.lr, eval_every=cfg.eval_every, patience=cfg.patience, seed=cfg.seed, device=cfg.device,
                          threads=cfg.threads, progress=cfg.progress), dataset=ds)
        print(f"{name} (K={k}): trained in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    final = json.loads((run / METRICS).read_text())
    model, _ = load_model(run, device)
    test = evaluate_model(model, ds, split="test", ns=(20, 50), lams=lams, protocols=("standard", "comirec"),
                          maxlen=cfg.maxlen, device=device, stderr=True)
    return {"run": str(run), "interests": k, "steps": final["steps"], "best_step": final["best_step"],
            "stop_reason": final.get("stop_reason"), "train_seconds": final["train_seconds"],
            "train_samples_per_s": final["train_samples_per_s"], "test": report_to_json(test)}


def table3(report: dict[str, Any], protocol: str) -> str:
    head = "| model | R@20 | N@20 | HR@20 | R@50 | N@50 | HR@50 | steps (best) |"
    lines = [head, "|" + "---|" * 8]
    for name, r in report["models"].items():
        m = r["test"][protocol]["0.0"]
        lines.append(f"| {PAPER_NAMES[name]} | " + " | ".join(f"{100 * m[k]:.3f}" for k in TABLE3_KEYS) + f" | {r['steps']} ({r['best_step']}) |")
    return "\n".join(lines)


def table4(report: dict[str, Any], protocol: str) -> str:
    if not report.get("table4"):
        return ""
    lines = ["| model (K) | Recall@50 | NDCG@50 |", "|---|---|---|"]
    for name, by_k in report["table4"].items():
        for k, r in by_k.items():
            m = r["test"][protocol]["0.0"]
            lines.append(f"| {PAPER_NAMES[name]} (K={k}) | {100 * m['recall@50']:.3f} | {100 * m['ndcg@50']:.3f} |")
    return "\n".join(lines)


def stderr_note(report: dict[str, Any], protocol: str) -> str:
    parts = [f"{PAPER_NAMES[n]} ±{100 * r['test'][protocol]['0.0']['recall@50_se']:.2f}" for n, r in report["models"].items()]
    return "Standard error of Recall@50 over the test users (a difference under ~2 of these is noise): " + ", ".join(parts)


def paired_note(report: dict[str, Any], protocol: str) -> str:
    diffs = report.get("paired", {}).get(protocol)
    if not diffs:
        return ""
    parts = []
    for key, d in diffs.items():
        a, b = key.split(" - ")
        parts.append(f"{PAPER_NAMES[a]} - {PAPER_NAMES[b]}: {100 * d['mean']:+.2f} ± {100 * d['se']:.2f}")
    return "Paired Recall@50 differences over the same test users (± standard error): " + "; ".join(parts)


def table5(report: dict[str, Any], protocol: str) -> str:
    present = [m for m in COMIREC if m in report["models"]]
    if not present:
        return ""
    lines = ["| λ | " + " | ".join(f"{PAPER_NAMES[m]} Recall@50 | {PAPER_NAMES[m]} Diversity@50" for m in present) + " |",
             "|" + "---|" * (1 + 2 * len(present))]
    for lam_key in report["models"][present[0]]["test"][protocol]:
        row = [lam_key]
        for m in present:
            vals = report["models"][m]["test"][protocol].get(lam_key)
            row += [f"{100 * vals['recall@50']:.3f}", f"{100 * vals['diversity@50']:.3f}"] if vals else ["", ""]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def render(report: dict[str, Any], protocol: str) -> str:
    d = report["dataset"]
    label = "SYNTHETIC data (generated; not a real-data result)" if d["synthetic"] else "real data"
    budget = report["config"]["budget_minutes"]
    head = (f"Dataset: {d['name'] or d['path']} — {label}; {d['n_users']} users, {d['n_items']} items, {d['n_interactions']} interactions.\n"
            f"Test users, metrics in %, protocol: {protocol}. Budget: {report['config']['max_steps']} steps per model at most"
            + (f", {budget:g} min of training in all" if budget else "") + f", batch {report['config']['batch_size']}, seed {report['config']['seed']}.")
    parts = [head, "", "Table 3 layout (λ = 0)", table3(report, protocol), "", stderr_note(report, protocol)]
    paired = paired_note(report, protocol)
    if paired:
        parts += ["", paired]
    t4 = table4(report, protocol)
    if t4:
        parts += ["", "Table 4 layout (number of interests K)", t4]
    t5 = table5(report, protocol)
    if t5:
        parts += ["", "Table 5 layout (N = 50)", t5]
    return "\n".join(parts)


def cli_reproduce(args: Any) -> int:
    from .config import from_namespace

    cfg = from_namespace(ReproduceConfig, args)
    from .data._writing import OutputLock

    parse_models(cfg.models)  # fail before any work
    out = Path(cfg.out)
    if os.path.lexists(out) and not out.is_dir():
        raise FileExistsError(f"--out {out}: exists and is not a directory; expected an output directory")
    with OutputLock(out):  # a second reproduce into the same --out fails at once (exit 1)
        report = run_all(cfg)
        (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        md = "\n\n".join(f"## protocol: {p}\n\n" + render(report, p) for p in ("standard", "comirec"))
        (out / "report.md").write_text("# comirec reproduce\n\n" + md + "\n")
    print(render(report, cfg.protocol))
    print(f"\nreport: {out / 'report.json'}, {out / 'report.md'}")
    return 0
