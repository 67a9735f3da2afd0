"""Stubs of comirec's native core (private; use :mod:`comirec`). Checked with
``python -m mypy.stubtest comirec._core`` (tests/test_stubs.py)."""

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

_Ids = npt.NDArray[np.int32] | npt.NDArray[np.int64]

__all__ = ["aggregate", "metrics", "METRIC_NAMES", "_panic_for_test", "_forked_from_pool_owner"]

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
