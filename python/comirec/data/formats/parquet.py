"""``parquet``: any Parquet table; the caller names the user, item, time and category columns."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._text import (
    DataFormatError,
)
from ..log import LogBuilder, RawLog
from ._tables import (
    time_column,
    read_category_table,
)

if TYPE_CHECKING:
    from ...config import PrepareConfig


def load_parquet(
    path: Path, user: str, item: str, time: str | None, category: str | None, categories: Path | None
) -> RawLog:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        pf = pq.ParquetFile(str(path))
    except pa.ArrowInvalid as exc:
        raise DataFormatError(f"{path}: not a Parquet file ({exc})") from None
    names = pf.schema_arrow.names
    needed = [c for c in (user, item, time, category) if c is not None]
    missing = [c for c in needed if c not in names]
    if missing:
        raise DataFormatError(
            f"{path}: missing column(s) {', '.join(map(repr, missing))}; the file has columns {', '.join(map(repr, names))}"
        )
    builder = LogBuilder(with_row_categories=category is not None, with_time=time is not None)
    row = 0
    for batch in pf.iter_batches(batch_size=1 << 20, columns=list(dict.fromkeys(needed))):
        for col in needed:
            nulls = batch.column(col).null_count
            if nulls:
                first = int(np.flatnonzero(np.asarray(batch.column(col).is_null().to_numpy(zero_copy_only=False)))[0])
                raise DataFormatError(f"{path}, row {row + first + 1}, column {col!r}: missing value")
        builder.rows_read += batch.num_rows
        times = None
        if time is not None:

            def fail(msg: str, r: int = row) -> DataFormatError:
                return DataFormatError(
                    f"{path}, column {time!r} (rows from {r + 1}): expected numeric timestamps or date-times ({msg})"
                )

            times = time_column(batch.column(time), builder, fail)
        builder.add(batch.column(user), batch.column(item), times, batch.column(category) if category else None)
        row += batch.num_rows
    side = read_category_table(categories) if categories is not None and category is None else None
    return builder.finish(side_categories=side, source=str(path))


DIRECTORY = False


def time_is_order(cfg: PrepareConfig) -> bool:
    return not cfg.time_col


def read(cfg: PrepareConfig, path: Path, categories: Path | None, block_bytes: int) -> tuple[RawLog, list[Path], str]:
    log = load_parquet(path, cfg.user_col, cfg.item_col, cfg.time_col or None, cfg.category_col, categories)
    return log, [path] + ([categories] if categories else []), path.stem
