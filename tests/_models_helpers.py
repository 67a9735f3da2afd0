"""Helpers for the models/training/evaluation/serving tests: tiny synthetic datasets and runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from comirec.config import ModelConfig, SynthConfig, TrainConfig


def make_synth(path: Path, **overrides: Any) -> Any:
    """A small SYNTHETIC prepared dataset with planted category interests."""
    from comirec.data import synthesize

    kw: dict[str, Any] = dict(users=1500, items=2000, categories=12, interests_per_user=(2, 3), mean_length=16.0,
                              min_length=6, max_length=40, stickiness=0.8, seed=0, out=str(path))
    kw.update(overrides)
    return synthesize(SynthConfig(**kw))


def quick_train(data: Path, out: Path, model: str = "comirec-sa", dataset: Any = None, on_step: Any = None,
                model_kw: dict[str, Any] | None = None, **train_kw: Any) -> Path:
    from comirec.training import train

    kw: dict[str, Any] = dict(max_steps=40, eval_every=20, patience=100, batch_size=64, progress=False, eval_batch_size=256, threads=1)
    kw.update(train_kw)
    mcfg = ModelConfig(model=model, dim=16, interests=4, maxlen=12, **(model_kw or {}))
    return train(mcfg, TrainConfig(data=str(data), out=str(out), **kw), dataset=dataset, on_step=on_step)
