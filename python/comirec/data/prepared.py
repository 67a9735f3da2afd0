"""The prepared-dataset directory: numpy files, memory-mapped on load, plus a JSON header.

Layout (format_version 1)::

    header.json     name, source, synthetic flag, protocol options, statistics, files
    indptr.npy      int64 (n_users + 1,)  CSR offsets over users
    items.npy       int32 (n_interactions,)  each user's items in time order, ids 1..n_items
    split.npy       int8 (n_users,)  0 = train, 1 = valid, 2 = test
    item_freq.npy   int64 (n_items + 1,)  interactions per item id, [0] = 0
    item_cat.npy    int32 (n_items + 1,)  category 0..n_cats-1 per item id, [0] = -1
    user_raw.npy    (n_users,)  raw user ids (int64, or fixed-width unicode)
    item_raw.npy    (n_items + 1,)  raw item ids, [0] a placeholder (-1 or "")
    cat_raw.npy     (n_cats,)  raw category ids or names

Writers fill a temporary sibling directory and rename it into place at the end, so a
directory at the target path is always complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._text import escape_unprintable
from ._writing import (
    OutputBusyError,
    OutputLock,
    clean_stale,
    fsync_dir,
    old_name,
    rename_noreplace,
    tmp_prefix,
    write_error,
)
from .protocol import SPLITS

FORMAT_VERSION = 1
HEADER = "header.json"
ARRAYS = ("indptr", "items", "split", "item_freq", "item_cat", "user_raw", "item_raw", "cat_raw")
_DTYPES = {"indptr": "i8", "items": "i4", "split": "i1", "item_freq": "i8", "item_cat": "i4"}


@dataclass(frozen=True, eq=False)
class PreparedDataset:
    """A prepared dataset (see the module docstring); arrays are read-only memory maps."""

    path: Path
    header: dict[str, Any]
    indptr: np.ndarray = field(repr=False)
    items: np.ndarray = field(repr=False)
    split: np.ndarray = field(repr=False)
    item_freq: np.ndarray = field(repr=False)
    item_cat: np.ndarray = field(repr=False)
    user_raw: np.ndarray = field(repr=False)
    item_raw: np.ndarray = field(repr=False)
    cat_raw: np.ndarray = field(repr=False)

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    @property
    def n_items(self) -> int:
        return len(self.item_freq) - 1

    @property
    def n_cats(self) -> int:
        return len(self.cat_raw)

    @property
    def n_interactions(self) -> int:
        return len(self.items)

    @property
    def synthetic(self) -> bool:
        return bool(self.header.get("synthetic", False))

    def users(self, split: str) -> np.ndarray:
        """int64 indices of the users in ``split`` ("train", "valid" or "test"), ascending."""
        if split not in SPLITS:
            raise ValueError(f"split: expected one of {', '.join(SPLITS)}, got {split!r}")
        return np.flatnonzero(self.split == SPLITS.index(split)).astype(np.int64)

    def sequence(self, user: int) -> np.ndarray:
        """The items of user ``user`` in time order (a view)."""
        if not 0 <= user < self.n_users:
            raise ValueError(f"user: expected an index in [0, {self.n_users}), got {user}")
        return self.items[self.indptr[user] : self.indptr[user + 1]]

    def summary(self) -> str:
        """The statistics table that ``comirec prepare`` prints."""
        return format_stats(self.header)

    def __repr__(self) -> str:
        tag = ", synthetic" if self.synthetic else ""
        return (
            f"PreparedDataset({self.header.get('name', '?')!r}{tag}: {self.n_users} users, {self.n_items} items, "
            f"{self.n_cats} categories, {self.n_interactions} interactions; {str(self.path)!r})"
        )


def load_prepared(path: str | os.PathLike[str], mmap: bool = True) -> PreparedDataset:
    """Open a directory written by ``comirec prepare`` / ``comirec synth``.

    Arrays are memory-mapped read-only (``mmap=False`` reads them into memory). Only cheap
    consistency checks run here (shapes, dtypes, CSR ends); loading takes well under a second
    whatever the size.
    """
    root = Path(path)
    head_path = root / HEADER
    if not head_path.is_file():
        raise FileNotFoundError(f"{root}: not a prepared dataset (no {HEADER}); create one with `comirec prepare`")
    try:
        header = json.loads(head_path.read_bytes())
    except ValueError as exc:  # also undecodable bytes
        raise ValueError(f"{head_path}: not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{head_path}: expected a JSON object, got a JSON {type(header).__name__}")
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"{head_path}: expected format_version {FORMAT_VERSION}, got {version!r}")
    arrays: dict[str, np.ndarray] = {}
    for name in ARRAYS:
        f = root / f"{name}.npy"
        if not f.is_file():
            raise FileNotFoundError(f"{root}: missing {f.name}; the prepared dataset is incomplete")
        arrays[name] = _load_npy(f, mmap)
        want = _DTYPES.get(name)
        got = arrays[name].dtype
        if (want is not None and got != np.dtype(want)) or (want is None and got.kind not in "iU"):
            raise ValueError(f"{f}: expected dtype {want or 'int64 or unicode'}, got {got}")
        if arrays[name].ndim != 1:
            raise ValueError(f"{f}: expected a 1-D array, got shape {arrays[name].shape}")
    _check_shapes(root, arrays)
    _check_values(root, arrays)
    return PreparedDataset(path=root, header=header, **arrays)


def _load_npy(f: Path, mmap: bool) -> np.ndarray:
    """``np.load`` of one array file; an empty, truncated or garbage file is a ValueError naming it."""
    size = f.stat().st_size
    if size == 0:
        raise ValueError(f"{f}: empty file (0 bytes); expected a .npy array: the prepared dataset is corrupt, prepare it again")
    try:
        arr: np.ndarray = np.load(f, mmap_mode="r" if mmap else None, allow_pickle=False)
        return arr
    except (ValueError, EOFError, OSError, SyntaxError, tokenize.TokenError) as exc:
        reason = str(exc)
        if "pickle" in reason:  # numpy's guess for any file that does not start like a .npy
            reason = "not the .npy format"
        elif "mmap length" in reason or "cannot reshape" in reason or isinstance(exc, EOFError):
            reason = "truncated: shorter than its header says"
        raise ValueError(f"{f}: not a valid .npy array ({escape_unprintable(reason)}, {size} bytes); the prepared dataset is corrupt, prepare it again") from None


def _check_values(root: Path, a: dict[str, np.ndarray]) -> None:
    """Cheap range checks (vectorised min/max, one pass over each array), so a corrupt file
    fails here naming it instead of as an IndexError deep in training."""
    n_users = len(a["indptr"]) - 1
    n_items = len(a["item_freq"]) - 1
    n_cats = len(a["cat_raw"])
    problems = []

    def check(name: str, values: np.ndarray, lo: int, hi: int, what: str) -> None:
        if len(values) == 0:
            return
        vmin, vmax = int(values.min()), int(values.max())
        if vmin < lo or vmax > hi:
            problems.append(f"{root / (name + '.npy')}: expected {what} in {lo}..{hi}, got values in [{vmin}, {vmax}]")

    check("items", a["items"], 1, n_items, f"item ids (n_items = {n_items})")
    check("split", a["split"], 0, len(SPLITS) - 1, "split codes (0 train, 1 valid, 2 test)")
    check("item_cat", a["item_cat"][1:], 0, max(n_cats - 1, 0) if n_cats else -1, f"categories (n_cats = {n_cats})")
    if n_users > 0 and len(a["items"]) and bool((np.diff(a["indptr"]) < 0).any()):
        problems.append(f"{root / 'indptr.npy'}: expected non-decreasing offsets, got a decreasing step")
    if len(a["item_freq"]) and int(a["item_freq"].min()) < 0:
        problems.append(f"{root / 'item_freq.npy'}: expected counts >= 0")
    if problems:
        raise ValueError("corrupt prepared dataset: " + "; ".join(problems))


def _check_shapes(root: Path, a: dict[str, np.ndarray]) -> None:
    n_users = len(a["indptr"]) - 1
    n_items = len(a["item_freq"]) - 1
    problems = []
    if n_users < 0 or a["indptr"][0] != 0 or a["indptr"][-1] != len(a["items"]):
        problems.append("indptr must start at 0 and end at len(items)")
    for name, n in (("split", n_users), ("user_raw", n_users), ("item_cat", n_items + 1), ("item_raw", n_items + 1)):
        if len(a[name]) != n:
            problems.append(f"{name} has {len(a[name])} entries, expected {n}")
    if problems:
        raise ValueError(f"{root}: inconsistent prepared dataset: {'; '.join(problems)}")


class PreparedWriter:
    """Writes a prepared dataset into a temporary sibling directory; ``commit`` renames it.

    Used as a context manager: leaving the block without ``commit`` (an error) removes the
    temporary directory, so nothing half-written is ever left at ``out``. An exclusive lock
    (``OUT.lock``) is held from the start to the end, so a second writer of the same ``out``
    fails at once (:class:`OutputBusyError`); the final rename never replaces a directory that
    appeared meanwhile. Temporary directories of dead writers are removed first. Files are
    written with ordinary buffered writes (never a memory map, which turns a full disk into
    SIGBUS); an ``OSError`` is re-raised as a :class:`WriteError` naming the file.
    """

    def __init__(self, out: str | os.PathLike[str], overwrite: bool = False) -> None:
        self.out = Path(out)
        self.overwrite = overwrite
        self._done = False
        self.tmp: Path | None = None
        self._check_parent()
        self._lock = OutputLock(self.out)
        try:
            self._lock.acquire()
        except OSError as exc:
            if isinstance(exc, OutputBusyError):
                raise
            raise write_error(exc, self._lock.path) from None
        try:
            clean_stale(self.out)
            self._check_target()
            self.tmp = Path(tempfile.mkdtemp(prefix=tmp_prefix(self.out), dir=self.out.parent))
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self.tmp, 0o777 & ~umask)  # mkdtemp makes it private; the dataset is not
        except BaseException:
            self._lock.release()
            raise

    def _check_target(self) -> None:
        out = self.out
        if os.path.lexists(out) and not out.is_dir():
            raise FileExistsError(f"--out {out}: exists and is not a directory; expected a new directory path")
        if out.exists() and not self.overwrite:
            raise FileExistsError(f"{out}: already exists (pass --overwrite to replace it)")
        if out.exists() and not (out / HEADER).is_file() and any(out.iterdir()):
            raise FileExistsError(f"{out}: exists and is not a prepared dataset; refusing to replace it")

    def _check_parent(self) -> None:
        parent = self.out.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except (NotADirectoryError, FileExistsError):
            raise FileExistsError(f"--out {self.out}: a parent path is a file, not a directory") from None
        except OSError as exc:
            raise write_error(exc, parent) from None

    def __enter__(self) -> PreparedWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if not self._done and self.tmp is not None:
                shutil.rmtree(self.tmp, ignore_errors=True)
        finally:
            self._lock.release()

    def path(self, name: str) -> Path:
        assert self.tmp is not None
        return self.tmp / f"{name}.npy"

    def write_stream(self, name: str, dtype: Any, length: int) -> "ArrayStream":
        """A 1-D ``.npy`` file written block by block with buffered writes (for arrays too
        large for memory); see :class:`ArrayStream`."""
        return ArrayStream(self.path(name), np.dtype(dtype), length, shown=self.out / f"{name}.npy")

    def save(self, name: str, array: np.ndarray) -> None:
        path = self.path(name)
        try:
            with open(path, "wb") as f:
                np.save(f, np.ascontiguousarray(array), allow_pickle=False)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise write_error(exc, self.out / path.name) from None

    def commit(self, header: dict[str, Any]) -> Path:
        assert self.tmp is not None
        header = {"format_version": FORMAT_VERSION, **header}
        header["files"] = {
            name: {"dtype": str(arr.dtype), "shape": list(arr.shape)}
            for name in ARRAYS
            for arr in [np.load(self.tmp / f"{name}.npy", mmap_mode="r")]
        }
        head = self.tmp / HEADER
        try:
            with open(head, "w") as f:
                f.write(json.dumps(header, indent=2, default=_json_default) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise write_error(exc, self.out / HEADER) from None
        fsync_dir(self.tmp)
        trash = None
        if self.overwrite and self.out.exists():
            trash = old_name(self.out)
            os.rename(self.out, trash)
        try:
            rename_noreplace(self.tmp, self.out)
        except BaseException:
            if trash is not None and not os.path.lexists(self.out):
                os.rename(trash, self.out)  # put the previous dataset back
            raise
        self._done = True
        fsync_dir(self.out.parent)
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
        return self.out


class ArrayStream:
    """A 1-D ``.npy`` file filled in order by ``append``, then optionally rewritten in place
    block by block with ``transform`` (plain reads and writes: a full disk is an ``OSError``,
    never the SIGBUS of a memory map). A context manager; errors name the file."""

    def __init__(self, path: Path, dtype: np.dtype, length: int, shown: Path | None = None) -> None:
        self.path, self.dtype, self.length = path, dtype, length
        self.shown = shown or path  # the name errors give (the final path, not the temporary one)
        self.written = 0
        try:
            self._f = open(path, "w+b")
            np.lib.format.write_array_header_1_0(
                self._f, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (length,)}
            )
            self._start = self._f.tell()
        except OSError as exc:
            raise write_error(exc, self.shown) from None

    def append(self, values: np.ndarray) -> None:
        values = np.ascontiguousarray(values, dtype=self.dtype)
        if self.written + len(values) > self.length:
            raise ValueError(f"{self.path}: more than the declared {self.length} values")
        try:
            self._f.write(values.data.cast("B"))
        except OSError as exc:
            raise write_error(exc, self.shown) from None
        self.written += len(values)

    def transform(self, fn: Any, block: int = 1 << 22) -> None:
        """Replace every block ``x`` of the written values by ``fn(x)`` (same length and dtype)."""
        f, size = self._f, self.dtype.itemsize
        buf = np.empty(block, self.dtype)
        try:
            f.flush()
            for a in range(0, self.written, block):
                n = min(block, self.written - a)
                f.seek(self._start + a * size)
                view = buf[:n]
                if f.readinto(view.data.cast("B")) != n * size:
                    raise OSError(f"{self.path}: short read")
                f.seek(self._start + a * size)
                f.write(np.ascontiguousarray(fn(view), dtype=self.dtype).data.cast("B"))
            f.seek(0, os.SEEK_END)
        except OSError as exc:
            raise write_error(exc, self.shown) from None

    def close(self) -> None:
        if self._f.closed:
            return
        try:
            if self.written != self.length:
                raise ValueError(f"{self.path}: {self.written} values written, {self.length} declared")
            self._f.flush()
            os.fsync(self._f.fileno())
        except OSError as exc:
            raise write_error(exc, self.shown) from None
        finally:
            self._f.close()

    def __enter__(self) -> "ArrayStream":
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self._f.close()


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def format_stats(header: dict[str, Any]) -> str:
    """A plain-text table of a header's statistics."""
    stats = header.get("stats", {})
    tag = "  [SYNTHETIC data]" if header.get("synthetic") else ""
    lines = [
        f"{header.get('name', '?')}{tag}: {stats.get('users', 0):,} users, {stats.get('items', 0):,} items, "
        f"{stats.get('categories', 0):,} categories, {stats.get('interactions', 0):,} interactions "
        f"(density {stats.get('density', 0.0):.2e})",
        f"{'split':<6} {'users':>11} {'interactions':>14} {'items':>10} {'categories':>10} {'mean len':>9} {'median':>7} {'max':>7}",
    ]
    for name in SPLITS:
        s = stats.get("splits", {}).get(name, {})
        lines.append(
            f"{name:<6} {s.get('users', 0):>11,} {s.get('interactions', 0):>14,} {s.get('items', 0):>10,} "
            f"{s.get('categories', 0):>10,} {s.get('mean_length', 0):>9.2f} {s.get('median_length', 0):>7g} "
            f"{s.get('max_length', 0):>7,}"
        )
    return "\n".join(lines)


def created_by() -> str:
    """The ``created_by`` of a dataset header: this package and its version."""
    from .. import __version__

    return f"comirec {__version__}"
