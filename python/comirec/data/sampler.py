"""Training and evaluation batches (SPEC section 2), computed by the Rust core.

``TrainSampler.batch(step)`` is a pure function of (seed, step): the same batch on every run and
thread count, so training can resume at any step. The users of a batch are drawn without
replacement from the training users longer than ``min_hist`` (as the authors' ``random.sample``);
each user's cut point ``k`` is uniform in ``{min_hist, ..., len-1}``, the target is ``items[k]``
and the history the last ``maxlen`` items before it, left-aligned and zero-padded.

All arrays are numpy, C-contiguous and owned by Python: ``torch.from_numpy`` takes them without
a copy. Batches are built with the GIL released, so a background thread (``prefetch``) overlaps
sampling with training.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple, TypeVar

import numpy as np

from .. import core
from ..core import int_array, int_at_least

T = TypeVar("T")
_MAX_CELLS = 1 << 31  # batch_size * maxlen bound: keeps one batch's buffers allocatable


class TrainBatch(NamedTuple):
    users: np.ndarray  # int64 (B,)
    history: np.ndarray  # int64 (B, maxlen)
    mask: np.ndarray  # float32 (B, maxlen)
    target: np.ndarray  # int64 (B,)


class EvalBatch(NamedTuple):
    users: np.ndarray  # int64 (b,)
    history: np.ndarray  # int64 (b, maxlen)
    mask: np.ndarray  # float32 (b, maxlen)
    target_indptr: np.ndarray  # int64 (b + 1,)
    target_items: np.ndarray  # int64 (target_indptr[-1],)


class TrainSampler:
    """Training batches over CSR sequences.

    Parameters: ``indptr`` (n_users + 1,) and ``items`` (n_interactions,) CSR sequences in time
    order; ``users``: the training users (default all); ``batch_size``, ``maxlen``, ``min_hist``
    (the first ``min_hist`` items are never targets; authors: 4); ``seed`` (0 <= seed < 2**64);
    ``replacement``: draw a batch's users with replacement (default False, the authors' way; then
    ``batch_size`` may not exceed the number of eligible users); ``load_mmap``: copy a
    memory-mapped ``items`` (as ``load_prepared`` gives) into memory once, for faster sampling.
    """

    def __init__(
        self,
        indptr: Any,
        items: Any,
        users: Any = None,
        batch_size: int = 128,
        maxlen: int = 20,
        min_hist: int = 4,
        seed: int = 0,
        replacement: bool = False,
        load_mmap: bool = True,
    ) -> None:
        if load_mmap and isinstance(items, np.memmap):
            # Sampling reads items at random: from anonymous memory (which numpy backs with huge
            # pages where the kernel allows) it runs ~1.5x faster than from a file map.
            items = np.array(items)
        self.indptr, self.items = core.csr(indptr, items)
        n_users = len(self.indptr) - 1
        self.batch_size = int_at_least("batch_size", batch_size)
        self.maxlen = int_at_least("maxlen", maxlen)
        self.min_hist = int_at_least("min_hist", min_hist)
        if self.batch_size * self.maxlen > _MAX_CELLS:
            raise ValueError(f"batch_size * maxlen: expected at most {_MAX_CELLS}, got {self.batch_size * self.maxlen}")
        self.seed = int_at_least("seed", seed, 0)
        if self.seed >= 2**64:
            raise ValueError(f"seed: expected an integer below 2**64, got {seed}")
        self.replacement = bool(replacement)
        users_arr = np.arange(n_users, dtype=np.int64) if users is None else int_array("users", users, np.int64)
        # (start, end, user) of every drawable user: one cache line per drawn row.
        self._table = core.drawable_users(self.indptr, users_arr, self.min_hist)
        self.users = np.ascontiguousarray(self._table[2::3])
        if not self.replacement and self.batch_size > len(self.users):
            raise ValueError(
                f"batch_size: expected at most {len(self.users)} (the users with more than min_hist = "
                f"{self.min_hist} items; a batch draws distinct users), got {self.batch_size}; "
                "lower it or pass replacement=True"
            )

    @property
    def n_users(self) -> int:
        """How many users can be drawn (those longer than ``min_hist``)."""
        return len(self.users)

    def batch(self, step: int) -> TrainBatch:
        """Batch number ``step`` (0 <= step < 2**64): a pure function of (seed, step)."""
        step = int_at_least("step", step, 0)
        if step >= 2**64:
            raise ValueError(f"step: expected an integer below 2**64, got {step}")
        return TrainBatch(
            *core.train_rows(
                self.items,
                self._table,
                self.batch_size,
                self.maxlen,
                self.min_hist,
                self.seed,
                step,
                self.replacement,
            )
        )

    def iter(self, start: int = 0, stop: int | None = None, prefetch: int = 0) -> Iterator[TrainBatch]:
        """Batches ``start, start+1, ...`` (up to ``stop``, exclusive; endless if None). With
        ``prefetch > 0`` a background thread keeps that many batches ready."""
        steps: Iterable[int] = _count(start, stop)
        batches = (self.batch(s) for s in steps)
        return background(batches, prefetch) if prefetch > 0 else batches

    def __iter__(self) -> Iterator[TrainBatch]:
        return self.iter()

    def __repr__(self) -> str:
        return (
            f"TrainSampler({self.n_users} users, batch_size={self.batch_size}, maxlen={self.maxlen}, "
            f"min_hist={self.min_hist}, seed={self.seed}{', replacement' if self.replacement else ''})"
        )


def _count(start: int, stop: int | None) -> Iterator[int]:
    s = start
    while stop is None or s < stop:
        yield s
        s += 1


def eval_batches(
    indptr: Any, items: Any, users: Any, maxlen: int = 20, batch_size: int = 1024
) -> Iterator[EvalBatch]:
    """Evaluation batches for ``users`` in the given order: cut ``k = floor(0.8 * len)``, history =
    the last ``maxlen`` of ``items[:k]``, targets = ``items[k:]`` (CSR, duplicates kept)."""
    ip, it = core.csr(indptr, items)
    us = int_array("users", users, np.int64)
    maxlen = int_at_least("maxlen", maxlen)
    batch_size = int_at_least("batch_size", batch_size)
    if batch_size * maxlen > _MAX_CELLS:
        raise ValueError(f"batch_size * maxlen: expected at most {_MAX_CELLS}, got {batch_size * maxlen}")
    n_users = len(ip) - 1
    if us.size and (us.min() < 0 or us.max() >= n_users):
        raise ValueError(f"users: expected user indices in [0, {n_users}), got range [{us.min()}, {us.max()}]")
    return _eval_iter(ip, it, us, maxlen, batch_size)


def eval_cut(lengths: np.ndarray) -> np.ndarray:
    """The evaluation protocol's cut per sequence, ``k = floor(0.8 * len)``: the first ``k``
    items are the history, the rest the targets. In integers, as the Rust kernels' ``eval_cut``
    (equal to the authors' ``int(len * 0.8)`` below 2^53); for callers that need whole histories,
    not :func:`eval_batches`' windows."""
    return np.asarray(lengths) * 4 // 5


def _eval_iter(ip: np.ndarray, it: np.ndarray, us: np.ndarray, maxlen: int, batch_size: int) -> Iterator[EvalBatch]:
    for a in range(0, len(us), batch_size):
        chunk = np.ascontiguousarray(us[a : a + batch_size])
        yield EvalBatch(chunk, *core.eval_rows(ip, it, chunk, maxlen))


def recent_windows(indptr: Any, items: Any, maxlen: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Serving histories of every CSR row: the last ``maxlen`` items of the whole sequence (no
    evaluation cut), left-aligned and zero-padded as in training: int64 ``(n, maxlen)`` ids and
    their float32 mask. What :class:`comirec.serving.Recommender` feeds the model."""
    ip, it = core.csr(indptr, items)
    maxlen = int_at_least("maxlen", maxlen)
    n = len(ip) - 1
    if n * maxlen > _MAX_CELLS:
        raise ValueError(f"len(indptr) - 1 times maxlen: expected at most {_MAX_CELLS}, got {n * maxlen}")
    return core.recent_rows(ip, it, np.arange(n, dtype=np.int64), maxlen)


_DONE = object()


def background(iterable: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Iterate ``iterable`` in a daemon thread, keeping up to ``depth`` items ready.

    Exceptions raised by the producer are re-raised in the consumer. Closing the returned
    generator (or dropping it) stops the thread at its next item.
    """
    depth = int_at_least("depth", depth)
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in iterable:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, never lost in the thread
            put(_Raised(exc))

    thread = threading.Thread(target=produce, name="comirec-prefetch", daemon=True)
    thread.start()
    return _consume(q, stop, thread)


class _Raised:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _consume(q: queue.Queue[Any], stop: threading.Event, thread: threading.Thread) -> Iterator[Any]:
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Raised):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)

