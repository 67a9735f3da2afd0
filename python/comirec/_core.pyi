"""Stubs of comirec's native core (private; use :mod:`comirec`). Checked with
``python -m mypy.stubtest comirec._core`` (tests/test_core_boundaries.py)."""

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

_Ids = npt.NDArray[np.int32] | npt.NDArray[np.int64]

__all__ = [
    "aggregate",
    "metrics",
    "METRIC_NAMES",
    "_panic_for_test",
    "_forked_from_pool_owner",
    "sampler_validate_csr",
    "sampler_drawable_users",
    "sampler_train_batch",
    "sampler_eval_batch",
    "sampler_recent_rows",
]

METRIC_NAMES: list[str]

def aggregate(
    items: _Ids,
    scores: npt.NDArray[np.float32],
    cats: _Ids | None,
    lam: float,
    n: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]: ...
def metrics(
    recs: _Ids,
    indptr: npt.NDArray[np.int64],
    target_items: _Ids,
    cats: _Ids | None,
    ks: Sequence[int],
    protocol: str,
) -> npt.NDArray[np.float64]: ...
def _panic_for_test() -> None: ...
def _forked_from_pool_owner() -> bool: ...

# ===== sampler (the data layer's training and evaluation batches) ========================
# Callers (comirec.data.sampler) pass C-contiguous arrays of exactly these dtypes.

def sampler_validate_csr(indptr: npt.NDArray[np.int64], n_items: int) -> None: ...
def sampler_drawable_users(
    indptr: npt.NDArray[np.int64], users: npt.NDArray[np.int64], min_hist: int
) -> npt.NDArray[np.int64]: ...
def sampler_train_batch(
    items: npt.NDArray[np.int32],
    table: npt.NDArray[np.int64],
    batch_size: int,
    maxlen: int,
    min_hist: int,
    seed: int,
    step: int,
    replacement: bool,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.int64]]: ...
def sampler_eval_batch(
    indptr: npt.NDArray[np.int64], items: npt.NDArray[np.int32], users: npt.NDArray[np.int64], maxlen: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
def sampler_recent_rows(
    indptr: npt.NDArray[np.int64], items: npt.NDArray[np.int32], users: npt.NDArray[np.int64], maxlen: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]: ...
