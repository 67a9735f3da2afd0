"""Type stubs for comirec's private native module (checked with ``python -m mypy.stubtest comirec._core``)."""

import numpy as np
import numpy.typing as npt

__all__ = [
    "__doc__",
    "sampler_drawable_users",
    "sampler_eval_batch",
    "sampler_mark_forked",
    "sampler_train_batch",
    "sampler_validate_csr",
]

# ===== sampler (issue 3, data layer) =====================================================
# Callers (comirec.data.sampler) pass C-contiguous arrays of exactly these dtypes.

def sampler_mark_forked() -> None: ...
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

# ===== end sampler =======================================================================
