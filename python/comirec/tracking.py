"""Experiment tracking beyond ``log.jsonl``: the same records as TensorBoard event files
(``train --tensorboard DIR``; the optional ``tensorboard`` extra). Every numeric field becomes a
scalar (nested keys joined by "/": ``valid/recall@50``) at the record's step, and every record is
also kept whole, as its JSON line, in the text tag ``log.jsonl``."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class TrackingUnavailable(ImportError):
    """tensorboard is not installed."""


MISSING = "tensorboard is not installed (pip install 'comirec[tensorboard]')"


def _scalars(record: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, float]]:
    for key, value in record.items():
        if isinstance(value, dict):
            yield from _scalars(value, f"{prefix}{key}/")
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            yield prefix + key, float(value)


class TensorBoardLog:
    """``log(record)`` writes one log.jsonl record to the event files in ``logdir``."""

    def __init__(self, logdir: str | Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise TrackingUnavailable(MISSING) from None
        self._writer = SummaryWriter(log_dir=str(logdir))
        self._lines = 0

    def __call__(self, record: dict[str, Any]) -> None:
        step = record.get("step")
        step = int(step) if isinstance(step, int) and not isinstance(step, bool) else None
        for tag, value in _scalars(record):
            if tag != "step":
                self._writer.add_scalar(tag, value, global_step=step)
        self._writer.add_text("log.jsonl", json.dumps(record), global_step=self._lines)
        self._lines += 1
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
