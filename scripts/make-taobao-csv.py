#!/usr/bin/env python3
"""Write a synthetic file in Taobao's UserBehavior.csv format (user,item,category,behavior,timestamp)
for load tests of `comirec prepare --format taobao`. SYNTHETIC: not real data.

    python scripts/make-taobao-csv.py 5000000 /tmp/UserBehavior5M.csv

Rows / 100 users (grouped, geometric-ish lengths), rows / 25 items (popularity skewed: id drawn as
n_items * u**3), 5,000 categories, behaviors pv/buy/cart/fav at 89.5/2/5.5/3 %, timestamps over
the nine days of the real file.
"""

import sys

import numpy as np


def main(n_rows: int, out: str) -> None:
    rng = np.random.default_rng(0)
    n_users, n_items, n_cats = max(n_rows // 100, 10), max(n_rows // 25, 10), 5000
    w = rng.geometric(1 / 100, n_users).astype(float)
    lengths = rng.multinomial(n_rows - n_users, w / w.sum()) + 1
    user = np.repeat(rng.permutation(np.arange(1, 3 * n_users, 3))[:n_users], lengths)
    item_ids = rng.permutation(np.arange(1, 5 * n_items))[:n_items]
    item_cat = rng.integers(1, 5_000_000, n_cats)[rng.integers(0, n_cats, n_items)]
    pick = (n_items * rng.random(n_rows) ** 3).astype(np.int64)
    items, cats = item_ids[pick], item_cat[pick]
    behavior = np.array(["pv", "buy", "cart", "fav"])[rng.choice(4, n_rows, p=[0.895, 0.02, 0.055, 0.03])]
    ts = rng.integers(1511539200, 1512316799, n_rows)
    with open(out, "w") as f:
        for a in range(0, n_rows, 1_000_000):
            b = min(a + 1_000_000, n_rows)
            cols = (user[a:b].tolist(), items[a:b].tolist(), cats[a:b].tolist(), behavior[a:b].tolist(), ts[a:b].tolist())
            f.write("".join(f"{u},{i},{c},{h},{t}\n" for u, i, c, h, t in zip(*cols)))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: make-taobao-csv.py N_ROWS OUT.csv")
    main(int(sys.argv[1]), sys.argv[2])
