"""The data layer: raw-format readers (``formats/``), the strong-generalisation protocol, prepared datasets
(memory-mapped CSR sequences) and the Rust training/evaluation batch sampler.

    from comirec.data import load_prepared, TrainSampler, eval_batches
    ds = load_prepared("data/beauty")
    sampler = TrainSampler(ds.indptr, ds.items, users=ds.users("train"), batch_size=128, maxlen=20)
    batch = sampler.batch(0)

pyarrow (the format readers) and torch (``SamplerDataset``) are imported only when used.
"""

from __future__ import annotations

from typing import Any

from ._text import DataFormatError
from .prepared import PreparedDataset, PreparedWriter, load_prepared
from .sampler import EvalBatch, TrainBatch, TrainSampler, background, eval_batches, recent_windows

__all__ = [
    "DataFormatError",
    "EvalBatch",
    "PreparedDataset",
    "PreparedWriter",
    "SamplerDataset",
    "TrainBatch",
    "TrainSampler",
    "as_tensors",
    "background",
    "eval_batches",
    "recent_windows",
    "load_prepared",
    "prepare",
    "synthesize",
]

_LAZY = {
    "SamplerDataset": "torch_dataset",
    "as_tensors": "torch_dataset",
    "prepare": "pipeline",
    "synthesize": "synth",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
