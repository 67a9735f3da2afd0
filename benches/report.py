"""Turn a pytest-benchmark JSON file into the users/s table of benches/README.md.

    python benches/report.py results.json
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def main(path: str) -> None:
    data = json.load(open(path))
    groups: dict[str, dict[str, tuple[float, int, int]]] = defaultdict(dict)
    for b in data["benchmarks"]:
        info = b["extra_info"]
        groups[b["group"]][info["contender"]] = (b["stats"]["median"], info["users"], b["stats"]["rounds"])
    print("| benchmark | contender | users | median (s) | rounds | users/s | Rust speed-up |")
    print("|---|---|---|---|---|---|---|")
    for group in sorted(groups, key=lambda g: (g.split(" B=")[0], int(g.split(" B=")[1]))):
        rows = groups[group]
        rust = rows.get("rust")
        for who, (median, users, rounds) in sorted(rows.items(), key=lambda kv: kv[1][0]):
            ratio = "1" if who == "rust" else (f"{median / rust[0]:,.0f}x" if rust else "")
            print(f"| {group} | {who} | {users:,} | {median:.4g} | {rounds} | {users / median:,.0f} | {ratio} |")


if __name__ == "__main__":
    main(sys.argv[1])
