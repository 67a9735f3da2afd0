"""Evaluation: interests -> top-N retrieval per interest -> aggregation (λ) -> metrics.

One retrieval at the largest N serves every N and every λ: per-interest rows come back sorted,
so the top-n of each row is a slice of the top-N. Everything per user stays in numpy arrays;
per-batch metric sums are accumulated, never per-user Python objects.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .retrieval import ItemIndex

if TYPE_CHECKING:
    from .models import InterestModel

PROTOCOLS = ("standard", "comirec")
SPLITS = ("train", "valid", "test")

#: report[protocol][lam][metric] -> value (means over users)
Report = dict[str, dict[float, dict[str, float]]]


def check_lams(lams: Sequence[float]) -> tuple[float, ...]:
    out = []
    for lam in lams:
        lam = float(lam)
        if math.isnan(lam) or lam < 0:
            raise ValueError(f"lam (λ) must be >= 0 (inf allowed), got {lam}")
        out.append(lam)
    if not out:
        raise ValueError("lam: expected at least one value")
    return tuple(dict.fromkeys(out))


def check_ns(ns: Sequence[int]) -> tuple[int, ...]:
    out = []
    for n in ns:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n (list length N) must be an integer >= 1, got {n!r}")
        out.append(int(n))
    if not out:
        raise ValueError("n: expected at least one value")
    return tuple(sorted(set(out)))


def check_protocols(protocols: Sequence[str]) -> tuple[str, ...]:
    for p in protocols:
        if p not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {p!r}")
    if not protocols:
        raise ValueError("protocol: expected at least one value")
    return tuple(dict.fromkeys(protocols))


def compute_interests(model: "InterestModel", history: np.ndarray, mask: np.ndarray, device: Any = "cpu") -> Any:
    """(b, K, d) interests of a batch, in eval mode and without gradients (a torch tensor)."""
    import torch

    with torch.inference_mode():
        h = torch.from_numpy(np.ascontiguousarray(history, dtype=np.int64)).to(device)
        m = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32)).to(device)
        return model.interests(h, m).float()


def build_index(model: "InterestModel", device: Any = "cpu", factory: str = "Flat", nprobe: int = 16,
                ef_search: int | None = None) -> ItemIndex:
    import torch

    with torch.no_grad():
        vectors = model.item_vectors().detach().float()
    return ItemIndex(vectors, factory=factory, device=str(device), nprobe=nprobe, ef_search=ef_search)


def _per_user_batches(
    model: "InterestModel",
    dataset: Any,
    users: np.ndarray,
    ns: tuple[int, ...],
    lams: tuple[float, ...],
    protocols: tuple[str, ...],
    maxlen: int,
    batch_size: int,
    device: Any,
    index: ItemIndex,
    on_users: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, float, str, dict[str, np.ndarray]]]:
    """The evaluation path, batch by batch: per batch of users, one retrieval at the largest N,
    then for each (n, λ, protocol) the per-user metric arrays, yielded as
    ``(n, λ, protocol, {metric: array})``; ``on_users(b)`` after each batch of b users. The
    model must be in eval mode."""
    import comirec
    from comirec.data import eval_batches

    cats = dataset.item_cat
    nmax = max(ns)
    for eb in eval_batches(dataset.indptr, dataset.items, users=users, maxlen=maxlen, batch_size=batch_size):
        if len(eb.users) == 0:
            continue
        cands = index.search(compute_interests(model, eb.history, eb.mask, device), nmax)
        targets = (eb.target_indptr, eb.target_items)
        for n in ns:
            sub = (cands.items[:, :, :n], cands.scores[:, :, :n])
            for lam in lams:
                recs = comirec.aggregate(sub, cats, lam=lam, n=n)
                for p in protocols:
                    per_user = comirec.metrics(recs.items, targets, cats=cats, ks=(n,), protocol=p, per_user=True)  # type: ignore[call-overload]
                    yield n, lam, p, per_user
        if on_users is not None:
            on_users(len(eb.users))


def evaluate_model(
    model: "InterestModel",
    dataset: Any,
    *,
    split: str = "test",
    ns: Sequence[int] = (20, 50),
    lams: Sequence[float] = (0.0,),
    protocols: Sequence[str] = ("standard",),
    maxlen: int = 20,
    batch_size: int = 1024,
    device: Any = "cpu",
    factory: str = "Flat",
    index: ItemIndex | None = None,
    max_users: int | None = None,
    stderr: bool = False,
    nprobe: int = 16,
    ef_search: int | None = None,
    on_users: Callable[[int], None] | None = None,
) -> Report:
    """Recall / NDCG / HitRate / Diversity @ each n in ``ns`` for each λ and protocol, averaged
    over the users of ``split``. ``max_users`` evaluates the first that many users only;
    ``on_users(b)`` hears of each batch of b users done (a progress bar).
    ``stderr=True`` adds ``"<metric>_se"``: the standard error of each mean over users.
    ``index`` (or ``factory``/``nprobe``/``ef_search`` to build one) is the retrieval.

    The paper's protocol: the recommended lists are NOT filtered of the user's history items
    (unlike :meth:`comirec.Recommender.recommend`, which excludes them by default), so that the
    numbers compare with the published ones."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    ns = check_ns(ns)
    lams = check_lams(lams)
    protocols = check_protocols(protocols)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    was_training = model.training
    model.eval()
    try:
        if index is None:
            index = build_index(model, device, factory, nprobe, ef_search)
        users = dataset.users(split)
        if max_users is not None:
            users = users[:max_users]
        if len(users) == 0:
            raise ValueError(f"split {split!r} has no users to evaluate")
        # Per (protocol, λ): metric -> [sum, users counted, sum of squares]. Users without
        # targets are NaN in the core's per-user arrays and stay out of the means, as in
        # comirec.metrics.
        sums: dict[tuple[str, float], dict[str, list[float]]] = {(p, lam): {} for p in protocols for lam in lams}
        for _n, lam, p, per_user in _per_user_batches(model, dataset, users, ns, lams, protocols, maxlen, batch_size, device, index, on_users):
            acc = sums[(p, lam)]
            for key, values in per_user.items():
                tot = acc.setdefault(key, [0.0, 0.0, 0.0])
                tot[0] += float(np.nansum(values))
                tot[1] += float(np.count_nonzero(~np.isnan(values)))
                tot[2] += float(np.nansum(np.square(values)))
    finally:
        model.train(was_training)
    report: Report = {p: {} for p in protocols}
    for (p, lam), acc in sums.items():
        out: dict[str, float] = {}
        for key, (total, m, squares) in sorted(acc.items(), key=lambda kv: _metric_order(kv[0])):
            out[key] = total / m if m else float("nan")
            if stderr:  # the sample variance over users, then the standard error of their mean
                var = max(squares / m - out[key] ** 2, 0.0) * m / (m - 1) if m > 1 else float("nan")
                out[key + "_se"] = math.sqrt(var / m) if m > 1 else float("nan")
        report[p][lam] = out
    return report


def per_user_metrics(
    model: "InterestModel",
    dataset: Any,
    *,
    split: str = "test",
    n: int = 50,
    lam: float = 0.0,
    protocol: str = "standard",
    maxlen: int = 20,
    batch_size: int = 1024,
    device: Any = "cpu",
    factory: str = "Flat",
    nprobe: int = 16,
    ef_search: int | None = None,
) -> dict[str, np.ndarray]:
    """Per-user metric arrays (one float64 per user of ``split``, in ``dataset.users(split)``
    order) through the same path as :func:`evaluate_model`: for paired comparisons of models."""
    ns, lams, protocols = check_ns([n]), check_lams([lam]), check_protocols([protocol])
    was_training = model.training
    model.eval()
    try:
        index = build_index(model, device, factory, nprobe, ef_search)
        parts: dict[str, list[np.ndarray]] = {}
        for _n, _lam, _p, got in _per_user_batches(model, dataset, dataset.users(split), ns, lams, protocols, maxlen, batch_size, device, index):
            for key, values in got.items():
                parts.setdefault(key, []).append(np.asarray(values, dtype=np.float64))
    finally:
        model.train(was_training)
    return {key: np.concatenate(v) for key, v in parts.items()}


def _metric_order(key: str) -> tuple[int, int]:
    name, _, k = key.partition("@")
    order = {"recall": 0, "ndcg": 1, "hitrate": 2, "diversity": 3}
    return (int(k) if k.isdigit() else 0, order.get(name, 9))


def format_report(report: Report, title: str = "") -> str:
    """A plain-text table: one row per (protocol, λ), metrics in % as the paper prints them."""
    lines = [title] if title else []
    for p, by_lam in report.items():
        keys = list(next(iter(by_lam.values())).keys())
        lines.append(f"protocol: {p}")
        lines.append(f"{'lam':>6} " + " ".join(f"{k:>13}" for k in keys))
        for lam, metrics in by_lam.items():
            lines.append(f"{lam:>6g} " + " ".join(f"{100 * metrics[k]:>13.3f}" for k in keys))
    return "\n".join(lines)


def report_to_json(report: Report) -> dict[str, dict[str, dict[str, float]]]:
    return {p: {_lam_key(lam): m for lam, m in by_lam.items()} for p, by_lam in report.items()}


def _lam_key(lam: float) -> str:
    return "inf" if math.isinf(lam) else repr(float(lam))


def cli_evaluate(args: Any) -> int:
    """``comirec evaluate``: a run's metrics on the valid or test users, one retrieval for all λ."""
    import json
    import sys
    from pathlib import Path

    from .config import EvalConfig, from_namespace
    from .data import load_prepared
    from .retrieval import check_factory
    from .training import check_same_items, load_model, load_run_config, resolve_device

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
        _plot_report(report, cfg, name)
    return 0


def _plot_report(report: Report, cfg: Any, name: str) -> None:
    import sys

    from .plots import PlotUnavailable, tradeoff_points, write_tradeoff_plot

    n = 50 if 50 in cfg.n else max(cfg.n)
    points = tradeoff_points(report_to_json(report)[cfg.protocol], n)
    try:
        path = write_tradeoff_plot({name: points}, cfg.plot, n=n, title=f"{name}, {cfg.split} users, protocol {cfg.protocol}")
    except PlotUnavailable as exc:
        print(f"--plot: skipped: {exc}", file=sys.stderr)
        return
    print(f"plot: {path}", file=sys.stderr)
