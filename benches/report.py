"""Turn a pytest-benchmark JSON file into the serving-core table of benches/README.md.

    python -m pytest benches --benchmark-enable --benchmark-json=results.json -q
    python benches/report.py results.json

One row per (benchmark, contender): users per call, median wall time, users/s, the process
CPU time per user (all threads; median over calls) and the Rust core's speed-up in users/s
(contenders may time a prefix of the batch: the Python reference does), then the load average
seen while the benchmarks ran.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from typing import Any


def group_key(group: str) -> tuple[str, int]:
    name, _, size = group.rpartition(" B=")
    return name, int(size)


def main(path: str) -> None:
    data = json.load(open(path))
    groups: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    loads: list[float] = []
    others = 0
    for b in data["benchmarks"]:
        info = b["extra_info"]
        if "contender" not in info or "users" not in info:
            others += 1  # another section's benchmark (e.g. the sampler): reported there
            continue
        median = b["stats"]["median"]
        groups[b["group"].removeprefix("rust: ")][info["contender"]] = {  # the Rust contenders have their own group
            "users": info["users"],
            "median": median,
            "rounds": b["stats"]["rounds"],
            "rate": info["users"] / median,
            "cpu_us": info["cpu_s"] / info["users"] * 1e6 if "cpu_s" in info else float("nan"),
        }
        loads += [info[k] for k in ("load_before", "load_after") if k in info]
    m = data.get("machine_info", {})
    print(f"Machine: {m.get('cpu', {}).get('brand_raw', '?')}, {m.get('cpu', {}).get('count', '?')} logical CPUs, "
          f"Python {m.get('python_version', '?')}; run {data.get('datetime', '?')}")
    if loads:
        print(f"Load average (1 min) during the run: {min(loads):.2f} to {max(loads):.2f}")
    if others:
        print(f"({others} benchmarks of other sections left out)")
    print()
    print("| benchmark | contender | users | median (s) | rounds | users/s | CPU µs/user | Rust speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    for group in sorted(groups, key=group_key):
        rows = groups[group]
        rust = rows.get("rust")
        for who, r in sorted(rows.items(), key=lambda kv: -kv[1]["rate"]):
            ratio = "1" if who == "rust" else (f"{rust['rate'] / r['rate']:,.0f}x" if rust else "")
            print(
                f"| {group} | {who} | {r['users']:,} | {r['median']:.4g} | {r['rounds']} | {r['rate']:,.0f} | "
                f"{r['cpu_us']:,.3g} | {ratio} |"
            )


if __name__ == "__main__":
    main(sys.argv[1])
