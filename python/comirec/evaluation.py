"""Evaluation: interests -> top-N retrieval per interest -> aggregation (λ) -> metrics.

One retrieval at the largest N serves every N and every λ: per-interest rows come back sorted,
so the top-n of each row is a slice of the top-N. Everything per user stays in numpy arrays;
per-batch metric sums are accumulated, never per-user Python objects.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .core import PROTOCOLS, aggregate, check_lams, check_ns, metrics
from .interests import build_index, compute_interests
from .retrieval import ItemIndex

if TYPE_CHECKING:
    from .data.prepared import PreparedDataset
    from .device import Device
    from .models.base import InterestModel

SPLITS = ("train", "valid", "test")

#: report[protocol][lam][metric] -> value (means over users)
Report = dict[str, dict[float, dict[str, float]]]


def check_protocols(protocols: Sequence[str]) -> tuple[str, ...]:
    for p in protocols:
        if p not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {p!r}")
    if not protocols:
        raise ValueError("protocol: expected at least one value")
    return tuple(dict.fromkeys(protocols))


def _per_user_batches(
    model: "InterestModel",
    dataset: PreparedDataset,
    users: np.ndarray,
    ns: tuple[int, ...],
    lams: tuple[float, ...],
    protocols: tuple[str, ...],
    maxlen: int,
    batch_size: int,
    device: Device,
    index: ItemIndex,
    on_users: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, float, str, dict[str, np.ndarray]]]:
    """The evaluation path, batch by batch: per batch of users, one retrieval at the largest N,
    then for each (n, λ, protocol) the per-user metric arrays, yielded as
    ``(n, λ, protocol, {metric: array})``; ``on_users(b)`` after each batch of b users. The
    model must be in eval mode."""
    from .data import eval_batches

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
                recs = aggregate(sub, cats, lam=lam, n=n)
                for p in protocols:
                    per_user = metrics(recs.items, targets, cats=cats, ks=(n,), protocol=p, per_user=True)  # type: ignore[call-overload]
                    yield n, lam, p, per_user
        if on_users is not None:
            on_users(len(eb.users))


def evaluate_model(
    model: "InterestModel",
    dataset: PreparedDataset,
    *,
    split: str = "test",
    ns: Sequence[int] = (20, 50),
    lams: Sequence[float] = (0.0,),
    protocols: Sequence[str] = ("standard",),
    maxlen: int = 20,
    batch_size: int = 1024,
    device: Device = "cpu",
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
    dataset: PreparedDataset,
    *,
    split: str = "test",
    n: int = 50,
    lam: float = 0.0,
    protocol: str = "standard",
    maxlen: int = 20,
    batch_size: int = 1024,
    device: Device = "cpu",
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
        for lam, values in by_lam.items():
            lines.append(f"{lam:>6g} " + " ".join(f"{100 * values[k]:>13.3f}" for k in keys))
    return "\n".join(lines)


def report_to_json(report: Report) -> dict[str, dict[str, dict[str, float]]]:
    return {p: {_lam_key(lam): m for lam, m in by_lam.items()} for p, by_lam in report.items()}


def _lam_key(lam: float) -> str:
    return "inf" if math.isinf(lam) else repr(float(lam))


