"""The input formats of ``comirec prepare``: one module per format, named here once.

Each module defines ``read(cfg, path, categories, block_bytes) -> (RawLog, files read, default
dataset name)``, ``DIRECTORY`` (whether ``--input`` may be a directory) and
``time_is_order(cfg)`` (whether the input order is the time order: no timestamps). Importing
this package imports no pyarrow (the readers import it when they run).

Adding a format: its module here (shared table readers: ``_tables.py``) and its name in
``FORMATS``; the CLI's ``--format`` choices and ``comirec prepare`` follow.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...config import PrepareConfig
    from ..log import RawLog

#: format name -> its module in this package
FORMATS: dict[str, str] = {
    "amazon-books": "amazon_books",
    "taobao": "taobao",
    "movielens": "movielens",
    "sequences": "sequences",
    "csv": "csv",
    "parquet": "parquet",
}
FORMAT_NAMES: tuple[str, ...] = tuple(FORMATS)


def module(name: str) -> ModuleType:
    """The module of format ``name``; an unknown name is a ValueError listing the known ones."""
    if name not in FORMATS:
        raise ValueError(f"format: expected one of {', '.join(FORMATS)}, got {name!r}")
    return importlib.import_module(f"{__name__}.{FORMATS[name]}")


def read(cfg: PrepareConfig, path: Path, categories: Path | None, block_bytes: int) -> tuple[RawLog, list[Path], str]:
    """Run the reader ``cfg.format`` names: (log, files read, default dataset name)."""
    fmt = module(cfg.format)
    if path.is_dir() and not fmt.DIRECTORY:
        raise ValueError(f"input: expected a file for --format {cfg.format}, got the directory {path}")
    return fmt.read(cfg, path, categories, block_bytes)  # type: ignore[no-any-return]


def time_is_order(cfg: PrepareConfig) -> bool:
    """Whether the input order is the time order (the format has no timestamps, or none was named)."""
    return bool(module(cfg.format).time_is_order(cfg))
