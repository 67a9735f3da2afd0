"""``movielens``: RecBole atomic files (``*.inter`` + ``*.item``), GroupLens ``u.data`` (+ ``u.item``),
``ratings.dat`` (+ ``movies.dat``) and ``ratings.csv`` (+ ``movies.csv``); the first genre is the category."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._text import (
    BLOCK_BYTES,
    DataFormatError,
    first_line,
    iter_blocks,
)
from ..log import LogBuilder, RawLog
from ._tables import (
    CsvLayout,
    split_header,
    read_csv_log,
)

# u.item's genre flags, in order, when no u.genre file sits beside it (GroupLens ml-100k README).
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
)  # fmt: skip

if TYPE_CHECKING:
    from ...config import PrepareConfig


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
        names = split_header(first_line(ratings), ",")
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


DIRECTORY = True


def time_is_order(cfg: PrepareConfig) -> bool:
    return False


def read(cfg: PrepareConfig, path: Path, categories: Path | None, block_bytes: int) -> tuple[RawLog, list[Path], str]:
    log, used = load_movielens(path, categories, block_bytes)
    return log, used, (path.name if path.is_dir() else used[0].stem)
