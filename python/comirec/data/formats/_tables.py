"""What the table formats share: delimited text streamed through pyarrow in blocks
(:func:`read_csv_log`, :class:`CsvLayout`), time columns, headers, and the item -> category side
tables. Large files are read in blocks (see ``data._text``) and dictionary-encoded chunk by chunk
(see ``data.log``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._text import (
    BLOCK_BYTES,
    Block,
    DataFormatError,
    first_line,
    iter_blocks,
    locate_csv_error,
    preview,
)
from ..log import LogBuilder


@dataclass(frozen=True)
class CsvLayout:
    """How to read one delimited text file."""

    path: Path
    names: tuple[str, ...]  # every column of the file, in order
    delimiter: str  # as in the file (may be "::", which is rewritten to a single byte)
    header: bool  # the first line holds column names (skipped)
    quoting: bool
    user: str
    item: str
    time: str | None  # None: the file order is the time order
    category: str | None = None
    id_kind: str = "text"  # "int": ids parse as int64 (fast); "text": any string
    time_kind: str = "time"  # "int" | "number" | "time" (numbers or ISO date-times)
    keep: tuple[str, tuple[str, ...]] | None = None  # keep rows whose column value is listed


# ---------------------------------------------------------------------------------------------
# delimited text


def _arrow_delimiter(delimiter: str) -> str:
    return "\x1f" if len(delimiter) > 1 else delimiter


def read_csv_log(layout: CsvLayout, builder: LogBuilder, block_bytes: int = BLOCK_BYTES) -> None:
    """Stream ``layout.path`` into ``builder``."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    needed = [layout.user, layout.item]
    for col in (layout.time, layout.category, layout.keep[0] if layout.keep else None):
        if col is not None and col not in needed:
            needed.append(col)
    missing = [c for c in needed if c not in layout.names]
    if missing:
        raise DataFormatError(
            f"{layout.path}: missing column(s) {', '.join(map(repr, missing))}; the file has columns "
            f"{', '.join(map(repr, layout.names))}"
        )
    id_type = pa.int64() if layout.id_kind == "int" else pa.string()
    types: dict[str, Any] = {layout.user: id_type, layout.item: id_type}
    if layout.category:
        types[layout.category] = pa.string()
    if layout.keep:
        types[layout.keep[0]] = pa.string()
    if layout.time is not None and layout.time_kind in ("int", "number"):
        types[layout.time] = pa.int64() if layout.time_kind == "int" else pa.float64()
    checks = {layout.user: "int" if layout.id_kind == "int" else "text"}
    checks[layout.item] = checks[layout.user]
    if layout.time:
        checks[layout.time] = layout.time_kind
    delim = _arrow_delimiter(layout.delimiter)
    read_options = pcsv.ReadOptions(column_names=list(layout.names), use_threads=True)
    parse_options = pcsv.ParseOptions(
        delimiter=delim, quote_char='"' if layout.quoting else False, double_quote=layout.quoting
    )
    convert_options = pcsv.ConvertOptions(
        column_types=types, include_columns=needed, strings_can_be_null=False, quoted_strings_can_be_null=False
    )
    keep_values = pa.array(list(layout.keep[1])) if layout.keep else None

    def fail(block: Block, message: str) -> DataFormatError:
        return locate_csv_error(block, layout.delimiter, layout.quoting, layout.names, checks, message)

    for block in iter_blocks(layout.path, block_bytes, skip_lines=1 if layout.header else 0):
        data = block.data if delim == layout.delimiter else block.data.replace(layout.delimiter.encode(), b"\x1f")
        try:
            table = pcsv.read_csv(
                pa.BufferReader(data),
                read_options=read_options,
                parse_options=parse_options,
                convert_options=convert_options,
            )
        except pa.ArrowInvalid as exc:
            raise fail(block, str(exc)) from None
        builder.rows_read += table.num_rows
        for col in (layout.user, layout.item, layout.time):
            if col is not None and table[col].null_count:
                raise fail(block, f"empty value in column {col!r}")
        if keep_values is not None:
            table = table.filter(pc.is_in(table[layout.keep[0]], value_set=keep_values))  # type: ignore[index]
        times = None
        if layout.time:
            times = time_column(table[layout.time], builder, lambda msg: fail(block, msg))
        builder.add(
            table[layout.user], table[layout.item], times, table[layout.category] if layout.category else None
        )


def time_column(col: Any, builder: LogBuilder, fail: Any) -> np.ndarray:
    """A time column as int64/float64 numpy; ISO date-times become int64 microseconds."""
    import pyarrow as pa

    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    t = col.type
    if pa.types.is_integer(t):
        builder.add_time_kind("numeric")
        return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.int64)
    if pa.types.is_floating(t):
        builder.add_time_kind("numeric")
        out = np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
        if not np.all(np.isfinite(out)):
            raise fail("non-finite timestamp")
        return out
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        builder.add_time_kind("date-time")
        return np.asarray(col.cast(pa.timestamp("us")).cast(pa.int64()).to_numpy(zero_copy_only=False))
    if pa.types.is_null(t):  # a block whose time values are all empty
        raise fail("empty timestamps")
    raise fail(f"timestamps parsed as {t}")


def split_header(line: str, delimiter: str) -> tuple[str, ...]:
    import csv

    if len(delimiter) == 1:
        return tuple(next(csv.reader([line], delimiter=delimiter)))
    return tuple(line.split(delimiter))


# ---------------------------------------------------------------------------------------------
# side tables: item -> category


def read_category_table(path: Path, block_bytes: int = BLOCK_BYTES) -> tuple[Any, Any]:
    """A delimited item -> category file (tab-separated if its first line has a tab, else comma):
    column 1 is the item id, the category is the remaining columns joined by '/' (so a
    (cat_top, cat_l2) pair is one category). Rows whose item is not in the data, such as a
    header line, are ignored."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    head = first_line(path)
    delimiter = "\t" if "\t" in head else ","
    n_cols = len(head.split(delimiter))
    if n_cols < 2:
        raise DataFormatError(
            f"{path}, line 1: expected an item -> category table (item id then category columns, "
            f"tab- or comma-separated), got {preview(head)}"
        )
    names = [f"c{i}" for i in range(n_cols)]
    items, cats = [], []
    for block in iter_blocks(path, block_bytes):
        try:
            t = pcsv.read_csv(
                pa.BufferReader(block.data),
                read_options=pcsv.ReadOptions(column_names=names),
                parse_options=pcsv.ParseOptions(delimiter=delimiter),
                convert_options=pcsv.ConvertOptions(column_types={n: pa.string() for n in names}),
            )
        except pa.ArrowInvalid as exc:
            raise locate_csv_error(block, delimiter, True, names, {}, str(exc)) from None
        items.append(pc.utf8_trim_whitespace(t["c0"].combine_chunks()))
        parts = [pc.utf8_trim_whitespace(t[n].combine_chunks()) for n in names[1:]]
        cats.append(parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, "/"))
    return concat_arrays(items), concat_arrays(cats)


def concat_arrays(arrays: list[Any]) -> Any:
    import pyarrow as pa

    return pa.concat_arrays(arrays) if arrays else pa.array([], pa.string())
