"""``amazon-books``: review records (JSON lines: reviewerID, asin, unixReviewTime) plus the metadata
file, whose item category is the last entry of the first category path."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._text import (
    BLOCK_BYTES,
    Block,
    DataFormatError,
    escape_unprintable,
    iter_blocks,
    preview,
    preview_bytes,
)
from ..log import LogBuilder, RawLog
from ._tables import (
    concat_arrays,
)

if TYPE_CHECKING:
    from ...config import PrepareConfig

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
    return concat_arrays(items), concat_arrays(cats)


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


# A quoted string (Python or JSON), a flat list of them; enough to pull the two fields we need
# out of a metadata record without parsing all of it (the records carry long descriptions and
# related-item lists: a full parse of the 2014 Python-literal format costs ~0.5 ms a line).
_STR = r"""(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""


_LIST = rf"\[\s*(?:{_STR}\s*(?:,\s*{_STR}\s*)*)?\]"


_ASIN_RE = re.compile(rf"""['"]asin['"]\s*:\s*({_STR})""")


_PATHS_RE = re.compile(rf"""['"]categories['"]\s*:\s*\[\s*({_LIST})""")  # 2014: the first path


_PATH_RE = re.compile(rf"""['"]category['"]\s*:\s*({_LIST})""")  # 2018: one flat path


_STR_RE = re.compile(_STR)


DIRECTORY = False


def time_is_order(cfg: PrepareConfig) -> bool:
    return False


def read(cfg: PrepareConfig, path: Path, categories: Path | None, block_bytes: int) -> tuple[RawLog, list[Path], str]:
    return load_amazon(path, categories, block_bytes), [path] + ([categories] if categories else []), path.name.split(".")[0]
