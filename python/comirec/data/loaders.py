"""Readers for the raw formats: each turns its files into a :class:`~comirec.data.log.RawLog`.

- ``taobao``: ``UserBehavior.csv`` (user,item,category,behavior,timestamp; no header), keeps ``pv``.
- ``amazon-books``: review records (JSON lines: reviewerID, asin, unixReviewTime) plus the
  metadata file, whose item category is the last entry of the first category path.
- ``movielens``: RecBole atomic files (``*.inter`` + ``*.item``), GroupLens ``u.data`` (+ ``u.item``),
  ``ratings.dat`` (+ ``movies.dat``) and ``ratings.csv`` (+ ``movies.csv``); the first genre is the
  category.
- ``sequences``: one user per line, ``user item item ...`` in time order (the layout of
  ``shared/data/amazon-beauty``), categories from ``<name>_item_category*.tsv``.
- ``csv`` / ``parquet``: any table; the caller names the user, item, time and category columns.

Large files are read in blocks (see ``_text``) and dictionary-encoded chunk by chunk (see ``log``).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._text import (
    BLOCK_BYTES,
    Block,
    DataFormatError,
    escape_unprintable,
    first_line,
    iter_blocks,
    locate_csv_error,
    preview,
    preview_bytes,
)
from .log import LogBuilder, RawLog

FORMATS = ("amazon-books", "taobao", "movielens", "sequences", "csv", "parquet")

TAOBAO_COLUMNS = ("user", "item", "category", "behavior", "timestamp")
# u.item's genre flags, in order, when no u.genre file sits beside it (GroupLens ml-100k README).
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
)  # fmt: skip


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
            times = _time_column(table[layout.time], builder, lambda msg: fail(block, msg))
        builder.add(
            table[layout.user], table[layout.item], times, table[layout.category] if layout.category else None
        )


def _time_column(col: Any, builder: LogBuilder, fail: Any) -> np.ndarray:
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


def _split_header(line: str, delimiter: str) -> tuple[str, ...]:
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
    return _concat(items), _concat(cats)


def _concat(arrays: list[Any]) -> Any:
    import pyarrow as pa

    return pa.concat_arrays(arrays) if arrays else pa.array([], pa.string())


# ---------------------------------------------------------------------------------------------
# Taobao


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


# ---------------------------------------------------------------------------------------------
# Amazon (reviews as JSON lines + metadata)

AMAZON_FIELDS = ("reviewerID", "asin", "unixReviewTime")


def load_amazon(path: Path, meta: Path | None, block_bytes: int = BLOCK_BYTES) -> RawLog:
    import pyarrow as pa
    import pyarrow.json as pj

    schema = pa.schema([("reviewerID", pa.string()), ("asin", pa.string()), ("unixReviewTime", pa.int64())])
    parse_options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    builder = LogBuilder(with_row_categories=False)
    for block in iter_blocks(path, block_bytes):
        try:
            table = pj.read_json(pa.BufferReader(block.data), parse_options=parse_options)
        except pa.ArrowInvalid as exc:
            raise _locate_json_error(block, str(exc)) from None
        if any(table[f].null_count for f in AMAZON_FIELDS):
            raise _locate_json_error(block, "a field is missing or null")
        builder.rows_read += table.num_rows
        builder.add_time_kind("numeric")
        times = np.asarray(table["unixReviewTime"].to_numpy(), dtype=np.int64)
        builder.add(table["reviewerID"], table["asin"], times)
    side = read_amazon_meta(meta, block_bytes) if meta is not None else None
    return builder.finish(side_categories=side, source=str(path))


def _locate_json_error(block: Block, arrow_message: str) -> DataFormatError:
    for offset, raw in enumerate(block.data.split(b"\n")):
        if not raw.strip():
            continue
        where = f"{block.path}, line {block.first_line + offset}"
        try:
            rec = json.loads(raw)
        except ValueError as exc:
            return DataFormatError(f"{where}: expected a JSON object per line ({escape_unprintable(str(exc))}): {preview_bytes(raw)}")
        if not isinstance(rec, dict):
            return DataFormatError(f"{where}: expected a JSON object, got {preview_bytes(raw)}")
        for f in AMAZON_FIELDS:
            if rec.get(f) is None:
                return DataFormatError(f"{where}: missing field {f!r} (a review needs {', '.join(AMAZON_FIELDS)})")
        if isinstance(rec["unixReviewTime"], bool) or not isinstance(rec["unixReviewTime"], int):
            return DataFormatError(
                f"{where}, field 'unixReviewTime': expected an integer unix time, got {preview(str(rec['unixReviewTime']))}"
            )
    return DataFormatError(f"{block.path}, lines from {block.first_line}: cannot parse: {preview(arrow_message)}")


def _amazon_category(rec: dict[str, Any]) -> str | None:
    """The last entry of the first category path (2014 'categories': [[...], ...]; 2018 'category': [...])."""
    paths = rec.get("categories")
    if isinstance(paths, list) and paths:
        first = paths[0]
        if isinstance(first, list) and first:
            return str(first[-1])
        if isinstance(first, str):
            return str(paths[-1])
    flat = rec.get("category")
    if isinstance(flat, list) and flat:
        return str(flat[-1])
    return None


# A quoted string (Python or JSON), a flat list of them; enough to pull the two fields we need
# out of a metadata record without parsing all of it (the records carry long descriptions and
# related-item lists: a full parse of the 2014 Python-literal format costs ~0.5 ms a line).
_STR = r"""(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
_LIST = rf"\[\s*(?:{_STR}\s*(?:,\s*{_STR}\s*)*)?\]"
_ASIN_RE = re.compile(rf"""['"]asin['"]\s*:\s*({_STR})""")
_PATHS_RE = re.compile(rf"""['"]categories['"]\s*:\s*\[\s*({_LIST})""")  # 2014: the first path
_PATH_RE = re.compile(rf"""['"]category['"]\s*:\s*({_LIST})""")  # 2018: one flat path
_STR_RE = re.compile(_STR)


def _meta_fields(line: str) -> tuple[str, str] | None:
    """(asin, category) by pattern, or None when the record needs a full parse."""
    asin = _ASIN_RE.search(line)
    path = _PATHS_RE.search(line) or _PATH_RE.search(line)
    if asin is None or path is None:
        return None
    names = _STR_RE.findall(path.group(1))
    if not names:
        return None
    return str(ast.literal_eval(asin.group(1))), str(ast.literal_eval(names[-1]))


def read_amazon_meta(path: Path, block_bytes: int = BLOCK_BYTES) -> tuple[Any, Any]:
    """(asin, category) for every metadata record with a category: the last entry of the first
    category path. Records are JSON (2018) or Python dict literals (2014); the two fields are
    read by pattern, and a record the patterns do not fit is parsed whole (json, else
    ast.literal_eval; never eval)."""
    import pyarrow as pa

    items: list[Any] = []
    cats: list[Any] = []
    for block in iter_blocks(path, block_bytes):
        asins: list[str] = []
        names: list[str] = []
        for offset, raw in enumerate(block.data.split(b"\n")):
            if b"categor" not in raw:  # no category: nothing to learn from this record
                continue
            line = raw.decode("utf-8", errors="replace")
            fields = _meta_fields(line)
            if fields is None:
                rec = _parse_record(line, block, offset, raw)
                cat = _amazon_category(rec)
                if cat is None:
                    continue
                fields = (str(rec["asin"]), cat)
            asins.append(fields[0])
            names.append(fields[1])
        items.append(pa.array(asins, pa.string()))
        cats.append(pa.array(names, pa.string()))
    return _concat(items), _concat(cats)


def _parse_record(line: str, block: Block, offset: int, raw: bytes) -> dict[str, Any]:
    """Line ``offset`` of ``block`` parsed whole: JSON, else a Python literal (never eval)."""
    try:
        rec = json.loads(line)
    except ValueError:
        try:
            rec = ast.literal_eval(line)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise DataFormatError(
                f"{block.path}, line {block.first_line + offset}: expected a JSON object or a Python dict "
                f"literal, got {preview_bytes(raw)}"
            ) from None
    if not isinstance(rec, dict) or "asin" not in rec:
        raise DataFormatError(f"{block.path}, line {block.first_line + offset}: missing field 'asin'")
    return rec


# ---------------------------------------------------------------------------------------------
# MovieLens


def _movielens_files(path: Path) -> tuple[Path, str]:
    """(ratings file, its kind) for a file or a directory holding one."""
    if path.is_dir():
        for pattern, kind in (("*.inter", "recbole"), ("u.data", "u.data"), ("ratings.dat", "dat"), ("ratings.csv", "csv")):
            found = sorted(path.glob(pattern))
            if len(found) > 1:
                raise DataFormatError(f"{path}: several {pattern} files ({', '.join(p.name for p in found)}); pass one as --input")
            if found:
                return found[0], kind
        raise DataFormatError(
            f"{path}: expected a MovieLens directory holding *.inter (RecBole), u.data, ratings.dat or ratings.csv"
        )
    if path.suffix == ".inter":
        return path, "recbole"
    if path.name == "u.data" or path.name.endswith(".data"):
        return path, "u.data"
    if path.suffix == ".dat":
        return path, "dat"
    if path.suffix == ".csv":
        return path, "csv"
    raise DataFormatError(
        f"{path}: expected a MovieLens ratings file (*.inter, u.data, ratings.dat or ratings.csv) or a directory"
    )


def load_movielens(path: Path, categories: Path | None, block_bytes: int = BLOCK_BYTES) -> tuple[RawLog, list[Path]]:
    ratings, kind = _movielens_files(path)
    if kind == "recbole":
        header = first_line(ratings).split("\t")
        names = tuple(h.split(":", 1)[0] for h in header)
        layout = CsvLayout(ratings, names, "\t", True, False, "user_id", "item_id", "timestamp", time_kind="number")
        side_default = ratings.with_suffix(".item")
    elif kind == "u.data":
        names = ("user_id", "item_id", "rating", "timestamp")
        layout = CsvLayout(ratings, names, "\t", False, False, "user_id", "item_id", "timestamp", id_kind="int", time_kind="int")
        side_default = ratings.with_name("u.item")
    elif kind == "dat":
        names = ("user_id", "item_id", "rating", "timestamp")
        layout = CsvLayout(ratings, names, "::", False, False, "user_id", "item_id", "timestamp", id_kind="int", time_kind="int")
        side_default = ratings.with_name("movies.dat")
    else:
        names = _split_header(first_line(ratings), ",")
        layout = CsvLayout(ratings, names, ",", True, True, "userId", "movieId", "timestamp", time_kind="number")
        side_default = ratings.with_name("movies.csv")
    builder = LogBuilder(with_row_categories=False)
    read_csv_log(layout, builder, block_bytes)
    side_path = categories if categories is not None else (side_default if side_default.exists() else None)
    side = _read_movielens_genres(side_path) if side_path is not None else None
    used = [ratings] + ([side_path] if side_path is not None else [])
    return builder.finish(side_categories=side, source=str(ratings)), used


def _read_movielens_genres(path: Path) -> tuple[Any, Any]:
    """(item id, first genre) from a RecBole .item, GroupLens u.item, movies.dat or movies.csv."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    def table(
        names: Sequence[str],
        delimiter: str,
        header: bool,
        quoting: bool,
        include: Sequence[str],
        encoding: str = "utf8",
        replace: bytes | None = None,
    ) -> Any:
        data = b"".join(b.data for b in iter_blocks(path))
        if replace is not None:
            data = data.replace(replace, b"\x1f")
        try:
            return pcsv.read_csv(
                pa.BufferReader(data),
                read_options=pcsv.ReadOptions(column_names=list(names), skip_rows=1 if header else 0, encoding=encoding),
                parse_options=pcsv.ParseOptions(delimiter=delimiter, quote_char='"' if quoting else False),
                convert_options=pcsv.ConvertOptions(column_types={n: pa.string() for n in include}, include_columns=list(include)),
            )
        except pa.ArrowInvalid as exc:
            raise DataFormatError(f"{path}: cannot read the genres table: {exc}") from None

    def first_token(col: Any, sep: str) -> Any:
        first = pc.list_element(pc.split_pattern(col.combine_chunks(), sep), 0)
        return pc.utf8_trim_whitespace(first)

    if path.suffix == ".item" and path.name != "u.item":  # RecBole atomic item file
        header = first_line(path).split("\t")
        names = tuple(h.split(":", 1)[0] for h in header)
        genre = next((n for n in names if n in ("class", "genre", "genres")), None)
        if "item_id" not in names or genre is None:
            raise DataFormatError(f"{path}: expected columns 'item_id' and 'class' (or 'genre'), got {', '.join(names)}")
        t = table(names, "\t", True, False, ("item_id", genre))
        items, cats = t["item_id"].combine_chunks(), first_token(t[genre], " ")
    elif path.name == "u.item":
        genres_file = path.with_name("u.genre")
        genre_names: tuple[str, ...] = ML100K_GENRES
        if genres_file.exists():
            rows = [ln.split("|")[0] for ln in genres_file.read_text(encoding="latin-1").splitlines() if ln.strip()]
            genre_names = tuple(rows)
        names = ("item_id", "title", "release", "video", "url") + tuple(f"g{i}" for i in range(len(genre_names)))
        t = table(names, "|", False, False, ("item_id",) + names[5:], encoding="latin-1")
        flags = np.stack([np.asarray(pc.equal(t[n], "1").to_numpy(zero_copy_only=False)) for n in names[5:]], axis=1)
        has = flags.any(axis=1)
        first = np.asarray(genre_names, dtype=object)[flags.argmax(axis=1)]
        items = pc.filter(t["item_id"].combine_chunks(), pa.array(has))
        cats = pa.array(first[has].tolist(), pa.string())
    elif path.suffix == ".dat":
        t = table(("item_id", "title", "genres"), "\x1f", False, False, ("item_id", "genres"), "latin-1", b"::")
        items, cats = t["item_id"].combine_chunks(), first_token(t["genres"], "|")
    else:
        t = table(("item_id", "title", "genres"), ",", True, True, ("item_id", "genres"))
        items, cats = t["item_id"].combine_chunks(), first_token(t["genres"], "|")
    valid = pc.and_(pc.is_valid(cats), pc.not_equal(cats, "(no genres listed)"))
    valid = pc.and_(valid, pc.not_equal(cats, ""))
    return pc.filter(items, valid), pc.filter(cats, valid)


# ---------------------------------------------------------------------------------------------
# one sequence per line


def sequences_files(path: Path, categories: Path | None) -> tuple[Path, Path | None]:
    """(sequences file, category table) from a file or a directory holding <name>.txt and
    <name>_item_category*.tsv."""
    if path.is_dir():
        txts = sorted(p for p in path.glob("*.txt") if p.is_file())
        with_cats = [p for p in txts if _sequence_categories(p) is not None]
        pick = with_cats if with_cats else txts
        if len(pick) != 1:
            raise DataFormatError(
                f"{path}: expected one <name>.txt with its <name>_item_category.DERIVED.tsv, found "
                f"{', '.join(p.name for p in pick) or 'no .txt file'}; pass --input FILE.txt --categories FILE.tsv"
            )
        path = pick[0]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    return path, categories if categories is not None else _sequence_categories(path)


def _sequence_categories(txt: Path) -> Path | None:
    for name in (f"{txt.stem}_item_category.DERIVED.tsv", f"{txt.stem}_item_category.tsv"):
        if (txt.parent / name).exists():
            return txt.parent / name
    return None


def load_sequences(path: Path, categories: Path | None, block_bytes: int = BLOCK_BYTES) -> RawLog:
    """``user item item ...`` per line (whitespace-separated), items in time order; the line
    order is the time order (there are no timestamps)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    builder = LogBuilder(with_row_categories=False, with_time=False)
    for block in iter_blocks(path, block_bytes):
        try:
            lines = pcsv.read_csv(
                pa.BufferReader(block.data),
                read_options=pcsv.ReadOptions(column_names=["line"]),
                parse_options=pcsv.ParseOptions(delimiter="\x1f", quote_char=False),
                convert_options=pcsv.ConvertOptions(column_types={"line": pa.string()}),
            )["line"].combine_chunks()
        except pa.ArrowInvalid as exc:
            raise _locate_sequences_error(block, str(exc)) from None
        tokens = pc.utf8_split_whitespace(lines)
        lengths = np.asarray(pc.list_value_length(tokens).to_numpy(zero_copy_only=False), dtype=np.int64)
        flat = pc.list_flatten(tokens)
        starts = np.asarray(tokens.offsets.to_numpy(), dtype=np.int64)[:-1]
        line_of_token = np.repeat(np.arange(len(lengths)), lengths)
        is_item = np.arange(len(flat)) != starts[line_of_token]  # the first token is the user
        users = pc.take(flat, pa.array(starts[line_of_token[is_item]]))
        nonempty = lengths > 0
        builder.rows_read += int(nonempty.sum())
        builder.add(users, pc.filter(flat, pa.array(is_item)))
    side = read_category_table(categories, block_bytes) if categories is not None else None
    return builder.finish(side_categories=side, source=str(path))


def _locate_sequences_error(block: Block, arrow_message: str) -> DataFormatError:
    """The first line of a block that is not text (undecodable bytes, control characters)."""
    for offset, raw in enumerate(block.data.split(b"\n")):
        raw = raw.rstrip(b"\r")
        try:
            text = raw.decode("utf-8")
            bad, what = any(ch != "\t" and not ch.isprintable() for ch in text), "control characters"
        except UnicodeDecodeError:
            bad, what = True, "bytes that are not UTF-8"
        if bad:
            return DataFormatError(
                f"{block.path}, line {block.first_line + offset}: expected text lines 'user item item ...', "
                f"got {what}: {preview_bytes(raw)}"
            )
    last = block.first_line + block.data.count(b"\n") - 1
    return DataFormatError(f"{block.path}, lines {block.first_line}-{last}: cannot parse: {preview(arrow_message)}")


# ---------------------------------------------------------------------------------------------
# generic tables


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
    names = _split_header(head, delimiter)
    if not header:
        names = tuple(str(i) for i in range(len(names)))
    if len(set(names)) != len(names):
        raise DataFormatError(f"{path}, line 1: duplicate column names in the header: {preview(head)}")
    layout = CsvLayout(path, names, delimiter, header, True, user, item, time, category)
    builder = LogBuilder(with_row_categories=category is not None, with_time=time is not None)
    read_csv_log(layout, builder, block_bytes)
    side = read_category_table(categories, block_bytes) if categories is not None and category is None else None
    return builder.finish(side_categories=side, source=str(path))


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

            times = _time_column(batch.column(time), builder, fail)
        builder.add(batch.column(user), batch.column(item), times, batch.column(category) if category else None)
        row += batch.num_rows
    side = read_category_table(categories) if categories is not None and category is None else None
    return builder.finish(side_categories=side, source=str(path))
