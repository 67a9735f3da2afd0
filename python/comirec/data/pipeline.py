"""``comirec prepare``: raw files -> protocol -> prepared-dataset directory (the pipeline)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import PrepareConfig
from .loaders import (
    FORMATS,
    load_amazon,
    load_csv,
    load_movielens,
    load_parquet,
    load_sequences,
    load_taobao,
    sequences_files,
)
from .log import RawLog, reporting_rows
from .prepared import PreparedDataset, PreparedWriter, load_prepared
from .protocol import Protocol, apply_protocol, compute_stats


def _delimiter(text: str) -> str:
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "space": " ", "pipe": "|", "semicolon": ";"}
    d = named.get(text.lower(), text)
    if d == "" or "\n" in d or '"' in d:
        raise ValueError(f"delimiter: expected a field separator such as ',', 'tab' or '::', got {text!r}")
    return d


def read_raw(cfg: PrepareConfig) -> tuple[RawLog, list[Path], str]:
    """Run the loader ``cfg.format`` names: (log, files read, default dataset name)."""
    if cfg.format not in FORMATS:
        raise ValueError(f"format: expected one of {', '.join(FORMATS)}, got {cfg.format!r}")
    if cfg.block_mb < 1:
        raise ValueError(f"block_mb: expected a positive number of MiB, got {cfg.block_mb}")
    block = cfg.block_mb << 20
    path = Path(cfg.input)
    if not path.exists():
        raise FileNotFoundError(f"input: {path}: no such file or directory")
    cats = Path(cfg.categories) if cfg.categories else None
    if cats is not None and not cats.exists():
        raise FileNotFoundError(f"categories: {cats}: no such file")
    fmt = cfg.format
    if fmt == "csv" and path.suffix in (".parquet", ".pq"):
        fmt = "parquet"
    if fmt != "movielens" and path.is_dir() and fmt != "sequences":
        raise ValueError(f"input: expected a file for --format {cfg.format}, got the directory {path}")
    time_col = cfg.time_col or None
    if fmt == "taobao":
        behaviors = tuple(b.strip() for b in cfg.behaviors.split(",") if b.strip())
        return load_taobao(path, behaviors, block), [path], path.stem
    if fmt == "amazon-books":
        return load_amazon(path, cats, block), [path] + ([cats] if cats else []), path.name.split(".")[0]
    if fmt == "movielens":
        log, used = load_movielens(path, cats, block)
        return log, used, (path.name if path.is_dir() else used[0].stem)
    if fmt == "sequences":
        txt, cat_file = sequences_files(path, cats)
        return load_sequences(txt, cat_file, block), [txt] + ([cat_file] if cat_file else []), txt.stem
    if fmt == "parquet":
        log = load_parquet(path, cfg.user_col, cfg.item_col, time_col, cfg.category_col, cats)
        return log, [path] + ([cats] if cats else []), path.stem
    log = load_csv(
        path, cfg.user_col, cfg.item_col, time_col, cfg.category_col, cats, _delimiter(cfg.delimiter), cfg.header, block
    )
    return log, [path] + ([cats] if cats else []), path.stem


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
                "time_order": "input order" if log_time_is_order(cfg) else "timestamp, stable (ties keep the input order)",
                "item_ids": "1..n_items by descending frequency after filtering; ties by first appearance; 0 = padding",
                "split": (
                    {"file": str(protocol.split_file)}
                    if protocol.split_file
                    else {"seed": protocol.seed, "ratio": list(protocol.split_ratio)}
                ),
                "eval_cut": "floor(0.8 * len)",
            },
            "stats": stats,
            "created_by": _version(),
            "seconds": round(time.perf_counter() - started, 3),
        }
        if cfg.format == "taobao":
            header["protocol"]["behaviors"] = cfg.behaviors
        writer.commit(header)
    return load_prepared(cfg.out)


def _version() -> str:
    from .. import __version__

    return f"comirec {__version__}"


def log_time_is_order(cfg: PrepareConfig) -> bool:
    """Whether the input order is the time order (sequences; csv/parquet without a time column)."""
    return cfg.format == "sequences" or (cfg.format in ("csv", "parquet") and not cfg.time_col)
