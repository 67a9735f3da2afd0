"""Typed facade over the native serving core (``comirec._core``).

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

import numbers
import operator
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple, overload

import numpy as np
import numpy.typing as npt

from comirec import _core

__all__ = ["Candidates", "aggregate", "metrics"]

Protocol = Literal["standard", "comirec"]
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


def _ids(x: Any, arg: str, ndim: int, what: str) -> npt.NDArray[Any]:
    """An int32 or int64 C-contiguous array of `ndim` dims (other integer dtypes widened)."""
    a = np.asarray(x)
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
    a = np.asarray(x)
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
    items = _ids(cands[0], "items", 3, "(B, K, N) of item ids")
    scores = _scores(cands[1], items.shape)
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
    a = np.asarray(t)
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
        recs: ``(B, n)`` ranked item ids, any integer dtype; negative = empty slot.
        targets: the ground truth, a CSR pair ``(indptr, items)`` (indptr ``(B + 1,)``) or a list
            of B 1-D arrays (``[]`` for a user without targets). Targets may repeat (they count
            once in "standard", per occurrence in "comirec").
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
    recs_arr = _ids(recs, "recs", 2, "(B, n) of ranked item ids")
    users = recs_arr.shape[0]
    indptr, items = _targets(targets, users)
    cats_arr = None if cats is None else _ids(cats, "cats", 1, "(item id -> category)")
    ks_list = _ks(ks)
    if not isinstance(protocol, str):
        raise TypeError(f"protocol: expected 'standard' or 'comirec', got {type(protocol).__name__}")
    table = _core.metrics(recs_arr, indptr, items, cats_arr, ks_list, protocol)
    names = _core.METRIC_NAMES[: 4 if cats_arr is not None else 3]
    width = len(names)
    if per_user:
        return {
            f"{name}@{k}": np.ascontiguousarray(table[:, i * width + j])
            for i, k in enumerate(ks_list)
            for j, name in enumerate(names)
        }
    means = _means(table, indptr, width)
    return {f"{name}@{k}": float(means[i * width + j]) for i, k in enumerate(ks_list) for j, name in enumerate(names)}


def _means(table: npt.NDArray[np.float64], indptr: npt.NDArray[np.int64], width: int) -> npt.NDArray[np.float64]:
    """Column means; recall/ndcg/hitrate over users with targets, diversity over all users."""
    users = table.shape[0]
    means = np.full(table.shape[1], np.nan)
    if users == 0:
        return means
    has_targets = indptr[1:] > indptr[:-1]
    n_with = int(np.count_nonzero(has_targets))
    means[:] = table.mean(axis=0) if n_with == users else np.nan
    if 0 < n_with < users:
        means[:] = table[has_targets].mean(axis=0)
    if width == 4:
        means[3::4] = table[:, 3::4].mean(axis=0)
    return means
