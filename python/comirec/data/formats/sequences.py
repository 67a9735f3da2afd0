"""``sequences``: one user per line, ``user item item ...`` in time order (the layout of
``shared/data/amazon-beauty``), categories from ``<name>_item_category*.tsv``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._text import (
    BLOCK_BYTES,
    Block,
    DataFormatError,
    iter_blocks,
    preview,
    preview_bytes,
)
from ..log import LogBuilder, RawLog
from ._tables import (
    read_category_table,
)

if TYPE_CHECKING:
    from ...config import PrepareConfig


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


DIRECTORY = True


def time_is_order(cfg: PrepareConfig) -> bool:
    return True  # no timestamps: the line order is the time order


def read(cfg: PrepareConfig, path: Path, categories: Path | None, block_bytes: int) -> tuple[RawLog, list[Path], str]:
    txt, cat_file = sequences_files(path, categories)
    return load_sequences(txt, cat_file, block_bytes), [txt] + ([cat_file] if cat_file else []), txt.stem
