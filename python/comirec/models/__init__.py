"""The six models of the paper's Table 3, behind one interface (see :mod:`comirec.models.base`)."""

from __future__ import annotations

from typing import Callable

from .base import InterestModel, select_interest
from .capsule import MIND, ComiRecDR, dynamic_routing, squash
from .gru4rec import GRU4Rec
from .mostpop import MostPopular
from .self_attentive import ComiRecSA
from .youtube_dnn import YouTubeDNN

MODELS: dict[str, Callable[..., InterestModel]] = {
    cls.name: cls for cls in (MostPopular, YouTubeDNN, GRU4Rec, MIND, ComiRecDR, ComiRecSA)  # type: ignore[misc]
}
MODEL_NAMES: tuple[str, ...] = tuple(MODELS)
MULTI_INTEREST: frozenset[str] = frozenset({"mind", "comirec-dr", "comirec-sa"})


def build_model(
    name: str,
    n_items: int,
    *,
    dim: int = 64,
    interests: int = 4,
    maxlen: int = 20,
    routing_iters: int = 3,
    mind_relu: bool = True,
    dr_map: str = "shared",
    dr_init: str = "normal",
    align: str = "left",
    dropout: float = 0.0,
) -> InterestModel:
    """Build a model by its CLI name. Single-vector models ignore ``interests`` (K = 1)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: expected one of {', '.join(MODEL_NAMES)}")
    if interests < 1:
        raise ValueError(f"interests (K) must be >= 1, got {interests}")
    if maxlen < 1:
        raise ValueError(f"maxlen must be >= 1, got {maxlen}")
    if routing_iters < 1:
        raise ValueError(f"routing_iters must be >= 1, got {routing_iters}")
    options: dict[str, object] = {
        "mind": dict(maxlen=maxlen, routing_iters=routing_iters, mind_relu=mind_relu),
        "comirec-dr": dict(maxlen=maxlen, routing_iters=routing_iters, dr_map=dr_map, dr_init=dr_init, align=align),
        "comirec-sa": dict(maxlen=maxlen, align=align),
        "gru4rec": dict(dropout=dropout),
    }.get(name, {})
    if dropout and "dropout" not in options:
        raise ValueError(f"dropout: model {name} takes no dropout (only gru4rec does)")
    return MODELS[name](n_items, dim=dim, n_interests=interests, **options)


__all__ = [
    "InterestModel", "MostPopular", "YouTubeDNN", "GRU4Rec", "MIND", "ComiRecDR", "ComiRecSA",
    "MODELS", "MODEL_NAMES", "MULTI_INTEREST", "build_model", "select_interest", "dynamic_routing", "squash",
]
