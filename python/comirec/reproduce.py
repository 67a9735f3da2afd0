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
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .config import ModelConfig, ReproduceConfig, TrainConfig
from .core import PROTOCOLS
from .models import COMIREC, MODEL_NAMES, PAPER_NAMES

if TYPE_CHECKING:
    from .data.prepared import PreparedDataset
    from .device import Device

Log = Callable[[str], None]


def _quiet(text: str) -> None:
    """The default ``log``: progress lines go nowhere (the CLI passes one that prints them)."""

TABLE3_KEYS = ("recall@20", "ndcg@20", "hitrate@20", "recall@50", "ndcg@50", "hitrate@50")
#: The synthetic dataset reproduce generates when given no data: users, items, categories.
SYNTH_SIZE = (6000, 3000, 30)


def parse_models(text: str) -> tuple[str, ...]:
    if text.strip() == "all":
        return MODEL_NAMES
    names = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    for n in names:
        if n not in MODEL_NAMES:
            raise ValueError(f"--models: unknown model {n!r}: expected 'all' or a comma-separated list of {', '.join(MODEL_NAMES)}")
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


def resolve_dataset(cfg: ReproduceConfig, out: Path, log: Log = _quiet) -> Path:
    """A prepared dataset directory for the run: given, prepared from raw sequences, or synthetic."""
    from .config import PrepareConfig, SynthConfig
    from .data import prepare, synthesize

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
        splits = sorted(src.glob("split-*.tsv")) if src.is_dir() else []
        log(f"preparing {src} -> {target}" + (f" (user split from {splits[0].name})" if splits else ""))
        try:
            prepare(PrepareConfig(format="sequences", input=str(src), out=str(target), split_file=str(splits[0]) if splits else None,
                                  progress=False))
        except (ValueError, FileNotFoundError) as exc:
            reason = " ".join(str(exc).split())
            raise ValueError(f"--data {src}: neither a prepared dataset nor a sequences directory that comirec prepare accepts ({reason})") from None
        return target
    target = out / "synthetic"
    if not _is_prepared(target):
        log(f"no --data and no $COMIREC_BEAUTY: generating a small SYNTHETIC dataset in {target}")
        users, items, categories = SYNTH_SIZE
        synthesize(SynthConfig(users=users, items=items, categories=categories, seed=cfg.seed, out=str(target)))
    return target


def seeds_of(cfg: ReproduceConfig) -> list[int]:
    return [cfg.seed + i for i in range(cfg.seeds)]


def run_dir(out: Path, name: str, seed: int, first_seed: int) -> Path:
    """``runs/<model>`` for the first seed (the single-seed layout), ``runs/<model>-seed<S>`` for the others."""
    return out / "runs" / (name if seed == first_seed else f"{name}-seed{seed}")


def run_all(cfg: ReproduceConfig, log: Log = _quiet) -> dict[str, Any]:
    """Train and evaluate every model of ``cfg.models`` (each seed, and the Table 4 K values);
    return the report (``report.json``). ``log`` receives one line per step taken."""
    from .data import load_prepared
    from .device import auto_threads, resolve_device

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    models = parse_models(cfg.models)
    data_dir = resolve_dataset(cfg, out, log)
    ds = load_prepared(data_dir)
    device = resolve_device(cfg.device)
    if device.type == "cpu" and not cfg.threads:  # decided once, before our own training loads the machine
        cfg = dataclasses.replace(cfg, threads=auto_threads())
    seeds = seeds_of(cfg)
    extra_k = [k for k in cfg.table4_k if k != cfg.interests]
    table4_models = [m for m in COMIREC if m in models] if extra_k else []
    n_runs = len([m for m in models if m != "mostpop"]) * len(seeds) + len(extra_k) * len(table4_models)
    per_model = cfg.budget_minutes / max(n_runs, 1) if cfg.budget_minutes > 0 else 0.0
    report: dict[str, Any] = {
        "dataset": {"path": str(Path(data_dir).resolve()), "name": ds.header.get("name"), "synthetic": bool(ds.header.get("synthetic", False)),
                    "n_users": int(ds.n_users), "n_items": int(ds.n_items), "n_interactions": int(ds.n_interactions)},
        "config": dataclasses.asdict(cfg), "budget_minutes_per_model": per_model, "seeds": seeds, "models": {}, "table4": {},
        "tuned": {}, "units": "fraction",  # every metric, standard error and difference is 0-1; the tables print %
    }
    base = {name: cfg.run_configs(name, str(data_dir), per_model) for name in models}
    if cfg.tune_minutes > 0:
        for name in models:
            if name == "mostpop":  # nothing to tune
                continue
            report["tuned"][name] = _tune_one(cfg, ds, out, name, *base[name], log=log)
            base[name] = _apply_tuned(base[name], report["tuned"][name]["params"])
    per_user: dict[str, list[dict[str, Any]]] = {}
    for name in models:
        lams = cfg.lams if name in COMIREC else (0.0,)
        entries = []
        for seed in seeds:
            m_cfg, t_cfg = base[name]
            t_cfg = dataclasses.replace(t_cfg, seed=seed, out=str(run_dir(out, name, seed, seeds[0])))
            entries.append(_run_one(ds, device, m_cfg, t_cfg, lams, log))
        per_user[name] = [e.pop("_per_user") for e in entries]
        report["models"][name] = entries[0] if len(seeds) == 1 else _combine_seeds(entries, per_user[name], seeds)
        if name in report["tuned"]:
            report["models"][name]["tuned_params"] = report["tuned"][name]["params"]
    report["paired"] = paired_differences(per_user, [m for m in models if m != "mostpop"])
    for name in table4_models:
        first = report["models"][name]
        by_k = {cfg.interests: first["per_seed"][0] if "per_seed" in first else first}  # Table 4: the first seed
        for k in extra_k:
            m_cfg, t_cfg = base[name]
            t_cfg = dataclasses.replace(t_cfg, seed=seeds[0], out=str(out / "runs" / f"{name}-K{k}"))
            entry = _run_one(ds, device, dataclasses.replace(m_cfg, interests=k), t_cfg, (0.0,), log)
            entry.pop("_per_user")
            by_k[k] = entry
        report["table4"][name] = {str(k): by_k[k] for k in sorted(by_k)}
    return report


def _apply_tuned(base: tuple[ModelConfig, TrainConfig], params: dict[str, Any]) -> tuple[ModelConfig, TrainConfig]:
    from .tune import apply_params

    return apply_params(base[0], base[1], params)


def _tune_one(cfg: ReproduceConfig, ds: PreparedDataset, out: Path, name: str, m_cfg: ModelConfig, t_cfg: TrainConfig, log: Log = _quiet) -> dict[str, Any]:
    """``comirec tune`` for one model, on the validation users only (the test users are evaluated
    by the final runs); a finished search in ``OUT/tune/<model>`` is reused."""
    import shutil

    from .config import TuneConfig
    from .tune import BEST_JSON, tune

    study = out / "tune" / name
    if (study / BEST_JSON).is_file():
        best = json.loads((study / BEST_JSON).read_text())
        log(f"{name}: reusing the search in {study}")
    else:
        if study.exists():  # an interrupted search
            shutil.rmtree(study)
        best = tune(m_cfg, dataclasses.replace(t_cfg, out=str(study)), TuneConfig(minutes=cfg.tune_minutes), dataset=ds, evaluate_test=False,
                    log=log)
    return {k: best[k] for k in ("params", "base_params", "valid", "trials", "trial", "study", "search_seconds")}


# Options that do not change what a run computes: a finished run with the same others is reused.
_NOT_COMPARED = ("out", "progress", "device", "threads", "resume", "nproc_per_node")


def _same_config(run: Path, m_cfg: ModelConfig, t_cfg: TrainConfig) -> bool:
    from .runs import load_run_config

    try:
        stored = load_run_config(run)
        m_old, t_old = ModelConfig.from_stored(stored["model"]), TrainConfig(**stored["train"])
    except (ValueError, TypeError, KeyError):
        return False
    def compared(t: TrainConfig) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(t).items() if k not in _NOT_COMPARED}

    return m_old.resolved() == m_cfg.resolved() and compared(t_old) == compared(t_cfg)  # readout auto = what it means


def _run_one(ds: PreparedDataset, device: Device, m_cfg: ModelConfig, t_cfg: TrainConfig, lams: tuple[float, ...], log: Log = _quiet) -> dict[str, Any]:
    """Train one model (unless the same run finished before), then evaluate it on the test users
    once: the per-user arrays (saved as ``test_per_user.npz``) give the means, their standard
    errors and the paired differences."""
    import shutil

    from .training import train
    from .runs import METRICS

    run = Path(t_cfg.out)
    fresh = False
    if not ((run / METRICS).is_file() and _same_config(run, m_cfg, t_cfg)):  # a finished run is reused
        if run.exists():
            shutil.rmtree(run)
        t0 = time.perf_counter()
        train(m_cfg, t_cfg, dataset=ds, evaluate_test=False)
        log(f"{m_cfg.model} (K={m_cfg.interests}, seed {t_cfg.seed}): trained in {time.perf_counter() - t0:.0f} s")
        fresh = True
    final = json.loads((run / METRICS).read_text())
    arrays = _load_per_user(run, lams) if not fresh else None
    if arrays is None:
        arrays = _test_per_user(run, ds, device, m_cfg.maxlen, lams)
    test = summarise(arrays)
    if "test" not in final:  # the run directory reads like one of comirec train
        final["test"] = {p: {"0.0": {k: v for k, v in by_lam["0.0"].items() if not k.endswith("_se")}} for p, by_lam in test.items()}
        (run / METRICS).write_text(json.dumps(final, indent=2) + "\n")
    return {"run": str(run), "seed": t_cfg.seed, "interests": m_cfg.interests, "steps": final["steps"], "best_step": final["best_step"],
            "stop_reason": final.get("stop_reason"), "train_seconds": final["train_seconds"],
            "train_samples_per_s": final["train_samples_per_s"], "test": test, "_per_user": arrays}


PER_USER = "test_per_user.npz"


def _key(protocol: str, lam_key: str, metric: str) -> str:
    return f"{protocol}|{lam_key}|{metric}"


def _test_per_user(run: Path, ds: PreparedDataset, device: Device, maxlen: int, lams: tuple[float, ...]) -> dict[str, Any]:
    """One pass over the test users: per-user arrays for N = 20, 50, every λ and both protocols,
    keyed ``"protocol|λ|metric"``, saved in the run directory."""
    import numpy as np

    from .evaluation import _lam_key, _per_user_batches
    from .core import check_lams
    from .interests import build_index
    from .runs import load_model

    model, _ = load_model(run, device)
    lams = check_lams(lams)
    index = build_index(model, device)
    parts: dict[str, list[Any]] = {}
    for _n, lam, p, got in _per_user_batches(model, ds, ds.users("test"), (20, 50), lams, PROTOCOLS, maxlen, 1024, device, index):
        for metric, values in got.items():
            parts.setdefault(_key(p, _lam_key(lam), metric), []).append(np.asarray(values, dtype=np.float64))
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    np.savez(run / PER_USER, **arrays)  # type: ignore[arg-type]
    return arrays


def _load_per_user(run: Path, lams: tuple[float, ...]) -> dict[str, Any] | None:
    """The saved arrays of a reused run, if they cover every λ asked for."""
    import numpy as np

    from .evaluation import _lam_key

    if not (run / PER_USER).is_file():
        return None
    with np.load(run / PER_USER) as z:
        arrays = {k: z[k] for k in z.files}
    have = {k.split("|")[1] for k in arrays}
    return arrays if {_lam_key(float(lam)) for lam in lams} <= have else None


def summarise(arrays: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """protocol -> λ -> metric -> mean over users (NaN users left out, as in evaluate_model), with
    ``"<metric>_se"``: the standard error of that mean."""
    import math

    import numpy as np

    from .evaluation import _metric_order

    out: dict[str, dict[str, dict[str, float]]] = {}
    for key in sorted(arrays, key=lambda k: (k.split("|")[0], _metric_order(k.split("|")[2]))):
        p, lam_key, metric = key.split("|")
        v = arrays[key][~np.isnan(arrays[key])]
        cell = out.setdefault(p, {}).setdefault(lam_key, {})
        cell[metric] = float(v.mean()) if len(v) else float("nan")
        cell[metric + "_se"] = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float("nan")
    return {p: {lk: out[p][lk] for lk in sorted(out[p], key=lambda x: float(x))} for p in sorted(out, key=PROTOCOLS.index)}


def _combine_seeds(entries: list[dict[str, Any]], arrays: list[dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    """Several seeds of one model: ``test`` from the per-user metrics averaged over seeds (mean and
    standard error over users), ``test_sd`` the sd over seeds of the per-seed means."""
    import numpy as np

    mean_arrays = {k: np.mean([a[k] for a in arrays], axis=0) for k in arrays[0]}
    test = summarise(mean_arrays)
    sd: dict[str, dict[str, dict[str, float]]] = {}
    for p, by_lam in test.items():
        for lk, metrics in by_lam.items():
            sd.setdefault(p, {})[lk] = {m: float(np.std([e["test"][p][lk][m] for e in entries], ddof=1))
                                        for m in metrics if not m.endswith("_se")}
    return {"seeds": seeds, "interests": entries[0]["interests"], "runs": [e["run"] for e in entries],
            "steps": [e["steps"] for e in entries], "best_step": [e["best_step"] for e in entries],
            "stop_reason": [e["stop_reason"] for e in entries], "train_seconds": [e["train_seconds"] for e in entries],
            "test": test, "test_sd": sd, "per_seed": entries}


def paired_differences(per_user: dict[str, list[dict[str, Any]]], models: list[str]) -> dict[str, Any]:
    """Recall@50 (λ = 0) of each ComiRec model minus each learned baseline, per test user and seed.
    ``mean``: over users of the difference averaged over seeds; ``se``: its standard error over
    users; ``per_seed``: the mean difference of each seed, and ``seed_sd`` their sd (None for one seed)."""
    import math

    import numpy as np

    baselines = [m for m in models if m not in COMIREC]
    ours = [m for m in models if m in COMIREC]
    if not baselines or not ours:
        return {}
    result: dict[str, Any] = {}
    for protocol in PROTOCOLS:
        key = _key(protocol, "0.0", "recall@50")
        result[protocol] = {}
        for a in ours:
            for b in baselines:
                d = np.array([sa[key] - sb[key] for sa, sb in zip(per_user[a], per_user[b])])  # (seeds, users)
                d = d[:, ~np.isnan(d).any(axis=0)]
                by_user = d.mean(axis=0)
                per_seed = d.mean(axis=1)
                result[protocol][f"{a} - {b}"] = {
                    "mean": float(by_user.mean()), "se": float(by_user.std(ddof=1) / math.sqrt(len(by_user))), "users": int(d.shape[1]),
                    "per_seed": [float(x) for x in per_seed], "seed_sd": float(per_seed.std(ddof=1)) if len(per_seed) > 1 else None,
                }
    return result


def table3(report: dict[str, Any], protocol: str) -> str:
    """One row per model; with several seeds each cell is mean ± sd over the seeds."""
    head = "| model | R@20 | N@20 | HR@20 | R@50 | N@50 | HR@50 | steps (best) |"
    lines = [head, "|" + "---|" * 8]
    for name, r in report["models"].items():
        m = r["test"][protocol]["0.0"]
        if "test_sd" in r:
            sd = r["test_sd"][protocol]["0.0"]
            cells = [f"{100 * m[k]:.3f} ± {100 * sd[k]:.3f}" for k in TABLE3_KEYS]
            steps = ", ".join(f"{a} ({b})" for a, b in zip(r["steps"], r["best_step"]))
        else:
            cells, steps = [f"{100 * m[k]:.3f}" for k in TABLE3_KEYS], f"{r['steps']} ({r['best_step']})"
        lines.append(f"| {PAPER_NAMES[name]} | " + " | ".join(cells) + f" | {steps} |")
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
    over = "the test users" if len(report.get("seeds", [0])) == 1 else "the test users (each user's Recall@50 averaged over the seeds)"
    return f"Standard error of Recall@50 over {over}, in points of % (a difference under ~2 of these is noise): " + ", ".join(parts)


def paired_note(report: dict[str, Any], protocol: str) -> str:
    diffs = report.get("paired", {}).get(protocol)
    if not diffs:
        return ""
    parts = []
    seeds = len(report.get("seeds", [0]))
    for key, d in diffs.items():
        a, b = key.split(" - ")
        text = f"{PAPER_NAMES[a]} - {PAPER_NAMES[b]}: {100 * d['mean']:+.2f} ± {100 * d['se']:.2f}"
        if d.get("seed_sd") is not None:
            text += " (per seed " + ", ".join(f"{100 * x:+.2f}" for x in d["per_seed"]) + f"; sd {100 * d['seed_sd']:.2f})"
        parts.append(text)
    if seeds == 1:
        return "Paired Recall@50 differences over the same test users, in points of % (± standard error): " + "; ".join(parts)
    return (f"Paired Recall@50 differences over the same test users and {seeds} seeds, in points of % (each user's difference averaged "
            "over the seeds; ± standard error over users): " + "; ".join(parts))


def tuned_note(report: dict[str, Any]) -> str:
    tuned = report.get("tuned") or {}
    if not tuned:
        return ""
    lines = [f"Tuned on the validation users (comirec tune, {report['config']['tune_minutes']:g} min per model); "
             "the final runs use the chosen configuration:", "",
             "| model | chosen parameters | valid Recall@50 | trials (pruned) |", "|---|---|---|---|"]
    for name, t in tuned.items():
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in t["params"].items())
        lines.append(f"| {PAPER_NAMES[name]} | {params} | {100 * t['valid']['recall@50']:.3f} | {t['trials']['total']} ({t['trials']['pruned']}) |")
    return "\n".join(lines)


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
            + (f", {budget:g} min of training in all" if budget else "") + f", batch {report['config']['batch_size']}, "
            + (f"seed {report['config']['seed']}." if len(report.get("seeds", [0])) == 1 else
               f"seeds {', '.join(map(str, report['seeds']))} (cells: mean ± sd over seeds)."))
    parts = [head, "", "Table 3 layout (λ = 0), in %", table3(report, protocol), "", stderr_note(report, protocol)]
    tuned = tuned_note(report)
    if tuned:
        parts += ["", tuned]
    paired = paired_note(report, protocol)
    if paired:
        parts += ["", paired]
    t4 = table4(report, protocol)
    if t4:
        parts += ["", "Table 4 layout (number of interests K), in %", t4]
    t5 = table5(report, protocol)
    if t5:
        parts += ["", "Table 5 layout (N = 50), in %", t5]
    return "\n".join(parts)


