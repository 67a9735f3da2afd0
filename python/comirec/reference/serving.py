"""The executable specification of comirec's serving core, in plain Python (imports no ``comirec._core``).

:func:`aggregate` and :func:`metrics` here are written straight from SPEC §5-6 (and the paper's
Algorithm 2 and eqs. 11-17), one user at a time, for readability rather than speed. The Rust core
(:func:`comirec.aggregate`, :func:`comirec.metrics`) must return the same values; the property
tests in ``tests/`` check that it does. Only light input checking happens here.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np



class Candidates(NamedTuple):
    """Item ids and scores, row-aligned (the same fields as :class:`comirec.core.Candidates`,
    defined here so that the specification imports nothing of what it specifies)."""

    items: np.ndarray
    scores: np.ndarray

# --------------------------------------------------------------------------------------------
# Aggregation (SPEC §5)
# --------------------------------------------------------------------------------------------


def best_scores(items: Sequence[Sequence[int]], scores: Sequence[Sequence[float]]) -> dict[int, float]:
    """f(u, i) = the max over the candidate slots holding i of their score (eq. 11).

    ``items`` / ``scores`` are one user's K rows of N slots; slots with item < 0 are empty.
    -0.0 and 0.0 are one score: f is +0.0 then (Python's ``max`` would keep whichever came first).
    """
    f: dict[int, float] = {}
    for row_items, row_scores in zip(items, scores):
        for i, s in zip(row_items, row_scores):
            if i < 0:
                continue
            if not math.isfinite(s):
                raise ValueError(f"scores: expected finite scores for non-empty slots, got {s} for item {i}")
            f[i] = max(f.get(i, -math.inf), s)
    return {i: v + 0.0 for i, v in f.items()}


def category(cats: Sequence[int], i: int, arg: str = "items") -> int:
    """cats[i], checked; ``arg`` names the array the item came from."""
    if not 0 <= i < len(cats):
        raise ValueError(f"{arg}: item id {i} is beyond the category table `cats` of length {len(cats)}")
    if cats[i] < 0:
        raise ValueError(f"cats: item {i} has category {cats[i]}; expected categories >= 0")
    return cats[i]


def greedy(f: dict[int, float], cats: Sequence[int] | None, lam: float, n: int) -> list[int]:
    """Pick n items from the candidates ``f`` (item -> f(u, i)).

    lam = 0: the n items of largest f, ties by the smaller item id.
    lam > 0: Algorithm 2 — n times, pick the remaining item maximising
        gain(i) = f(i) + lam * #{k in S : cat(k) != cat(i)}          (float64)
    ties -> larger f -> smaller item id. #{k in S : cat(k) != cat(i)} = |S| - count_S(cat(i)).
    lam = inf: maximise the diversity term first, then the same ties.
    """
    if lam == 0:
        return sorted(f, key=lambda i: (-f[i], i))[:n]
    assert cats is not None, "cats is needed when lam > 0"
    cat = {i: category(cats, i) for i in f}
    picked: list[int] = []
    picked_per_cat: Counter[int] = Counter()
    remaining = set(f)
    while len(picked) < n and remaining:

        def key(i: int) -> tuple[float, float, int]:
            diversity = len(picked) - picked_per_cat[cat[i]]  # #{k in S : cat(k) != cat(i)}
            if math.isinf(lam):
                return (diversity, f[i], -i)
            return (f[i] + lam * diversity, f[i], -i)

        best = max(remaining, key=key)
        picked.append(best)
        picked_per_cat[cat[best]] += 1
        remaining.remove(best)
    return picked


def aggregate(
    cands: Candidates | tuple[Any, Any],
    cats: Any = None,
    lam: float = 0.0,
    n: int = 50,
) -> Candidates:
    """Reference of :func:`comirec.aggregate`: items (B, n) int64 (-1 pad), scores (B, n) float32
    holding f (-inf pad)."""
    items = np.asarray(cands[0])
    scores = np.asarray(cands[1], dtype=np.float32)  # float32 values, exactly, as Python floats
    if lam < 0 or math.isnan(lam):
        raise ValueError(f"lam: expected a number >= 0, got {lam}")
    if n <= 0:
        raise ValueError(f"n: expected a positive number of items per user, got {n}")
    cat_list = None if cats is None else np.asarray(cats).tolist()
    out_items = np.full((items.shape[0], n), -1, dtype=np.int64)
    out_scores = np.full((items.shape[0], n), -np.inf, dtype=np.float32)
    for u, (u_items, u_scores) in enumerate(zip(items.tolist(), scores.tolist())):
        f = best_scores(u_items, u_scores)
        picks = greedy(f, cat_list, lam, n)
        out_items[u, : len(picks)] = picks
        out_scores[u, : len(picks)] = [f[i] for i in picks]
    return Candidates(out_items, out_scores)


# --------------------------------------------------------------------------------------------
# Metrics (SPEC §6)
# --------------------------------------------------------------------------------------------


def discount(rank: int) -> float:
    return 1.0 / math.log2(rank + 2)


def standard(R: list[int], T: list[int]) -> tuple[float, float, float]:
    """Recall, NDCG, HitRate of the ranked list R (empty slots < 0) against targets T.

    S = set(T). Recall = |R ∩ S| / |S|, HitRate = 1[|R ∩ S| > 0],
    NDCG = sum_{r: R[r] in S} 1/log2(r+2) / sum_{j < min(|S|, |R|)} 1/log2(j+2).
    A recommendation repeated in R counts at its first rank only.
    """
    S = set(T)
    hit_ranks = [r for r, i in enumerate(R) if i >= 0 and i in S and i not in R[:r]]
    dcg = 0.0
    for r in hit_ranks:
        dcg += discount(r)
    ideal = 0.0
    for j in range(min(len(S), len(R))):
        ideal += discount(j)
    return len(hit_ranks) / len(S), dcg / ideal, float(len(hit_ranks) > 0)


def comirec_protocol(R: list[int], T: list[int]) -> tuple[float, float, float]:
    """The authors' ``evaluate_full`` (THUDM/ComiRec src/train.py), for published numbers.

    R is taken as a set; every target occurrence that is in it is a hit (repeats count);
    Recall = hits / |T|; the DCG discount is the target's position j in T; the ideal DCG is
    sum_{j < hits} 1/log2(j+2); NDCG = 0 without hits.
    """
    recommended = {i for i in R if i >= 0}
    hits = 0
    dcg = 0.0
    for j, t in enumerate(T):
        if t in recommended:
            hits += 1
            dcg += discount(j)
    ideal = 0.0
    for j in range(hits):
        ideal += discount(j)
    return hits / len(T), (dcg / ideal if hits else 0.0), float(hits > 0)


def diversity(R: list[int], cats: Sequence[int]) -> float:
    """Share of pairs a < b of the items R whose categories differ (0 for fewer than 2 items).
    Every item's category is checked, however few there are (the outcome must not depend on k)."""
    m = len(R)
    cat = [category(cats, i, "recs") for i in R]
    if m < 2:
        return 0.0
    differ = sum(a != b for a, b in itertools.combinations(cat, 2))
    return differ / (m * (m - 1) / 2)


def target_lists(targets: Any, users: int) -> list[list[int]]:
    if isinstance(targets, tuple):
        indptr, items = (np.asarray(x).tolist() for x in targets)
        return [items[indptr[u] : indptr[u + 1]] for u in range(users)]
    return [np.asarray(t).tolist() for t in targets]


def metrics(
    recs: Any,
    targets: Any,
    cats: Any = None,
    ks: Sequence[int] = (20, 50),
    protocol: str = "standard",
    per_user: bool = False,
) -> dict[str, Any]:
    """Reference of :func:`comirec.metrics` (same keys and values).

    Users without targets get NaN for recall/ndcg/hitrate and are left out of those means;
    diversity counts every user. Diversity uses the non-empty slots of R ("standard") or the
    distinct non-empty recommendations ("comirec", as the authors' code does).
    """
    rec_lists = np.asarray(recs).tolist()
    tgt = target_lists(targets, len(rec_lists))
    cat_list = None if cats is None else np.asarray(cats).tolist()
    if protocol not in ("standard", "comirec"):
        raise ValueError(f"protocol: expected 'standard' or 'comirec', got {protocol!r}")
    ks = list(dict.fromkeys(ks))  # a repeated k gives the same keys once
    values: dict[str, list[float]] = {}
    for k in ks:
        for name in ("recall", "ndcg", "hitrate") + (("diversity",) if cat_list is not None else ()):
            values[f"{name}@{k}"] = []
    for R_all, T in zip(rec_lists, tgt):
        for k in ks:
            R = R_all[:k]
            if not T:
                r, g, h = math.nan, math.nan, math.nan
            elif protocol == "standard":
                r, g, h = standard(R, T)
            else:
                r, g, h = comirec_protocol(R, T)
            values[f"recall@{k}"].append(r)
            values[f"ndcg@{k}"].append(g)
            values[f"hitrate@{k}"].append(h)
            if cat_list is not None:
                shown = [i for i in R if i >= 0]
                if protocol == "comirec":
                    shown = list(dict.fromkeys(shown))
                values[f"diversity@{k}"].append(diversity(shown, cat_list))
    if per_user:
        return {key: np.array(v, dtype=np.float64) for key, v in values.items()}
    means: dict[str, float] = {}
    for key, v in values.items():
        counted = [x for x in v if not math.isnan(x)]
        means[key] = sum(counted) / len(counted) if counted else math.nan
    return means
