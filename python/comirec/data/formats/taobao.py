"""``taobao``: ``UserBehavior.csv`` (user,item,category,behavior,timestamp; no header); keeps ``pv`` by default."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .._text import (
    BLOCK_BYTES,
)
from ..log import LogBuilder, RawLog
from ._tables import (
    CsvLayout,
    read_csv_log,
)

if TYPE_CHECKING:
    from ...config import PrepareConfig

TAOBAO_COLUMNS = ("user", "item", "category", "behavior", "timestamp")


def load_taobao(path: Path, behaviors: Sequence[str] = ("pv",), block_bytes: int = BLOCK_BYTES) -> RawLog:
    keep = None if not behaviors or "all" in behaviors else ("behavior", tuple(behaviors))
    layout = CsvLayout(
        path=path,
        names=TAOBAO_COLUMNS,
        delimiter=",",
        header=False,
        quoting=False,
        user="user",
        item="item",
        time="timestamp",
        category="category",
        id_kind="int",
        time_kind="int",
        keep=keep,
    )
    builder = LogBuilder(with_row_categories=True)
    read_csv_log(layout, builder, block_bytes)
    return builder.finish(source=str(path))


DIRECTORY = False


def time_is_order(cfg: PrepareConfig) -> bool:
    return False


def read(cfg: PrepareConfig, path: Path, categories: Path | None, block_bytes: int) -> tuple[RawLog, list[Path], str]:
    behaviors = tuple(b.strip() for b in cfg.behaviors.split(",") if b.strip())
    return load_taobao(path, behaviors, block_bytes), [path], path.stem
