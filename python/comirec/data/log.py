"""An interaction log as compact numpy columns, built chunk by chunk.

Loaders feed chunks of (user, item, time[, category]) columns as pyarrow arrays. Raw ids are
dictionary-encoded per chunk (C++), and the chunk dictionaries are merged once at the end, so
the log holds int32 codes plus one array of distinct raw ids per column: no Python object per
row or per user, and codes number the raw ids in order of first appearance in the input.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._text import DataFormatError

_INT_TEXT = r"^-?(0|[1-9][0-9]{0,17})$"  # canonical integers that fit int64 (18 digits max)

# Who hears of the rows read (comirec prepare's progress bar), without threading a callback
# through every loader: a builder made inside ``reporting_rows(f)`` calls ``f(rows read so far)``.
_ON_ROWS: ContextVar[Callable[[int], None] | None] = ContextVar("comirec_on_rows", default=None)


@contextlib.contextmanager
def reporting_rows(on_rows: Callable[[int], None] | None) -> Iterator[None]:
    token = _ON_ROWS.set(on_rows)
    try:
        yield
    finally:
        _ON_ROWS.reset(token)


def raw_ids_to_numpy(values: Any) -> np.ndarray:
    """Distinct raw ids as numpy: int64 when every id is an integer (written canonically), else str."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_integer(values.type):
        return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.int64)
    if pa.types.is_floating(values.type):
        values = pc.cast(values, pa.string())
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = pc.cast(values, pa.string())
    if len(values) and pc.all(pc.match_substring_regex(values, _INT_TEXT)).as_py():
        return np.asarray(pc.cast(values, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
    out = np.asarray(values.to_numpy(zero_copy_only=False), dtype=str)
    if out.dtype.itemsize == 0:  # all empty strings: keep a usable width
        out = out.astype("<U1")
    return out


_EMPTY = np.zeros(0, np.int32)


@functools.cache
def _malloc_trim() -> Any:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to do
        return None


def release_memory() -> None:
    """Hand freed heap memory back to the OS. Loading frees many block-sized buffers between
    long-lived arrays; glibc keeps such holes mapped, which at Taobao scale was over 1 GB of
    resident memory that no array used. Harmless: only free memory is released."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


class _Encoder:
    """Dictionary-encodes one column chunk by chunk, numbering values by first appearance.

    Each chunk is encoded on its own (C++), then the chunk dictionaries are merged into one
    running dictionary whenever they add up to more than it holds. The running dictionary only
    ever grows at its end, so codes already assigned stay valid: memory stays near one code per
    row plus the distinct values, even when every chunk repeats most of the values (items).
    """

    MERGE_MIN = 1 << 22  # merge once pending dictionaries exceed max(this, the running one)

    def __init__(self) -> None:
        self._codes: list[np.ndarray] = []  # per chunk: codes into _base, or local codes if pending
        self._pending: list[Any] = []  # dictionaries of the last len(_pending) chunks
        self._pending_len = 0
        self._base: Any = None  # distinct values merged so far, in first-appearance order

    def add(self, values: Any) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if pa.types.is_dictionary(values.type):
            values = values.dictionary_decode()
        enc = pc.dictionary_encode(values)
        # Copy into numpy-owned memory: arrow buffers go back to arrow's allocator, which keeps
        # them for the next block instead of holding every block's codes.
        self._codes.append(np.array(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int32, copy=True))
        self._pending.append(enc.dictionary)
        self._pending_len += len(enc.dictionary)
        if self._pending_len > max(len(self._base) if self._base is not None else 0, self.MERGE_MIN):
            self._merge()

    def _merge(self) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        if not self._pending:
            return
        parts = ([self._base] if self._base is not None else []) + self._pending
        if len({p.type for p in parts}) > 1:  # e.g. one chunk inferred int64, another string
            parts = [pc.cast(p, pa.string()) for p in parts]
        merged = pc.dictionary_encode(pa.concat_arrays(parts))
        lut = np.asarray(merged.indices.to_numpy(zero_copy_only=False), dtype=np.int32)
        offset = len(self._base) if self._base is not None else 0
        first = len(self._codes) - len(self._pending)
        for j, d in enumerate(self._pending):
            codes = self._codes[first + j]
            codes[:] = lut[offset + codes]
            offset += len(d)
        self._base = merged.dictionary
        self._pending = []
        self._pending_len = 0

    def finish(self) -> tuple[np.ndarray, Any]:
        """(codes int32 for all rows, distinct values as a pyarrow array, in first-appearance order)."""
        import pyarrow as pa

        self._merge()
        # Concatenate chunk by chunk, releasing each: peak = total + one chunk.
        codes = np.empty(sum(len(c) for c in self._codes), np.int32)
        row = 0
        for i, c in enumerate(self._codes):
            codes[row : row + len(c)] = c
            row += len(c)
            self._codes[i] = _EMPTY
            if i % 16 == 15:
                release_memory()
        self._codes = []
        base = self._base if self._base is not None else pa.array([], pa.string())
        self._base = None
        return codes, base


@dataclass
class RawLog:
    """Interactions before the protocol: codes number raw ids by first appearance."""

    user: np.ndarray  # int32 (n,)
    item: np.ndarray  # int32 (n,)
    time: np.ndarray | None  # int32/int64/float64 (n,), or None: the input order is the time order
    user_raw: np.ndarray  # (n_user_codes,) int64 or str
    item_raw: np.ndarray  # (n_item_codes,)
    item_cat: np.ndarray  # int32 (n_item_codes,), -1 = no category known
    cat_raw: np.ndarray  # (n_cat_codes,)
    info: dict[str, Any] = field(default_factory=dict)  # counts the loader saw (rows read, kept...)


class LogBuilder:
    """Accumulates chunks; ``finish`` returns a :class:`RawLog`."""

    def __init__(self, with_row_categories: bool, with_time: bool = True) -> None:
        self._users = _Encoder()
        self._items = _Encoder()
        self._cats = _Encoder() if with_row_categories else None
        self._times: list[np.ndarray] | None = [] if with_time else None
        self.rows_read = 0
        self.rows_kept = 0
        self._on_rows = _ON_ROWS.get()
        self._time_kinds: set[str] = set()
        self._chunks = 0

    def add(self, users: Any, items: Any, times: np.ndarray | None = None, cats: Any = None) -> None:
        self._users.add(users)
        self._items.add(items)
        if self._cats is not None:
            self._cats.add(cats)
        if self._times is not None:
            assert times is not None
            self._times.append(_compact_time(times))
        self.rows_kept += len(users)
        self._chunks += 1
        if self._on_rows is not None:
            self._on_rows(self.rows_read)
        if self._chunks % 8 == 0:
            release_memory()

    def add_time_kind(self, kind: str) -> None:
        self._time_kinds.add(kind)

    def finish(self, side_categories: tuple[Any, Any] | None = None, source: str = "") -> RawLog:
        """Merge the chunks. ``side_categories`` = (item raw ids, category names), both pyarrow
        arrays, maps items to categories when the rows carry none (last row for an item wins)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if len(self._time_kinds) > 1:
            raise DataFormatError(
                f"{source}: the time column mixes {' and '.join(sorted(self._time_kinds))} values; "
                "expected one kind throughout"
            )
        release_memory()  # the blocks' parse buffers
        user, user_dict = self._users.finish()
        item, item_dict = self._items.finish()
        n_item_codes = len(item_dict)
        info: dict[str, Any] = {"rows_read": self.rows_read, "rows_kept": self.rows_kept}
        if self._cats is not None:
            cat, cat_dict = self._cats.finish()
            item_cat, conflicts = _last_category(item, cat, n_item_codes)
            del cat
            info["category_conflict_rows"] = conflicts
            cat_raw = raw_ids_to_numpy(cat_dict)
        elif side_categories is not None:
            side_items, side_cats = side_categories
            # Match raw ids as text, so int ids in the log meet the same ids read as strings.
            keys = pc.cast(item_dict, pa.string()) if not pa.types.is_string(item_dict.type) else item_dict
            side_items = pc.cast(side_items, pa.string()) if not pa.types.is_string(side_items.type) else side_items
            pos = pc.index_in(side_items, value_set=keys)
            matched = pc.is_valid(pos)
            info["category_rows"] = len(side_items)
            info["category_rows_unmatched"] = len(side_items) - int(pc.sum(matched).as_py() or 0)
            pos_np = np.asarray(pc.drop_null(pos).to_numpy(zero_copy_only=False), dtype=np.int64)
            # Category codes number the names by first appearance in the whole table.
            enc = pc.dictionary_encode(side_cats)
            all_codes = np.asarray(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int32)
            matched_np = np.asarray(matched.to_numpy(zero_copy_only=False), dtype=bool)
            item_cat, _ = _last_category(pos_np, all_codes[matched_np], n_item_codes)
            cat_raw = raw_ids_to_numpy(enc.dictionary)
        else:
            item_cat = np.full(n_item_codes, -1, np.int32)
            cat_raw = np.zeros(0, np.int64)
        time: np.ndarray | None = None
        if self._times is not None:
            time = _concat_times(self._times)
        release_memory()
        return RawLog(
            user=user,
            item=item,
            time=time,
            user_raw=raw_ids_to_numpy(user_dict),
            item_raw=raw_ids_to_numpy(item_dict),
            item_cat=item_cat,
            cat_raw=cat_raw,
            info=info,
        )


def _last_category(item: np.ndarray, cat: np.ndarray, n_items: int) -> tuple[np.ndarray, int]:
    """Each item's category from its last row (as the authors' category.py), and how many rows
    disagree with it."""
    last = np.full(n_items, -1, np.int64)
    step = 1 << 24
    for a in range(0, len(item), step):
        np.maximum.at(last, item[a : a + step], np.arange(a, min(a + step, len(item)), dtype=np.int64))
    item_cat = np.where(last >= 0, cat[np.maximum(last, 0)], -1).astype(np.int32)
    conflicts = 0
    for a in range(0, len(item), step):
        conflicts += int(np.count_nonzero(item_cat[item[a : a + step]] != cat[a : a + step]))
    return item_cat, conflicts


_INT32 = np.iinfo(np.int32)


def _compact_time(times: np.ndarray) -> np.ndarray:
    """A numpy-owned copy, int32 when integer times fit (unix seconds up to 2038 do): half the
    memory of the largest column at Taobao scale."""
    if times.dtype.kind in "iu" and (len(times) == 0 or (times.min() >= _INT32.min and times.max() <= _INT32.max)):
        return times.astype(np.int32)
    return np.array(times, copy=True)


def _concat_times(parts: list[np.ndarray]) -> np.ndarray:
    """Concatenate (releasing the parts as they are copied, to bound the peak)."""
    if not parts:
        return np.zeros(0, np.int64)
    dtype: Any = np.float64
    if all(p.dtype.kind in "iu" for p in parts):
        dtype = np.int32 if all(p.dtype == np.int32 for p in parts) else np.int64
    t = np.empty(sum(len(p) for p in parts), dtype)
    row = 0
    for i, p in enumerate(parts):
        t[row : row + len(p)] = p
        row += len(p)
        parts[i] = _EMPTY
        if i % 16 == 15:
            release_memory()
    if dtype != np.float64:
        return t
    # Float timestamps that are whole numbers (RecBole writes "881250949.0"-style floats) sort
    # faster as integers.
    if len(t) and np.all(np.abs(t) < 2**53) and np.array_equal(t, np.floor(t)):
        return _compact_time(t.astype(np.int64))
    return t

