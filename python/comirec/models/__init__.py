"""The six models of the paper's Table 3, behind one interface (:class:`comirec.models.base.InterestModel`).

This module is the model registry and imports no torch: ``REGISTRY`` names each model (its CLI
name, its name in the paper, where its class lives, whether it is multi-interest, which
``ModelConfig`` fields its constructor takes), and :func:`build_model` builds one from a
``ModelConfig``. The classes live in the submodules (which import torch) and are imported on
first use: ``from comirec.models import ComiRecSA`` works as before.

Adding a model: its class in a module of this package (``encode`` and ``name``; see
``docs/architecture.md``), one ``ModelSpec`` line below; the CLI, ``comirec reproduce``,
``comirec tune`` and the run directories pick it up from here.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import numbers
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import ModelConfig
    from .base import InterestModel


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One model: ``name`` (CLI, config.json), ``paper_name`` (tables), ``target``
    (``"module:Class"`` in this package), ``multi_interest`` (K interests, λ-aggregation; else
    one vector), ``options``: the ModelConfig fields its constructor takes besides ``dim`` (and
    ``n_interests`` = ``interests`` for a multi-interest model), ``trainable``: False for a model
    fitted by counting (MostPopular)."""

    name: str
    paper_name: str
    target: str
    multi_interest: bool
    options: tuple[str, ...] = ()
    trainable: bool = True


#: In the order of the paper's Table 3 (baselines, then ComiRec).
REGISTRY: dict[str, ModelSpec] = {s.name: s for s in (
    ModelSpec("mostpop", "MostPopular", "mostpop:MostPopular", False, trainable=False),
    ModelSpec("youtube-dnn", "YouTube DNN", "youtube_dnn:YouTubeDNN", False),
    ModelSpec("gru4rec", "GRU4Rec", "gru4rec:GRU4Rec", False, ("dropout",)),
    ModelSpec("mind", "MIND", "capsule:MIND", True, ("maxlen", "routing_iters", "mind_relu")),
    ModelSpec("comirec-sa", "ComiRec-SA", "self_attentive:ComiRecSA", True, ("maxlen", "align", "pos_init", "logit_scale")),
    ModelSpec("comirec-dr", "ComiRec-DR", "capsule:ComiRecDR", True, ("maxlen", "routing_iters", "dr_map", "dr_init", "align")),
)}
MODEL_NAMES: tuple[str, ...] = tuple(REGISTRY)
PAPER_NAMES: dict[str, str] = {s.name: s.paper_name for s in REGISTRY.values()}
MULTI_INTEREST: frozenset[str] = frozenset(s.name for s in REGISTRY.values() if s.multi_interest)
#: The paper's own models (Table 5's λ column, Table 4's K): ComiRec-SA and ComiRec-DR.
COMIREC: tuple[str, ...] = ("comirec-sa", "comirec-dr")


#: The sizes every model takes as integers >= 1, checked by :func:`check_size` only.
SIZES: tuple[str, ...] = ("n_items", "dim", "interests", "maxlen", "routing_iters")


def check_size(name: str, value: int) -> int:
    """``value`` as an int if it is an integer >= 1, else a TypeError/ValueError naming ``name``.

    The one check of a model size (``SIZES``): the model constructors run it, and ModelConfig
    runs it too, so that a bad ``--interests`` fails before any data is read."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def check_logit_scale(value: float) -> float:
    """ComiRec-SA's ``logit_scale`` as a float if it is a finite number > 0, else a ValueError.
    ModelConfig runs it too, so that a bad ``--logit-scale`` fails before any data is read."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"logit_scale must be a finite number > 0, got {value!r}")
    return float(value)


def spec(name: str) -> ModelSpec:
    """The registry entry of ``name``; an unknown name is a ValueError listing the known ones."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown model {name!r}: expected one of {', '.join(MODEL_NAMES)}") from None


def model_class(name: str) -> type[InterestModel]:
    """The class of model ``name`` (imports its module, and torch)."""
    module, _, cls = spec(name).target.partition(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)  # type: ignore[no-any-return]


def takes(name: str, field: str) -> bool:
    """Model ``name``'s constructor takes the ModelConfig field ``field`` (``interests``: a
    multi-interest model; ``dim``: a trainable one)."""
    s = spec(name)
    if field == "interests":
        return s.multi_interest
    if field == "dim":
        return s.trainable
    return field in s.options


def check_options(cfg: ModelConfig) -> None:
    """A model option (a ModelConfig field in some model's ``options``) set away from its default
    for a model that does not take it is a ValueError naming the flag, not silently ignored. Not
    ``maxlen``, which also sets every model's training window, nor ``dropout``, which
    :func:`build_model` checks. The CLIs call it on the configs they build from options; not
    ``build_model``, because the stored configs of old runs carry the authors' values of every
    model's fields (``ModelConfig.from_stored``)."""
    defaults = {f.name: f.default for f in dataclasses.fields(cfg)}
    specific = sorted({o for s in REGISTRY.values() for o in s.options} - {"maxlen", "dropout"})
    for name in specific:
        if getattr(cfg, name) != defaults[name] and not takes(cfg.model, name):
            users = [m for m in MODEL_NAMES if takes(m, name)]
            raise ValueError(f"--{name.replace('_', '-')}: model {cfg.model} does not take it (it applies to {', '.join(users)})")


def build_model(cfg: ModelConfig, n_items: int) -> InterestModel:
    """The model ``cfg`` describes, for a catalogue of ``n_items`` items (ids 1..n_items). A
    dropout for a model that takes none is refused (never silently ignored)."""
    s = spec(cfg.model)
    if cfg.dropout and "dropout" not in s.options:
        raise ValueError(f"dropout: model {cfg.model} takes no dropout (use --dropout 0)")
    kwargs: dict[str, Any] = {name: getattr(cfg, name) for name in s.options}
    if s.multi_interest:
        kwargs["n_interests"] = cfg.interests
    return model_class(cfg.model)(n_items, dim=cfg.dim, **kwargs)


_CLASSES = {"InterestModel": "base", "select_interest": "base", "MostPopular": "mostpop", "YouTubeDNN": "youtube_dnn",
            "GRU4Rec": "gru4rec", "MIND": "capsule", "ComiRecDR": "capsule", "dynamic_routing": "capsule", "squash": "capsule",
            "ComiRecSA": "self_attentive"}


def __getattr__(name: str) -> Any:
    if name in _CLASSES:
        return getattr(importlib.import_module(f"{__name__}.{_CLASSES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "COMIREC", "MODEL_NAMES", "MULTI_INTEREST", "PAPER_NAMES", "REGISTRY", "SIZES", "ModelSpec", "build_model", "check_logit_scale", "check_options", "check_size",
    "model_class",
    "spec", "takes",
    *_CLASSES,
]
