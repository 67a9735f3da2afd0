"""``csv``: any delimited table; the caller names the user, item, time and category columns."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .._text import (
    BLOCK_BYTES,
    DataFormatError,
    first_line,
    preview,
)
from ..log import LogBuilder, RawLog
from ._tables import (
    CsvLayout,
    split_header,
    read_category_table,
    read_csv_log,
)

if TYPE_CHECKING:
    from ...config import PrepareConfig


def load_csv(
    path: Path,
    user: str,
    item: str,
    time: str | None,
    category: str | None,
    categories: Path | None,
    delimiter: str = ",",
    header: bool = True,
    block_bytes: int = BLOCK_BYTES,
) -> RawLog:
    """A delimited file with caller-named columns (with ``header=False`` the columns are named
    by their 0-based position: "0", "1", ...). ``time=None`` keeps the file order."""
    head = first_line(path)
    names = split_header(head, delimiter)
    if not header:
        names = tuple(str(i) for i in range(len(names)))
    if len(set(names)) != len(names):
        raise DataFormatError(f"{path}, line 1: duplicate column names in the header: {preview(head)}")
    layout = CsvLayout(path, names, delimiter, header, True, user, item, time, category)
    builder = LogBuilder(with_row_categories=category is not None, with_time=time is not None)
    read_csv_log(layout, builder, block_bytes)
    side = read_category_table(categories, block_bytes) if categories is not None and category is None else None
    return builder.finish(side_categories=side, source=str(path))


def _delimiter(text: str) -> str:
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "space": " ", "pipe": "|", "semicolon": ";"}
    d = named.get(text.lower(), text)
    if d == "" or "\n" in d or '"' in d:
        raise ValueError(f"delimiter: expected a field separator such as ',', 'tab' or '::', got {text!r}")
    return d


DIRECTORY = False


def time_is_order(cfg: PrepareConfig) -> bool:
    return not cfg.time_col


def read(cfg: PrepareConfig, path: Path, categories: Path | None, block_bytes: int) -> tuple[RawLog, list[Path], str]:
    if path.suffix in (".parquet", ".pq"):  # --format csv on a Parquet file reads it as Parquet
        from . import parquet

        return parquet.read(cfg, path, categories, block_bytes)
    log = load_csv(path, cfg.user_col, cfg.item_col, cfg.time_col or None, cfg.category_col, categories, _delimiter(cfg.delimiter),
                   cfg.header, block_bytes)
    return log, [path] + ([categories] if categories else []), path.stem
