"""Typed facade over the native core (``comirec._core``): the only module that calls it.

Two groups: the serving kernels (:func:`aggregate`, :func:`metrics`), public; and the sampler
kernels (``csr``, ``drawable_users``, ``train_rows``, ``eval_rows``, ``recent_rows``), which
:mod:`comirec.data.sampler` wraps in its public API (``TrainSampler``, ``eval_batches``,
``recent_windows``).

Inputs are coerced here once — dtype (int32/int64 ids kept as they are, other integer widths
widened, float64 scores rounded to float32), C-contiguity, dimensionality — so the Rust side can
trust them; the values themselves (NaN scores, item ids beyond the category table, bad CSR
pointers, ``lam``, ``n``, ``ks``) are checked in Rust while it works. Every error is a
``ValueError`` or ``TypeError`` whose message starts with the argument's name, or a
``MemoryError`` (also naming it) when an output sized by an argument (``n``, ``ks``) cannot be
allocated; that is checked before allocating, so the interpreter never aborts.

The behaviour is specified by :mod:`comirec.reference` (plain Python, same results).
"""

from __future__ import annotations

import math
import numbers
import operator
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple, overload

import numpy as np
import numpy.typing as npt

from comirec import _core

__all__ = ["Candidates", "aggregate", "from_search", "metrics", "metrics_to_ranx"]

Protocol = Literal["standard", "comirec"]
#: The metric protocols (SPEC §6): ``standard``, and the authors' ``comirec``; named only here.
PROTOCOLS: tuple[str, ...] = typing.get_args(Protocol)
_INT64_MAX = np.iinfo(np.int64).max
_F32_MAX = float(np.finfo(np.float32).max)


class Candidates(NamedTuple):
    """Item ids and their scores, row-aligned.

    As input of :func:`aggregate`: ``(B, K, N)`` per-interest lists (item -1 = empty slot).
    As its output: ``items`` ``(B, n)`` int64 (-1 pad) and ``scores`` ``(B, n)`` float32 holding
    f(u, i), the item's best score over the interests (-inf pad).
    """

    items: npt.NDArray[Any]
    scores: npt.NDArray[Any]


def _asarray(x: Any, arg: str) -> npt.NDArray[Any]:
    """numpy view of array-likes: lists, numpy, and torch tensors on any device and dtype
    (detached, moved to the CPU, bfloat16/float16 upcast to float32). torch is never imported.
    A ragged nested list is a ValueError naming ``arg`` (numpy's own message names nothing)."""
    if type(x).__module__.startswith("torch") and hasattr(x, "detach"):
        t = x.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        if t.is_floating_point() and t.element_size() < 4:
            t = t.float()
        return np.asarray(t.numpy())
    try:
        return np.asarray(x)
    except ValueError:
        raise ValueError(f"{arg}: expected a rectangular array, got a ragged nested list (rows of different lengths)") from None


def _ids(x: Any, arg: str, ndim: int, what: str) -> npt.NDArray[Any]:
    """An int32 or int64 C-contiguous array of `ndim` dims (other integer dtypes widened)."""
    a = _asarray(x, arg)
    if a.ndim != ndim:
        raise ValueError(f"{arg}: expected a {ndim}-D array {what}, got shape {a.shape}")
    dt = a.dtype
    if dt == np.int64 or dt == np.int32:
        return np.ascontiguousarray(a)
    if a.size == 0 and dt.kind in "iuf":  # e.g. np.array([]) is float64
        return np.ascontiguousarray(a, dtype=np.int64)
    if dt.kind == "i" or (dt.kind == "u" and dt.itemsize < 8):
        return np.ascontiguousarray(a, dtype=np.int64)
    if dt.kind == "u":
        if int(a.max()) > _INT64_MAX:
            raise ValueError(f"{arg}: ids must fit in int64, got values up to {int(a.max())}")
        return np.ascontiguousarray(a, dtype=np.int64)
    raise TypeError(f"{arg}: expected an integer array {what}, got dtype {dt}")


def _scores(x: Any, shape: tuple[int, ...]) -> npt.NDArray[np.float32]:
    a = _asarray(x, "scores")
    if a.shape != shape:
        raise ValueError(f"scores: expected the shape of items {shape}, got {a.shape}")
    dt = a.dtype
    if dt == np.float32:
        return np.ascontiguousarray(a)
    if dt.kind != "f":
        raise TypeError(f"scores: expected a float32 array (float64 is rounded to float32), got dtype {dt}")
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.ascontiguousarray(a, dtype=np.float32)
        if dt.itemsize > 4:
            overflow = np.abs(a) > _F32_MAX  # finite float64 values that became inf
            if overflow.any():
                raise ValueError(
                    f"scores: values must fit in float32, got {a[overflow].flat[0]!r}; rescale the scores"
                )
    return out


def int_array(name: str, a: Any, dtype: Any) -> np.ndarray:
    """``a`` as a C-contiguous 1-D array of ``dtype``; integer input only, values must fit."""
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        if arr.size:
            raise TypeError(f"{name}: expected an integer array, got dtype {arr.dtype}")
        arr = arr.astype(dtype)  # an empty list arrives as float64
    if arr.dtype != dtype:
        info = np.iinfo(dtype)
        if arr.size and (arr.min() < info.min or arr.max() > info.max):
            raise ValueError(f"{name}: values do not fit {np.dtype(dtype)} (range [{arr.min()}, {arr.max()}])")
        arr = arr.astype(dtype)
    return np.ascontiguousarray(arr)


def int_at_least(name: str, value: int, minimum: int = 1) -> int:
    """``value`` as an int, if it is an integer (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    return int(value)


# -- the sampler kernels (SPEC section 2); comirec.data.sampler is their public API ---------------

_I64 = npt.NDArray[np.int64]


def csr(indptr: Any, items: Any) -> tuple[_I64, npt.NDArray[np.int32]]:
    """CSR sequences as the core takes them: int64 ``indptr`` and int32 ``items``, with the offsets
    checked (``indptr[0] == 0``, non-decreasing, ``indptr[-1] == len(items)``)."""
    ip = int_array("indptr", indptr, np.int64)
    it = int_array("items", items, np.int32)
    _core.sampler_validate_csr(ip, len(it))
    return ip, it


def drawable_users(indptr: _I64, users: Any, min_hist: int) -> _I64:
    """``[start, end, user, ...]`` of the ``users`` (in order) longer than ``min_hist``."""
    return _core.sampler_drawable_users(indptr, int_array("users", users, np.int64), min_hist)


def train_rows(items: npt.NDArray[np.int32], table: _I64, batch_size: int, maxlen: int, min_hist: int, seed: int,
               step: int, replacement: bool) -> tuple[_I64, _I64, npt.NDArray[np.float32], _I64]:
    """(users, history, mask, target) of training batch ``step``: a pure function of (seed, step)."""
    return _core.sampler_train_batch(items, table, batch_size, maxlen, min_hist, seed, step, replacement)


def eval_rows(indptr: _I64, items: npt.NDArray[np.int32], users: _I64,
              maxlen: int) -> tuple[_I64, npt.NDArray[np.float32], _I64, _I64]:
    """(history, mask, target_indptr, target_items) of ``users`` cut at ``floor(0.8 * len)``."""
    return _core.sampler_eval_batch(indptr, items, users, maxlen)


def recent_rows(indptr: _I64, items: npt.NDArray[np.int32], users: _I64,
                maxlen: int) -> tuple[_I64, npt.NDArray[np.float32]]:
    """(history, mask): the last ``maxlen`` items of each user's whole sequence (no cut)."""
    return _core.sampler_recent_rows(indptr, items, users, maxlen)


def _lam(lam: Any) -> float:
    if isinstance(lam, bool) or not isinstance(lam, numbers.Real):
        raise TypeError(f"lam: expected a real number >= 0 (float('inf') allowed), got {type(lam).__name__}")
    return float(lam)


def _positive_int(x: Any, arg: str) -> int:
    if isinstance(x, bool):
        raise TypeError(f"{arg}: expected a positive integer, got bool")
    try:
        v = operator.index(x)
    except TypeError:
        raise TypeError(f"{arg}: expected a positive integer, got {type(x).__name__}") from None
    if v <= 0 or v > _INT64_MAX:
        raise ValueError(f"{arg}: expected a positive integer, got {v}")
    return v


def check_lams(lams: Sequence[float], arg: str = "lam") -> tuple[float, ...]:
    """Several λ values, each checked as :func:`aggregate` checks one (>= 0, inf allowed), before
    any work starts; duplicates dropped, order kept. The one Python check of λ's value (the
    configs and the evaluation and serving paths call it)."""
    out = []
    for lam in lams:
        lam = float(lam)
        if math.isnan(lam) or lam < 0:
            raise ValueError(f"{arg} (λ) must be >= 0 (inf allowed), got {lam}")
        out.append(lam)
    if not out:
        raise ValueError(f"{arg}: expected at least one value")
    return tuple(dict.fromkeys(out))


def check_ns(ns: Sequence[int]) -> tuple[int, ...]:
    """Several list lengths N (integers >= 1), sorted, duplicates dropped."""
    out = []
    for n in ns:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n (list length N) must be an integer >= 1, got {n!r}")
        out.append(int(n))
    if not out:
        raise ValueError("n: expected at least one value")
    return tuple(sorted(set(out)))


def aggregate(
    cands: Candidates | tuple[npt.ArrayLike, npt.ArrayLike],
    cats: npt.ArrayLike | None = None,
    lam: float = 0.0,
    n: int = 50,
) -> Candidates:
    """Merge each user's K per-interest candidate lists into one list of ``n`` items.

    f(u, i) is item i's best score over the slots holding it (eq. 11). ``lam = 0``: the ``n``
    items of largest f, ties by smaller id. ``lam > 0``: Algorithm 2 — n times, pick the remaining
    item maximising ``f(i) + lam * #{picked k : cat(k) != cat(i)}`` (float64), ties to the larger
    f, then the smaller id; ``lam = inf`` maximises the diversity term first.

    Args:
        cands: ``Candidates(items, scores)`` or a pair; items ``(B, K, N)`` any integer dtype
            (-1 = empty slot), scores ``(B, K, N)`` float32 (float64 is rounded). Rows sorted by
            score descending (as retrieval returns them) take the fast path; any order is correct.
        cats: item id -> category (1-D integer array), needed when ``lam > 0``. Then every
            non-empty candidate is checked, whatever ``n`` and the scores: ids within the table,
            categories >= 0 (``cats[0]``, the padding id's entry, may be -1 while item 0 is no
            candidate). Not read at ``lam = 0``.
        lam: diversity factor, >= 0; ``float('inf')`` allowed.
        n: items per user (>= 1). Users with fewer distinct candidates are padded with item -1.
            The output is ``(B, n)`` as asked, so an ``n`` beyond the K·N candidates only adds
            padding; where that output cannot be allocated the call raises ``MemoryError``
            naming ``n`` before any work (n above 2**60 - 1, beyond what numpy can describe even
            for B = 0, is a ``ValueError``).

    Returns:
        ``Candidates(items (B, n) int64, scores (B, n) float32)``. A score of -0.0 comes back as
        +0.0: -0.0 and 0.0 are one score for f and for the ranking (IEEE equality), and the sign
        would otherwise depend on the order of the slots.
    """
    if isinstance(cands, (str, bytes)) or not isinstance(cands, Sequence) or len(cands) != 2:
        raise TypeError("cands: expected Candidates(items, scores) or a pair (items, scores)")
    first, second = _asarray(cands[0], "items"), _asarray(cands[1], "scores")
    if first.dtype.kind == "f" and second.dtype.kind in "iu" and first.size:
        raise TypeError(
            "cands: got (scores, items): the pair is (items, scores). faiss's index.search returns (D, I) = "
            "(scores, items); pass (I, D) reshaped to (B, K, N), or comirec.from_search(D, I, k=K)"
        )
    if first.ndim == 2 and second.ndim == 2:
        raise ValueError(
            f"items: expected a 3-D array (B, K, N) of item ids, got shape {first.shape}; for a faiss result "
            "of B*K query rows use comirec.from_search(D, I, k=K), which reshapes (B*K, N) to (B, K, N)"
        )
    items = _ids(first, "items", 3, "(B, K, N) of item ids")
    scores = _scores(second, items.shape)
    cats_arr = None if cats is None else _ids(cats, "cats", 1, "(item id -> category)")
    out_items, out_scores = _core.aggregate(items, scores, cats_arr, _lam(lam), _positive_int(n, "n"))
    return Candidates(out_items, out_scores)


def _targets(targets: Any, users: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any]]:
    """(indptr int64, items int32|int64) from a CSR pair or a list of per-user 1-D arrays."""
    if isinstance(targets, tuple):
        if len(targets) != 2:
            raise ValueError(f"targets: expected a CSR pair (indptr, items), got a tuple of {len(targets)}")
        indptr = _ids(targets[0], "targets", 1, "indptr (B + 1,)").astype(np.int64, copy=False)
        return indptr, _ids(targets[1], "targets", 1, "of target items")
    if isinstance(targets, np.ndarray) or not isinstance(targets, Sequence):
        raise TypeError("targets: expected a CSR pair (indptr, items) or a list of 1-D arrays (one per user)")
    if len(targets) != users:
        raise ValueError(f"targets: expected one target array per row of recs ({users}), got {len(targets)}")
    rows = [_target_row(t) for t in targets]
    if any(r.ndim != 1 for r in rows):
        raise ValueError("targets: expected a list of 1-D arrays of item ids")
    if any(r.dtype.kind == "u" and r.dtype.itemsize == 8 for r in rows):  # uint64 + int64 -> float64
        rows = [_ids(r, "targets", 1, "of target items") for r in rows]
    indptr = np.zeros(users + 1, dtype=np.int64)
    np.cumsum([r.size for r in rows], out=indptr[1:])
    flat = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    return indptr, _ids(flat, "targets", 1, "of target items")


def _target_row(t: Any) -> npt.NDArray[Any]:
    """One user's targets; an empty list is an empty int64 array (``np.asarray([])`` is
    float64, which would turn the concatenated targets into floats)."""
    a = _asarray(t, "targets")
    if a.size == 0 and a.dtype.kind not in "iu":
        return np.zeros(a.shape, dtype=np.int64)
    return a


def _ks(ks: Any) -> list[int]:
    if isinstance(ks, numbers.Integral) and not isinstance(ks, bool):
        return [_positive_int(ks, "ks")]
    if isinstance(ks, (str, bytes)) or not isinstance(ks, (Sequence, np.ndarray)):
        raise TypeError(f"ks: expected a sequence of positive integers, got {type(ks).__name__}")
    return [_positive_int(k, "ks") for k in ks]


@overload
def metrics(
    recs: npt.ArrayLike,
    targets: Any,
    cats: npt.ArrayLike | None = ...,
    ks: int | Sequence[int] = ...,
    protocol: Protocol = ...,
    per_user: Literal[False] = ...,
) -> dict[str, float]: ...
@overload
def metrics(
    recs: npt.ArrayLike,
    targets: Any,
    cats: npt.ArrayLike | None = ...,
    ks: int | Sequence[int] = ...,
    protocol: Protocol = ...,
    *,
    per_user: Literal[True],
) -> dict[str, npt.NDArray[np.float64]]: ...
def metrics(
    recs: npt.ArrayLike,
    targets: Any,
    cats: npt.ArrayLike | None = None,
    ks: int | Sequence[int] = (20, 50),
    protocol: Protocol = "standard",
    per_user: bool = False,
) -> dict[str, float] | dict[str, npt.NDArray[np.float64]]:
    """Recall, NDCG, HitRate (and Diversity with ``cats``) at each k in ``ks``, in one pass.

    Args:
        recs: ``(B, n)`` ranked item ids, any integer dtype; negative = empty slot (numpy, lists,
            torch tensors). Or keyed by user: ``dict[user, list]`` (ranked), a ranx ``Run`` (ranked
            by score), a pandas DataFrame with ``user`` and ``item`` columns (ranked by a ``score``
            column if any, else a ``rank`` column, else row order); the users are then the keys in
            order of first appearance (a Run's: ranx's query order; ``per_user`` arrays follow it)
            and targets are matched by key.
        targets: the ground truth, a CSR pair ``(indptr, items)`` (indptr ``(B + 1,)``) or a list
            of B 1-D arrays (``[]`` for a user without targets). Targets may repeat (they count
            once in "standard", per occurrence in "comirec"). With keyed recs also ``dict[user, list]``,
            a ranx ``Qrels`` (relevance > 0) or a DataFrame (``user``, ``item``); a user missing there
            has no targets. String ids (ranx stores ids as strings) must be decimal integers.
        cats: item id -> category, for Diversity@k (checked for the recommended items).
        ks: cut-offs, each in ``1..n``.
        protocol: ``"standard"`` (SPEC §6; ranx agrees) or ``"comirec"`` (the authors'
            evaluation code, for comparing with published numbers; see :mod:`comirec.reference`).
        per_user: return ``(B,)`` float64 arrays instead of means.

    Returns:
        ``{"recall@20": ..., "ndcg@20": ..., "hitrate@20": ..., "diversity@20": ..., ...}``.
        Users without targets get NaN for recall/ndcg/hitrate and are left out of those means;
        diversity (0 for fewer than two items) counts every user. A mean over no user is NaN.
    """
    keyed = _keyed(recs, "recs", ranked=True)
    if keyed is not None:
        recs, targets = _align(keyed, targets, ks)
    elif _keyed(targets, "targets", ranked=False) is not None:
        raise TypeError("targets: keyed targets (dict, ranx Qrels, DataFrame) need keyed recs (dict, ranx Run, DataFrame) to match users")
    recs_arr = _ids(recs, "recs", 2, "(B, n) of ranked item ids")
    users = recs_arr.shape[0]
    indptr, items = _targets(targets, users)
    cats_arr = None if cats is None else _ids(cats, "cats", 1, "(item id -> category)")
    ks_list = _ks(ks)
    if not isinstance(protocol, str):
        raise TypeError(f"protocol: expected {' or '.join(map(repr, PROTOCOLS))}, got {type(protocol).__name__}")
    if protocol not in PROTOCOLS:  # checked here: a lone surrogate cannot cross into Rust
        raise ValueError(f"protocol: expected {' or '.join(map(repr, PROTOCOLS))}, got {protocol!r}")
    table = _core.metrics(recs_arr, indptr, items, cats_arr, ks_list, protocol)
    columns = metric_columns(ks_list, with_diversity=cats_arr is not None)
    if table.shape[1] != len(columns):  # the core's layout and ours must agree, name for name
        raise RuntimeError(f"the core returned {table.shape[1]} metric columns, expected {len(columns)}: {columns}")
    if per_user:
        return {name: np.ascontiguousarray(table[:, c]) for c, name in enumerate(columns)}
    means = _means(table, indptr, columns)
    return {name: float(means[c]) for c, name in enumerate(columns)}


def metric_columns(ks: Sequence[int], with_diversity: bool) -> list[str]:
    """The names of the core's metric table columns, in its order: for each k, each of
    ``_core.METRIC_NAMES`` (diversity only with categories), as ``"name@k"``."""
    names = [m for m in _core.METRIC_NAMES if with_diversity or m != "diversity"]
    return [f"{m}@{k}" for k in ks for m in names]


def _means(table: npt.NDArray[np.float64], indptr: npt.NDArray[np.int64], columns: list[str]) -> npt.NDArray[np.float64]:
    """Column means: diversity over all users (a list has a diversity without targets), the
    others over the users with targets."""
    users = table.shape[0]
    means = np.full(table.shape[1], np.nan)
    if users == 0:
        return means
    has_targets = indptr[1:] > indptr[:-1]
    n_with = int(np.count_nonzero(has_targets))
    means[:] = table.mean(axis=0) if n_with == users else np.nan
    if 0 < n_with < users:
        means[:] = table[has_targets].mean(axis=0)
    diversity = np.array([name.startswith("diversity@") for name in columns])
    if diversity.any():
        means[diversity] = table[:, diversity].mean(axis=0)
    return means


# -- interop: faiss results, keyed inputs (dict / pandas / ranx), export to ranx -----------------


def from_search(D: Any, I: Any, k: int) -> Candidates:  # noqa: E741 (faiss's names)
    """A faiss search result as :func:`aggregate` input: ``index.search(q, N)`` on the B*K
    interest vectors (user-major: rows ``b*K .. b*K + K-1`` are user b's) returns ``(D, I)``,
    both ``(B*K, N)``; this returns ``Candidates(items=I, scores=D)`` reshaped to ``(B, K, N)``.
    Labels are kept as faiss returns them (-1 = empty slot): add your id offset if the index
    rows are not the item ids."""
    k = _positive_int(k, "k")
    dist, labels = _asarray(D, "D"), _asarray(I, "I")
    if labels.dtype.kind == "f" and dist.dtype.kind in "iu":
        raise TypeError("from_search: got (I, D): pass the scores first, as faiss returns them: from_search(D, I, k)")
    if dist.ndim != 2 or labels.shape != dist.shape:
        raise ValueError(f"D, I: expected two (B*K, N) arrays of the same shape, got {dist.shape} and {labels.shape}")
    rows, n = dist.shape
    if rows % k:
        raise ValueError(f"k: the {rows} query rows are not a whole number of users with k = {k} interests each")
    return Candidates(labels.reshape(rows // k, k, n), dist.reshape(rows // k, k, n))


def _module(x: Any, prefix: str) -> bool:
    return type(x).__module__.split(".")[0] == prefix


def _item_array(values: Any, arg: str) -> npt.NDArray[np.int64]:
    a = _asarray(list(values) if not isinstance(values, np.ndarray) else values, arg)
    if a.dtype.kind in "US" or a.dtype == object:
        try:
            return a.astype(np.int64)
        except (ValueError, TypeError):
            bad = next((v for v in a.tolist() if not str(v).lstrip("-").isdigit()), a.flat[0])
            raise TypeError(f"{arg}: item ids must be integers (strings of digits allowed, as ranx stores them), got {bad!r}") from None
    return _ids(a, arg, 1, "of item ids").astype(np.int64, copy=False)


def _keyed(x: Any, arg: str, ranked: bool) -> dict[Any, npt.NDArray[np.int64]] | None:
    """user -> item ids (ranked for recs) from a dict, a ranx Qrels/Run or a pandas DataFrame;
    None for other (array-like) inputs."""
    if _module(x, "ranx") and hasattr(x, "to_dict"):
        out = {}
        for user, docs in x.to_dict().items():
            pairs = sorted(docs.items(), key=lambda kv: -kv[1]) if ranked else [(d, r) for d, r in docs.items() if r > 0]
            out[user] = _item_array([d for d, _ in pairs], arg)
        return out
    if _module(x, "pandas") and hasattr(x, "columns"):
        cols = list(x.columns)
        if "user" not in cols or "item" not in cols:
            raise ValueError(f"{arg}: a DataFrame needs 'user' and 'item' columns, got {cols}")
        codes, users = x["user"].factorize()  # users in order of first appearance
        items = _item_array(x["item"].to_numpy(), arg)
        if ranked and "score" in cols:
            perm = np.argsort(-x["score"].to_numpy(), kind="stable")
        elif ranked and "rank" in cols:
            perm = np.argsort(x["rank"].to_numpy(), kind="stable")
        else:
            perm = np.arange(items.shape[0])
        perm = perm[np.argsort(codes[perm], kind="stable")]  # grouped by user, ranked within
        bounds = np.cumsum(np.bincount(codes, minlength=len(users)))[:-1]
        return dict(zip(users.tolist(), np.split(items[perm], bounds)))
    if isinstance(x, Mapping):
        return {user: _item_array(items, arg) for user, items in x.items()}
    return None


def _align(recs: dict[Any, npt.NDArray[np.int64]], targets: Any, ks: Any) -> tuple[npt.NDArray[np.int64], Any]:
    """(B, n) recs padded with -1 (n >= the largest k) and the targets in the same user order."""
    users = list(recs)
    try:
        width = max([len(r) for r in recs.values()] + [int(k) for k in (ks if isinstance(ks, (Sequence, np.ndarray)) else [ks])])
    except (TypeError, ValueError):
        width = max([len(r) for r in recs.values()] + [1])  # ks is checked (with its own message) later
    arr = np.full((len(users), width), -1, dtype=np.int64)
    for row, items in enumerate(recs.values()):
        arr[row, : len(items)] = items
    keyed_targets = _keyed(targets, "targets", ranked=False)
    if keyed_targets is None:
        return arr, targets
    if users and keyed_targets and not set(users) & set(keyed_targets):
        raise ValueError(f"targets: no user of recs is in targets (recs keys like {users[0]!r}, targets keys like {next(iter(keyed_targets))!r})")
    empty = np.zeros(0, dtype=np.int64)
    return arr, [keyed_targets.get(u, empty) for u in users]


def metrics_to_ranx(recs: Any, targets: Any, scores: Any = None, users: Sequence[Any] | None = None) -> tuple[Any, Any]:
    """``(ranx.Qrels, ranx.Run)`` of a ranking, for ranx's other metrics and its significance
    tests (``ranx.evaluate(qrels, run, ["map@50"])``, ``ranx.compare(qrels, [run_a, run_b])``).

    ``recs``: ``(B, n)`` ranked item ids (-1 = empty, skipped); ``targets`` as in :func:`metrics`;
    ``scores``: ``(B, n)`` run scores (default ``n - rank``, so ranx keeps the order); ``users``:
    the B query ids (default ``"0" .. "B-1"``). Users without targets are left out of both, as
    :func:`metrics` leaves them out of its means. Ids become strings, as ranx stores them."""
    try:
        import ranx
    except ImportError:
        raise ImportError("metrics_to_ranx needs ranx: pip install ranx") from None
    recs_arr = _ids(recs, "recs", 2, "(B, n) of ranked item ids")
    b, n = recs_arr.shape
    indptr, items = _targets(targets, b)
    if scores is None:
        score_arr = np.broadcast_to(np.arange(n, 0, -1, dtype=np.float64), (b, n))
    else:
        score_arr = _asarray(scores, "scores").astype(np.float64)
        if score_arr.shape != recs_arr.shape:
            raise ValueError(f"scores: expected the shape of recs {recs_arr.shape}, got {score_arr.shape}")
    keys = [str(u) for u in (range(b) if users is None else users)]
    if len(keys) != b:
        raise ValueError(f"users: expected {b} user ids (one per row of recs), got {len(keys)}")
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    for u in range(b):
        t = items[indptr[u] : indptr[u + 1]]
        if t.size == 0:
            continue
        qrels[keys[u]] = {str(i): 1 for i in t.tolist()}
        row = recs_arr[u]
        run[keys[u]] = {str(i): float(sc) for i, sc in zip(row.tolist(), score_arr[u].tolist()) if i >= 0}
    return ranx.Qrels(qrels), ranx.Run(run)
