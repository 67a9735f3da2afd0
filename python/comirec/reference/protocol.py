"""The data protocol restated in plain Python dicts and lists (the specification the tests hold
the numpy implementation to; slow, for small inputs only)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Hashable, Sequence



@dataclass
class Expected:
    sequences: dict[Any, list[Any]]  # raw user -> raw items in time order (users in index order)
    item_order: list[Any]  # raw item of id 1, 2, ...
    item_freq: list[int]  # interactions of id 1, 2, ...
    item_category: list[Any]  # category name of id 1, 2, ... (None = unknown)
    category_order: list[Any]  # names in category-index order (known ones)


def reference_protocol(
    rows: Sequence[tuple[Hashable, Hashable, Any, Any]],
    min_item: int = 5,
    min_user: int = 5,
    kcore: bool = False,
    side: Sequence[tuple[Hashable, Any]] | None = None,
) -> Expected:
    """rows: (user, item, time, category or None) in input order; side: (item, category) rows."""
    users_order = list(dict.fromkeys(r[0] for r in rows))
    item_first = {i: n for n, i in enumerate(dict.fromkeys(r[1] for r in rows))}
    counts = Counter(r[1] for r in rows)
    keep_items = {i for i, c in counts.items() if c >= min_item}
    per_user = Counter(r[0] for r in rows if r[1] in keep_items)
    keep_users = {u for u, c in per_user.items() if c >= min_user}
    while kcore:
        live = [r for r in rows if r[0] in keep_users and r[1] in keep_items]
        ic = Counter(r[1] for r in live)
        new_items = {i for i, c in ic.items() if c >= min_item}
        uc = Counter(r[0] for r in live if r[1] in new_items)
        new_users = {u for u, c in uc.items() if c >= min_user}
        if new_items == keep_items and new_users == keep_users:
            break
        keep_items, keep_users = new_items, new_users
    kept = [r for r in rows if r[0] in keep_users and r[1] in keep_items]
    by_user: dict[Any, list[tuple[Any, ...]]] = {u: [] for u in users_order if u in keep_users}
    for r in kept:
        by_user[r[0]].append(r)
    sequences: dict[Any, list[Any]] = {}
    for u, evs in by_user.items():
        evs.sort(key=lambda r: r[2])  # stable: ties keep the input order
        sequences[u] = [r[1] for r in evs]
    freq = Counter(r[1] for r in kept)
    item_order = sorted(freq, key=lambda i: (-freq[i], item_first[i]))
    # Category of an item: its last row (or last side-table row).
    cat_of: dict[Any, Any] = {}
    cat_first: dict[Any, int] = {}
    source = [(r[1], r[3]) for r in rows] if side is None else list(side)
    for item, cat in source:
        if cat is None:
            continue
        cat_first.setdefault(cat, len(cat_first))
        cat_of[item] = cat
    item_category = [cat_of.get(i) for i in item_order]
    known = sorted({c for c in item_category if c is not None}, key=lambda c: cat_first[c])
    return Expected(sequences, item_order, [freq[i] for i in item_order], item_category, known)


