"""``comirec synth``: a SYNTHETIC prepared dataset with planted multi-category interests.

The generative story, all vectorised over blocks of users (so 10M users x 1M items streams in
bounded memory, written block by block to the output file):

- Categories have power-law sizes and popularity (``category_skew``); each holds a contiguous
  range of items whose popularity within the category is a power law (``item_skew``).
- Each user has a few latent interests (categories drawn by popularity) with Dirichlet(1)
  weights, and a sequence length (``min_length`` + geometric, mean ``mean_length``, capped).
- Events are sessions of interests: an event keeps the previous event's interest with
  probability ``stickiness``, else draws one by weight; its item comes from that category.

Items are then remapped to 1..n by descending frequency and users split 8:1:1, exactly like a
prepared real dataset, and the header says ``"synthetic": true``. The data depend only on the
options and the seed (random streams are keyed by fixed blocks of users).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from ..config import SynthConfig
from .prepared import PreparedDataset, PreparedWriter, created_by, load_prepared
from .protocol import Protocol, compute_stats, draw_split

USER_BLOCK = 1 << 16  # users per random stream: the unit of streaming and of determinism
SYNTHETIC_NOTE = "SYNTHETIC data from `comirec synth`: for tests and scale benchmarks; never report accuracy on it as real"


def _validate(cfg: SynthConfig) -> None:
    checks = [
        ("users", cfg.users >= 1, "an integer >= 1"),
        ("items", cfg.items >= 1, "an integer >= 1"),
        ("categories", 1 <= cfg.categories <= cfg.items, f"an integer in [1, items = {cfg.items}]"),
        (
            "interests_per_user",
            len(cfg.interests_per_user) in (1, 2)
            and 1 <= cfg.interests_per_user[0] <= cfg.interests_per_user[-1] <= 64,
            "MIN[,MAX] with 1 <= MIN <= MAX <= 64",
        ),
        ("min_length", cfg.min_length >= 1, "an integer >= 1"),
        ("mean_length", cfg.mean_length >= cfg.min_length, f"a number >= min_length = {cfg.min_length}"),
        ("max_length", cfg.max_length >= cfg.min_length, f"an integer >= min_length = {cfg.min_length}"),
        ("stickiness", 0.0 <= cfg.stickiness <= 1.0, "a probability in [0, 1]"),
        ("item_skew", cfg.item_skew >= 0, "a number >= 0"),
        ("category_skew", cfg.category_skew >= 0, "a number >= 0"),
        ("seed", cfg.seed >= 0, "an integer >= 0"),
    ]
    for name, ok, what in checks:
        if not ok:
            raise ValueError(f"{name}: expected {what}, got {getattr(cfg, name)!r}")
    Protocol(split_ratio=tuple(cfg.split_ratio))  # validates the ratio


def power_law_index(n: np.ndarray, skew: float, u: np.ndarray) -> np.ndarray:
    """Index in [0, n) with P(i) roughly proportional to (i + 1)^-skew (inverse CDF of the
    continuous law on [1, n + 1)); skew 0 is uniform."""
    n1 = n.astype(np.float64) + 1.0
    if abs(skew - 1.0) < 1e-9:
        x = np.power(n1, u)
    else:
        e = 1.0 - skew
        x = np.power(np.power(n1, e) * u + (1.0 - u), 1.0 / e)
    index: np.ndarray = np.minimum(np.floor(x - 1.0).astype(np.int64), n.astype(np.int64) - 1)
    return index


def synthesize(cfg: SynthConfig) -> PreparedDataset:
    """Generate and write the dataset described by ``cfg``; returns it memory-mapped."""
    _validate(cfg)
    started = time.perf_counter()
    n_users, n_items, n_cats = cfg.users, cfg.items, cfg.categories
    kmin, kmax = cfg.interests_per_user[0], cfg.interests_per_user[-1]
    kmax = min(kmax, n_cats)
    kmin = min(kmin, kmax)

    rng = np.random.default_rng([cfg.seed, 0])
    cat_p = np.power(np.arange(1, n_cats + 1, dtype=np.float64), -cfg.category_skew)
    cat_p /= cat_p.sum()
    sizes = 1 + rng.multinomial(n_items - n_cats, cat_p)
    cat_start = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    item_cat_prov = np.repeat(np.arange(n_cats, dtype=np.int32), sizes)

    blocks = range(0, n_users, USER_BLOCK)
    lengths = np.empty(n_users, np.int64)
    p = 1.0 / (cfg.mean_length - cfg.min_length + 1.0)
    for b, a in enumerate(blocks):
        n = min(USER_BLOCK, n_users - a)
        draw = np.random.default_rng([cfg.seed, 1, b]).geometric(p, n)
        lengths[a : a + n] = np.minimum(cfg.min_length - 1 + draw, cfg.max_length)
    indptr = np.zeros(n_users + 1, np.int64)
    np.cumsum(lengths, out=indptr[1:])
    total = int(indptr[-1])
    if total >= 2**31:
        raise ValueError(f"users * mean_length: {total} interactions exceed the int32 CSR limit (2**31 - 1)")

    with PreparedWriter(cfg.out, overwrite=cfg.overwrite) as writer:
        counts = np.zeros(n_items, np.int64)
        with writer.write_stream("items", np.int32, total) as items_out:
            for b, a in enumerate(blocks):
                n = min(USER_BLOCK, n_users - a)
                chunk = _user_block(
                    np.random.default_rng([cfg.seed, 2, b]), lengths[a : a + n], kmin, kmax, cat_p, cfg, sizes, cat_start
                )
                items_out.append(chunk)
                counts += np.bincount(chunk, minlength=n_items)
            # Remap to 1..n_items by descending frequency (ties: provisional id), in place.
            order = np.argsort(-counts, kind="stable")
            new_id = np.empty(n_items, np.int32)
            new_id[order] = np.arange(1, n_items + 1, dtype=np.int32)
            items_out.transform(lambda x: new_id[x])
        items = np.load(writer.path("items"), mmap_mode="r")  # read-only: reads cannot SIGBUS on a full disk
        split = draw_split(n_users, cfg.seed, tuple(cfg.split_ratio))
        item_cat = np.concatenate([[-1], item_cat_prov[order]]).astype(np.int32)
        writer.save("indptr", indptr)
        writer.save("split", split)
        writer.save("item_freq", np.concatenate([[0], counts[order]]).astype(np.int64))
        writer.save("item_cat", item_cat)
        writer.save("user_raw", np.arange(n_users, dtype=np.int64))
        writer.save("item_raw", np.concatenate([[-1], order]).astype(np.int64))
        writer.save("cat_raw", np.arange(n_cats, dtype=np.int64))
        stats = compute_stats(indptr, items, split, item_cat, n_cats)
        del items
        generator: dict[str, Any] = {
            k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("out", "overwrite", "name")
        }
        writer.commit(
            {
                "name": cfg.name,
                "synthetic": True,
                "note": SYNTHETIC_NOTE,
                "source": {"format": "synthetic", "generator": generator},
                "protocol": {
                    "item_ids": "1..n_items by descending frequency; ties by provisional id; 0 = padding",
                    "split": {"seed": cfg.seed, "ratio": list(cfg.split_ratio)},
                    "eval_cut": "floor(0.8 * len)",
                },
                "stats": stats,
                "created_by": created_by(),
                "seconds": round(time.perf_counter() - started, 3),
            }
        )
    return load_prepared(cfg.out)


def _user_block(
    rng: np.random.Generator,
    lengths: np.ndarray,
    kmin: int,
    kmax: int,
    cat_p: np.ndarray,
    cfg: SynthConfig,
    sizes: np.ndarray,
    cat_start: np.ndarray,
) -> np.ndarray:
    """Provisional item ids (0-based) of one block of users, concatenated."""
    n = len(lengths)
    n_cats = len(cat_p)
    k = rng.integers(kmin, kmax + 1, n)
    interests = rng.choice(n_cats, size=(n, kmax), p=cat_p)
    for j in range(1, kmax):  # redraw repeats a few times; tiny catalogues may keep some
        for _ in range(8):
            dup = (interests[:, j : j + 1] == interests[:, :j]).any(axis=1)
            if not dup.any():
                break
            interests[dup, j] = rng.choice(n_cats, size=int(dup.sum()), p=cat_p)
    weights = rng.gamma(1.0, size=(n, kmax))
    weights[np.arange(kmax)[None, :] >= k[:, None]] = 0.0
    cumw = np.cumsum(weights, axis=1)
    cumw /= cumw[:, -1:]

    total = int(lengths.sum())
    user_of = np.repeat(np.arange(n), lengths)
    first = np.zeros(total, dtype=bool)
    first[np.concatenate([[0], np.cumsum(lengths)[:-1]])] = True
    switch = first | (rng.random(total) >= cfg.stickiness)
    at = np.flatnonzero(switch)
    u = rng.random(len(at))
    slot_at = np.minimum((cumw[user_of[at]] < u[:, None]).sum(axis=1), k[user_of[at]] - 1)
    # Every event takes the slot chosen at the latest switch (the user's first event switches).
    slot = np.zeros(total, np.int64)
    slot[at] = slot_at
    latest = np.maximum.accumulate(np.where(switch, np.arange(total), 0))
    cat = interests[user_of, slot[latest]]
    within = power_law_index(sizes[cat], cfg.item_skew, rng.random(total))
    items: np.ndarray = (cat_start[cat] + within).astype(np.int32)
    return items


