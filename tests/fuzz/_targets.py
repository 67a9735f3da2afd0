"""Fuzz targets: each turns a byte string into structured input for one part of comirec, runs it,
and raises on anything but the documented outcome (``Mismatch`` for a wrong result; any exception
other than the documented ``ValueError`` / ``MemoryError`` / ``OSError`` propagates as a crash).

- ``aggregate``: ``comirec.aggregate`` against ``comirec.reference.aggregate`` (same items, scores
  bit for bit, or both a ``ValueError`` about the same argument); huge ``n`` must be a result or a
  ``MemoryError`` / ``ValueError`` naming ``n``.
- ``metrics``: ``comirec.metrics(per_user=True)`` against the reference (NaN where it has NaN).
- ``sampler``: ``TrainSampler.batch`` and ``eval_batches`` against ``comirec.reference.sampler``.
- ``prepared``: ``load_prepared`` on a small synthetic dataset with one file mutated: a result that
  passes the format's invariants (and feeds the sampler), or a ``ValueError`` / ``OSError`` naming
  the dataset.

The bytes are read by :class:`Reader`, so the targets run without atheris too (the corpus and the
crash regressions are replayed by ``test_fuzz.py`` in-process). ``python tests/fuzz/fuzz.py
TARGET`` drives them with atheris (see README.md).
"""

from __future__ import annotations

import atexit
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import comirec
from comirec import reference
from comirec.reference import sampler as reference_sampler
from comirec.data.sampler import TrainSampler, eval_batches


class Mismatch(AssertionError):
    """The core and the reference disagree, or a documented invariant does not hold."""


class Reader:
    """Structured values from fuzz bytes; past the end every read is its smallest value."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def int(self, lo: int, hi: int) -> int:
        span = hi - lo + 1
        width = max(1, (span - 1).bit_length() + 7 >> 3)
        chunk = self.data[self.pos : self.pos + width]
        self.pos += width
        return lo + int.from_bytes(chunk.ljust(width, b"\0"), "little") % span

    def bool(self) -> bool:
        return self.int(0, 1) == 1

    def pick(self, options: Any) -> Any:
        return options[self.int(0, len(options) - 1)]

    def rest(self) -> bytes:
        out, self.pos = self.data[self.pos :], len(self.data)
        return out


def _outcome(f: Callable[[], Any], expected: tuple[type[BaseException], ...] = (ValueError,)) -> Any:
    """f()'s result, or the documented exception it raised (anything else propagates)."""
    try:
        return f()
    except expected as exc:
        return exc


def _arg(exc: BaseException) -> str:
    return str(exc).split(":", 1)[0]


def _same_errors(got: Any, want: Any, what: str) -> bool:
    """True when both are exceptions of the same type about the same argument; a Mismatch when
    only one is."""
    got_err, want_err = isinstance(got, BaseException), isinstance(want, BaseException)
    if got_err != want_err:
        raise Mismatch(f"{what}: core {got!r} but reference {want!r}")
    if got_err:
        if type(got) is not type(want) or _arg(got) != _arg(want):
            raise Mismatch(f"{what}: core raised {got!r}, reference {want!r}")
    return got_err


# ------------------------------------------------------------------------------------------
# aggregate
# ------------------------------------------------------------------------------------------

SCORES = [-1.0, -0.5, -0.0, 0.0, 0.0, 0.25, 0.5, 0.5, 1.0, 2.0, 1e30, -1e-30, float("nan"), float("inf")]
LAMS = [0.0, 0.0, 1e-6, 0.1, 0.5, 1.0, 3.0, 1e300, math.inf]
HUGE_N = [2**40, 10**12, 2**60 - 1, 2**60, 2**62, 2**63 - 1]


def aggregate(data: bytes) -> None:
    r = Reader(data)
    b, k, slots, n_items = r.int(0, 3), r.int(1, 4), r.int(0, 6), r.int(1, 12)
    size = b * k * slots
    items = np.array([r.int(-2, n_items + 1) for _ in range(size)], dtype=np.int64).reshape(b, k, slots)
    wide = r.int(0, 7) == 0
    if wide:  # ids of 2**32 and above (rank codes in the merge)
        items = np.where(items > 0, items * 2**33 + 1, items)
    scores = np.array([r.pick(SCORES) for _ in range(size)], dtype=np.float32).reshape(b, k, slots)
    if r.bool():  # rows sorted by score, as retrieval returns them
        scores = -np.sort(-scores, axis=2)
    if not wide and r.bool():
        items = items.astype(np.int32)
    cats = None
    if r.int(0, 5):
        cats = np.array([r.int(-1, 3) if j == 0 or r.int(0, 15) == 0 else r.int(0, 3) for j in range(r.int(0, n_items + 1))])
        if r.bool():
            cats = cats.astype(np.int32)
    lam = r.pick(LAMS)
    n = r.pick(HUGE_N) if r.int(0, 15) == 0 else r.int(1, 10)
    got = _outcome(lambda: comirec.aggregate((items, scores), cats, lam, n), (ValueError, MemoryError))
    if n > 100:
        if isinstance(got, BaseException):
            if not (str(got).startswith("n: ") or (cats is None and lam > 0 and str(got).startswith("cats: "))):
                raise Mismatch(f"aggregate with n = {n}: expected an error naming n, got {got!r}")
        elif got.items.shape != (b, n):
            raise Mismatch(f"aggregate with n = {n}: shape {got.items.shape}")
        return
    if cats is None and lam > 0:
        if not (isinstance(got, ValueError) and str(got).startswith("cats: ")):
            raise Mismatch(f"aggregate without cats at lam = {lam}: {got!r}")
        return
    want = _outcome(lambda: reference.aggregate((items, scores), cats, lam, n))
    if _same_errors(got, want, "aggregate"):
        return
    if not (np.array_equal(got.items, want.items) and np.array_equal(got.scores.view(np.int32), want.scores.view(np.int32))):
        raise Mismatch(f"aggregate: core {got} != reference {want}")


# ------------------------------------------------------------------------------------------
# metrics
# ------------------------------------------------------------------------------------------


def metrics(data: bytes) -> None:
    r = Reader(data)
    b, width, n_items = r.int(0, 3), r.int(1, 8), r.int(1, 12)
    recs = np.array([r.int(-2, n_items + 1) for _ in range(b * width)], dtype=np.int64).reshape(b, width)
    if r.bool():
        recs = recs.astype(np.int32)
    rows = [[r.int(0, n_items + 1) for _ in range(r.int(0, 6))] for _ in range(b)]
    form = r.int(0, 2)
    targets: Any
    if form == 0:
        targets = rows
    elif form == 1:
        targets = [np.array(t, dtype=r.pick([np.int64, np.int32, np.uint16])) for t in rows]
    else:
        indptr = np.cumsum([0] + [len(t) for t in rows])
        targets = (indptr, np.array([x for t in rows for x in t], dtype=np.int64))
    cats = None
    if r.bool():
        cats = np.array([r.int(-1, 3) if r.int(0, 15) == 0 else r.int(0, 3) for _ in range(r.int(0, n_items + 2))])
    ks = [r.int(1, width) for _ in range(r.int(1, 3))]
    protocol = r.pick(["standard", "comirec"])
    got = _outcome(lambda: comirec.metrics(recs, targets, cats, ks, protocol, per_user=True))
    want = _outcome(lambda: reference.metrics(recs, targets, cats, ks, protocol, per_user=True))
    if _same_errors(got, want, "metrics"):
        return
    if got.keys() != want.keys():
        raise Mismatch(f"metrics: keys {list(got)} != {list(want)}")
    for key in got:
        if not np.allclose(got[key], want[key], rtol=1e-12, atol=1e-15, equal_nan=True):
            raise Mismatch(f"metrics {key}: core {got[key]} != reference {want[key]}")


# ------------------------------------------------------------------------------------------
# sampler
# ------------------------------------------------------------------------------------------


def sampler(data: bytes) -> None:
    r = Reader(data)
    n_users = r.int(1, 6)
    lens = [r.int(0, 9) for _ in range(n_users)]
    indptr = np.cumsum([0] + lens).astype(np.int64)
    items = np.array([r.int(1, 60) for _ in range(int(indptr[-1]))], dtype=np.int32)
    users = list(range(n_users)) if r.bool() else [r.int(0, n_users - 1) for _ in range(r.int(0, 4))]
    batch_size, maxlen, min_hist = r.int(1, 6), r.int(1, 7), r.int(1, 4)
    seed, step, replacement = r.int(0, 2**64 - 1), r.int(0, 2**64 - 1), r.bool()
    if r.int(0, 7) == 0:  # a corrupt CSR: the core must refuse it
        at = r.int(0, n_users)
        bad = indptr.copy()
        bad[at] += r.pick([-3, -1, 1, 50])
        if bad[0] != 0 or bad[-1] != len(items) or (np.diff(bad) < 0).any():
            got = _outcome(lambda: TrainSampler(bad, items, users, batch_size, maxlen, min_hist, seed, replacement))
            if not isinstance(got, ValueError):
                raise Mismatch(f"sampler accepted the CSR {bad.tolist()} over {len(items)} items")
            return
    got = _outcome(lambda: TrainSampler(indptr, items, users, batch_size, maxlen, min_hist, seed, replacement).batch(step))
    ip, it = indptr.tolist(), items.tolist()
    eligible = reference_sampler.eligible_users(ip, users, min_hist)
    want = (
        ValueError("users: none eligible")
        if not eligible
        else _outcome(lambda: reference_sampler.train_batch(ip, it, eligible, batch_size, maxlen, min_hist, seed, step, replacement))
    )
    if not _same_errors(got, want, "train batch"):
        w_users, w_hist, w_mask, w_target = want
        same = (
            got.users.tolist() == w_users
            and got.history.tolist() == w_hist
            and got.mask.tolist() == w_mask
            and got.target.tolist() == w_target
        )
        if not same:
            raise Mismatch(f"train batch: core {got} != reference {want}")
    eval_users = np.array(users, dtype=np.int64)
    batches = list(eval_batches(indptr, items, eval_users, maxlen, batch_size))
    hist, mask, targets = reference_sampler.eval_rows(ip, it, users, maxlen)
    got_hist = [row for e in batches for row in e.history.tolist()]
    got_mask = [row for e in batches for row in e.mask.tolist()]
    got_targets = [e.target_items[e.target_indptr[j] : e.target_indptr[j + 1]].tolist() for e in batches for j in range(len(e.users))]
    if (got_hist, got_mask, got_targets) != (hist, mask, targets):
        raise Mismatch(f"eval batches: core {batches} != reference {(hist, mask, targets)}")


# ------------------------------------------------------------------------------------------
# load_prepared on mutated files
# ------------------------------------------------------------------------------------------

FILES = ["header.json", "indptr.npy", "items.npy", "split.npy", "item_freq.npy", "item_cat.npy", "user_raw.npy", "item_raw.npy", "cat_raw.npy"]
_ROOT: Path | None = None


def _root() -> Path:
    """This process's scratch: a small synthetic prepared dataset ``base`` (written once) and
    its copy ``work``, whose mutated files are restored after each input (in memory-backed
    /dev/shm where there is one: file-system calls are most of the cost of an input)."""
    global _ROOT
    if _ROOT is None:
        from comirec.config import SynthConfig
        from comirec.data.synth import synthesize

        shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        root = Path(tempfile.mkdtemp(prefix="comirec-fuzz-", dir=shm))
        atexit.register(shutil.rmtree, root, True)
        cfg = SynthConfig(users=12, items=15, categories=3, out=str(root / "base"), mean_length=6.0, min_length=3, max_length=9)
        synthesize(cfg)
        shutil.copytree(root / "base", root / "work")
        _ROOT = root
    return _ROOT


def _base() -> Path:
    return _root() / "base"


def _mutate(r: Reader, f: Path) -> None:
    kind = r.int(0, 5)
    raw = f.read_bytes()
    if kind == 0:  # truncated
        f.write_bytes(raw[: r.int(0, len(raw))])
    elif kind == 1:  # bytes overwritten
        at = r.int(0, len(raw))
        patch = r.rest()[:16]
        f.write_bytes(raw[:at] + patch + raw[at + len(patch) :])
    elif kind == 2:  # replaced by garbage
        f.write_bytes(r.rest())
    elif kind == 3:  # removed
        f.unlink()
    elif f.suffix == ".npy":  # one value of the pristine file changed, still well-formed
        a = np.load(_base() / f.name, allow_pickle=False)
        if a.size and a.dtype.kind in "iu":
            a = a.copy()
            info = np.iinfo(a.dtype)
            value = r.pick([-(2**31), -1, 0, 1, 2, 15, 16, 100, 2**31 - 1])
            a.flat[r.int(0, a.size - 1)] = min(max(value, int(info.min)), int(info.max))
            np.save(f, a)
    else:  # a header field replaced (or the whole header another JSON value)
        head = json.loads((_base() / f.name).read_bytes())
        value = r.pick([None, [], {}, "x", -1, 0, 1, 2, 1e308, "\udcff"])
        if kind == 4:
            head = value
        elif isinstance(head, dict) and head:
            head[r.pick(sorted(head))] = value
        f.write_text(json.dumps(head))


def _check_loaded(ds: Any) -> None:
    ip, it = np.asarray(ds.indptr), np.asarray(ds.items)
    if ip[0] != 0 or ip[-1] != len(it) or (np.diff(ip) < 0).any():
        raise Mismatch(f"load_prepared accepted the CSR indptr {ip.tolist()} over {len(it)} items")
    if len(it) and (it.min() < 1 or it.max() > ds.n_items):
        raise Mismatch(f"load_prepared accepted item ids in [{it.min()}, {it.max()}], n_items = {ds.n_items}")
    split = np.asarray(ds.split)
    if len(split) and (split.min() < 0 or split.max() > 2):
        raise Mismatch(f"load_prepared accepted split codes in [{split.min()}, {split.max()}]")
    cat = np.asarray(ds.item_cat)[1:]
    if len(cat) and (cat.min() < 0 or cat.max() >= ds.n_cats):
        raise Mismatch(f"load_prepared accepted categories in [{cat.min()}, {cat.max()}], n_cats = {ds.n_cats}")
    # and the loaded arrays feed the sampler
    _outcome(lambda: TrainSampler(ds.indptr, ds.items, ds.users("train"), batch_size=2, min_hist=1, replacement=True).batch(0))
    list(eval_batches(ds.indptr, ds.items, ds.users("test"), maxlen=5))


def prepared(data: bytes) -> None:
    from comirec.data.prepared import load_prepared

    r = Reader(data)
    ds_dir = _root() / "work"
    touched = []
    try:
        for _ in range(r.int(1, 2)):
            f = ds_dir / r.pick(FILES)
            if f.exists():
                touched.append(f.name)
                _mutate(r, f)
        mmap = r.bool()
        got = _outcome(lambda: load_prepared(ds_dir, mmap=mmap), (ValueError, OSError))
        if isinstance(got, BaseException):
            if str(ds_dir) not in str(got):
                raise Mismatch(f"load_prepared raised {got!r}, which does not name the dataset or file")
            if any(not (ch.isprintable() or ch == " ") for ch in str(got)):
                raise Mismatch(f"load_prepared's message echoes raw bytes: {str(got)!r}")
            return
        _check_loaded(got)
    finally:
        for name in touched:  # a fresh file (not rewritten in place: a memory map may hold the old one)
            (ds_dir / name).unlink(missing_ok=True)
            shutil.copyfile(_base() / name, ds_dir / name)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "aggregate": aggregate,
    "metrics": metrics,
    "sampler": sampler,
    "prepared": prepared,
}
