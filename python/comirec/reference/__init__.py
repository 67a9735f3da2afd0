"""The specifications, in plain Python: what the fast paths compute, one user (one row) at a time.

- :mod:`comirec.reference.serving`: aggregation with λ and the metrics (SPEC §5-6), which
  ``comirec.aggregate`` / ``comirec.metrics`` (the Rust core) must match;
- :mod:`comirec.reference.sampler`: the training and evaluation batches of the Rust sampler
  (``comirec.data.TrainSampler``, ``eval_batches``), random streams included;
- :mod:`comirec.reference.protocol`: the data protocol (filtering, id order, splits) that
  ``comirec prepare`` implements with numpy.

None of them imports ``comirec._core`` or the code it specifies; the tests (property tests,
fuzzing) hold the implementations to them. ``comirec.reference.aggregate`` and the other serving
functions are re-exported here.
"""

from __future__ import annotations

from .serving import (
    Candidates,
    aggregate,
    best_scores,
    category,
    comirec_protocol,
    discount,
    diversity,
    greedy,
    metrics,
    standard,
    target_lists,
)

__all__ = ["Candidates", "aggregate", "best_scores", "category", "comirec_protocol", "discount", "diversity", "greedy", "metrics",
           "standard", "target_lists"]
