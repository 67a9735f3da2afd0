"""``comirec prepare``: raw files -> protocol -> prepared-dataset directory (the pipeline)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import PrepareConfig
from . import formats
from .log import RawLog, reporting_rows
from .prepared import PreparedDataset, PreparedWriter, created_by, load_prepared
from .protocol import Protocol, apply_protocol, compute_stats


def read_raw(cfg: PrepareConfig) -> tuple[RawLog, list[Path], str]:
    """Run the reader ``cfg.format`` names: (log, files read, default dataset name)."""
    formats.module(cfg.format)  # an unknown format first
    if cfg.block_mb < 1:
        raise ValueError(f"block_mb: expected a positive number of MiB, got {cfg.block_mb}")
    path = Path(cfg.input)
    if not path.exists():
        raise FileNotFoundError(f"input: {path}: no such file or directory")
    cats = Path(cfg.categories) if cfg.categories else None
    if cats is not None and not cats.exists():
        raise FileNotFoundError(f"categories: {cats}: no such file")
    return formats.read(cfg, path, cats, cfg.block_mb << 20)


def prepare(cfg: PrepareConfig, on_rows: Callable[[int], None] | None = None) -> PreparedDataset:
    """Read, filter, remap, split and write; returns the written dataset (memory-mapped).
    ``on_rows(n)`` hears the number of input rows read so far, block by block."""
    started = time.perf_counter()
    protocol = Protocol(
        min_item_count=cfg.min_item_count,
        min_user_count=cfg.min_user_count,
        kcore=cfg.kcore,
        seed=cfg.seed,
        split_ratio=tuple(cfg.split_ratio),
        split_file=Path(cfg.split_file) if cfg.split_file else None,
    )
    if protocol.split_file is not None and not protocol.split_file.is_file():
        raise FileNotFoundError(f"split_file: {protocol.split_file}: no such file")
    with PreparedWriter(cfg.out, overwrite=cfg.overwrite) as writer:
        with reporting_rows(on_rows):
            log, used, default_name = read_raw(cfg)
        arrays = apply_protocol(log, protocol, source=", ".join(map(str, used)))
        del log
        for name in ("indptr", "items", "split", "item_freq", "item_cat", "user_raw", "item_raw", "cat_raw"):
            writer.save(name, getattr(arrays, name))
        stats = compute_stats(arrays.indptr, arrays.items, arrays.split, arrays.item_cat, len(arrays.cat_raw))
        stats["raw"] = arrays.info
        header: dict[str, Any] = {
            "name": cfg.name or default_name,
            "synthetic": False,
            "source": {"format": cfg.format, "paths": [str(p) for p in used]},
            "protocol": {
                "min_item_count": protocol.min_item_count,
                "min_user_count": protocol.min_user_count,
                "kcore": protocol.kcore,
                "time_order": "input order" if formats.time_is_order(cfg) else "timestamp, stable (ties keep the input order)",
                "item_ids": "1..n_items by descending frequency after filtering; ties by first appearance; 0 = padding",
                "split": (
                    {"file": str(protocol.split_file)}
                    if protocol.split_file
                    else {"seed": protocol.seed, "ratio": list(protocol.split_ratio)}
                ),
                "eval_cut": "floor(0.8 * len)",
            },
            "stats": stats,
            "created_by": created_by(),
            "seconds": round(time.perf_counter() - started, 3),
        }
        if cfg.format == "taobao":
            header["protocol"]["behaviors"] = cfg.behaviors
        writer.commit(header)
    return load_prepared(cfg.out)


