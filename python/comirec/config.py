"""Configuration as frozen dataclasses; the CLI is derived from them.

Each field's ``metadata["help"]`` is its documentation; the default is the documented default.
``add_arguments`` turns a dataclass into argparse options (``--field-name``) and ``from_namespace``
builds the dataclass back from the parsed namespace, so a config has a single definition.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any, TypeVar

from .core import PROTOCOLS, check_lams, check_ns
from .data.formats import FORMAT_NAMES
from .models import COMIREC, MODEL_NAMES, check_logit_scale, check_size, spec

T = TypeVar("T")


def _parse_float_list(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip() != "")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of numbers, got {text!r}")


def _parse_int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip() != "")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of integers, got {text!r}")


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def add_arguments(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = (), optional: tuple[str, ...] = (),
                  keep_unset: bool = False, helps: dict[str, str] | None = None) -> None:
    """Add one ``--option`` per field of the dataclass ``cls`` (fields in ``skip`` excluded).

    ``optional``: required fields that may be left out (then None); ``keep_unset``: an option not
    given is left out of the namespace (not set to its default), so a handler can tell the options
    given from the defaults; ``helps``: field -> help text replacing the field's own."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        tp, _optional = _unwrap_optional(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        help_text = (helps or {}).get(f.name, f.metadata.get("help", ""))
        kwargs: dict[str, Any] = {"dest": f.name, "help": help_text}
        if f.default is not dataclasses.MISSING:
            kwargs["default"] = f.default
            if "default" not in help_text and f.default is not None:  # the help may say it better
                shown = (",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in f.default) or "none") if isinstance(f.default, tuple) else f.default
                kwargs["help"] = f"{help_text} (default: {shown})"
        elif f.default_factory is not dataclasses.MISSING:
            kwargs["default"] = f.default_factory()
        elif f.name in optional:
            kwargs["default"] = None
        else:
            kwargs["required"] = True
        if keep_unset and not kwargs.get("required") and f.name not in optional:
            kwargs["default"] = argparse.SUPPRESS
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(tp) is tuple:
            (elem, *_rest) = typing.get_args(tp)
            kwargs["type"] = _parse_float_list if elem is float else _parse_int_list
            kwargs["metavar"] = "A,B,..."
        elif tp in (int, float, str):
            kwargs["type"] = tp
        else:
            kwargs["type"] = str
        kwargs["help"] = kwargs["help"].replace("%", "%%")  # argparse formats help with %: a literal % must be doubled
        parser.add_argument(flag, **kwargs)


def from_namespace(cls: type[T], ns: argparse.Namespace, **overrides: Any) -> T:
    """Build ``cls`` from the parsed options (and explicit overrides)."""
    values = {f.name: getattr(ns, f.name) for f in dataclasses.fields(cls) if f.init and hasattr(ns, f.name)}  # type: ignore[arg-type]
    values.update(overrides)
    return cls(**values)


# -- models / training / evaluation -------------------------------------------------------------



def _field(default: Any, help: str, **meta: Any) -> Any:
    return dataclasses.field(default=default, metadata={"help": help, **meta})


# What runs written before these fields existed were trained with (the authors' models).
_MODEL_FIELDS_BEFORE_DEFAULTS_CHANGED: dict[str, Any] = {"dr_map": "position", "dr_init": "normal", "align": "left", "readout": "hard", "pos_init": "glorot"}


def _check_index_params(nprobe: int, ef_search: int | None) -> None:
    if nprobe < 1:
        raise ValueError(f"--nprobe must be >= 1, got {nprobe}")
    if ef_search is not None and ef_search < 1:
        raise ValueError(f"--ef-search must be >= 1, got {ef_search}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The model: which one and its sizes (paper: d = 64, K = 4, 3 routing iterations)."""

    model: str = dataclasses.field(metadata={"help": "model to train", "choices": MODEL_NAMES})
    dim: int = _field(64, "embedding size d")
    interests: int = _field(4, "number of interests K (multi-interest models; others use 1)")
    maxlen: int = _field(20, "history length: the last maxlen items before the cut (Books 20, Taobao 50)")
    routing_iters: int = _field(3, "dynamic-routing iterations (MIND, ComiRec-DR)")
    mind_relu: bool = _field(True, "MIND: ReLU projection of the capsules (the authors' Books setting)")
    dr_map: str = _field(
        "shared",
        "ComiRec-DR bilinear maps: one shared by all positions and interests (default, chosen on validation: "
        "docs/models.md), one per interest, or one per (position, interest) as the authors",
        choices=("position", "interest", "shared"),
    )
    dr_init: str = _field("normal", "ComiRec-DR map initialisation: N(0,1) as the authors, or glorot-uniform", choices=("normal", "glorot"))
    readout: str = _field(
        "auto",
        "multi-interest training readout: hard (eq. 8, the authors': the interest nearest the target), max "
        "(every item, target and negatives, scored by its best interest, as evaluation ranks), or auto: max for "
        "ComiRec-SA and ComiRec-DR (chosen on validation: docs/models.md), hard for MIND",
        choices=("auto", "hard", "max"),
    )
    align: str = _field(
        "left",
        "ComiRec-DR/-SA history layout for position-dependent parameters: left (authors; oldest at position 0) "
        "or right (most recent at the last position)",
        choices=("left", "right"),
    )
    pos_init: str = _field(
        "glorot",
        "ComiRec-SA positional embedding initialisation: glorot-uniform (authors) or zero",
        choices=("glorot", "zero"),
    )
    logit_scale: float = _field(
        1.0,
        "ComiRec-SA: the training logits (interest . item) multiplied by this (1 = the authors'); "
        "only training changes, not how a trained model ranks",
    )
    dropout: float = _field(0.0, "dropout rate, for the models that take one (0 = none)")

    @property
    def training_readout(self) -> str:
        """``readout`` with ``auto`` resolved for this model."""
        if self.readout != "auto":
            return self.readout
        return "max" if self.model in COMIREC else "hard"

    @classmethod
    def from_stored(cls, stored: dict[str, Any]) -> "ModelConfig":
        """The config a run directory's ``config.json`` describes. Fields added after a run was
        written take the value the model had then (the authors' settings), not today's default."""
        fields = {**_MODEL_FIELDS_BEFORE_DEFAULTS_CHANGED, **stored}
        if fields.get("readout") == "auto":
            # Runs store their resolved readout; "auto" was stored only before ComiRec-DR's auto
            # became max, when it meant max for ComiRec-SA and hard for the others.
            fields["readout"] = "max" if fields.get("model") == "comirec-sa" else "hard"
        return cls(**fields)

    def resolved(self) -> "ModelConfig":
        """This config with ``readout="auto"`` replaced by what it means today (what runs store)."""
        return dataclasses.replace(self, readout=self.training_readout)

    def __post_init__(self) -> None:
        spec(self.model)  # an unknown name is a ValueError listing the known ones
        for name in ("dim", "interests", "maxlen", "routing_iters"):
            check_size(name, getattr(self, name))
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        check_logit_scale(self.logit_scale)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Training: Adam, sampled softmax, validation Recall@50 every eval_every steps, early stop."""

    data: str = dataclasses.field(metadata={"help": "a prepared dataset directory (comirec prepare / comirec synth)"})
    out: str = dataclasses.field(metadata={"help": "run directory to create (or to resume with --resume)"})
    max_steps: int = _field(100_000, "training steps (batches) at most")
    max_minutes: float = _field(0.0, "wall-clock budget in minutes for training, evaluations included (0 = none)")
    batch_size: int = _field(128, "training batch size (Books 128, Taobao 256)")
    lr: float = _field(1e-3, "Adam learning rate")
    weight_decay: float = _field(0.0, "decoupled weight decay (AdamW; 0 = plain Adam, the authors' optimiser)")
    sparse_items: bool = _field(False, "item table with sparse gradients and lazy Adam (torch's SparseAdam: only the rows "
                                       "in a batch are updated, their moments included), for large catalogues where the "
                                       "dense Adam step over every row dominates (on CPUs: 8.5x at 1M items; on an H200 "
                                       "the dense step was the faster one); dense Adam is the authors'. Not with "
                                       "--loss full or --weight-decay")
    embedding_sharding: str = _field("none", "torchrec: the item table sharded row-wise over the training processes by TorchRec, "
                                             "trained by FBGEMM's fused row-wise Adagrad at --table-lr (its CPU kernels have no "
                                             "Adam), the rest data-parallel with Adam; none: every process holds the whole table "
                                             "(docs/scaling.md)", choices=("none", "torchrec"))
    table_lr: float = _field(0.1, "learning rate of the item table's row-wise Adagrad with --embedding-sharding torchrec "
                                  "(chosen on validation over Beauty, Sports and ml-100k: docs/scaling.md)")
    loss: str = _field("sampled", "sampled softmax (the paper) or full softmax (small catalogues)", choices=("sampled", "full"))
    neg_factor: int = _field(10, "sampled negatives per batch row: num_sampled = neg_factor x batch_size")
    min_hist: int = _field(4, "smallest history before a training cut (the authors use 4)")
    eval_every: int = _field(1000, "validate every this many steps")
    patience: int = _field(10, "stop after this many validations without a better Recall@50")
    eval_users: int = _field(0, "validate on the first this many validation users (0 = all)")
    final_eval_users: int = _field(0, "after training, evaluate the best model on the first this many valid and test users "
                                      "each (0 = all; metrics.json records the number): for datasets of millions of users")
    eval_batch_size: int = _field(1024, "users per evaluation batch")
    protocol: str = _field("standard", "metric formulas for validation", choices=PROTOCOLS)
    index: str = _field("Flat", "faiss index factory string for retrieval (Flat = exact; e.g. IVF4096,Flat or HNSW32)")
    nprobe: int = _field(16, "IVF indexes: inverted lists searched per query")
    ef_search: int | None = _field(None, "HNSW indexes: search beam width efSearch (default: faiss's, 16)")
    seed: int = _field(19, "random seed (model init, negatives, batches)")
    device: str = _field("auto", "auto (CUDA when available), cpu, cuda or cuda:N")
    threads: int = _field(0, "torch CPU threads (0 = auto: 1 on <= 2 cores or a busy machine, else one per core)")
    resume: bool = _field(False, "continue the run in --out from its last checkpoint")
    progress: bool = _field(True, "show a progress bar")
    tensorboard: str | None = _field(None, "also log every log.jsonl record to TensorBoard event files in this directory "
                                           "(needs tensorboard: the tensorboard extra)")
    nproc_per_node: int = _field(1, "data-parallel training processes on this machine: P > 1 starts torchrun with P ranks "
                                    "(gloo on CPU, NCCL on CUDA; --batch-size is the global batch, split over the ranks). "
                                    "Under torchrun (torchrun -m comirec train) its ranks are used and this is ignored")

    def __post_init__(self) -> None:
        _check_index_params(self.nprobe, self.ef_search)
        for name in ("max_steps", "batch_size", "neg_factor", "eval_every", "patience", "eval_batch_size", "nproc_per_node"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("min_hist", "eval_users", "final_eval_users", "threads"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not self.max_minutes >= 0:
            raise ValueError(f"max_minutes must be >= 0, got {self.max_minutes}")
        if self.sparse_items and self.loss == "full":
            raise ValueError("sparse_items: the full softmax scores every item, so its gradient is dense; "
                             "expected --loss sampled with --sparse-items")
        if self.sparse_items and self.weight_decay > 0:
            raise ValueError("sparse_items: lazy Adam has no weight decay; expected --weight-decay 0 with --sparse-items")
        if not self.table_lr > 0:
            raise ValueError(f"table_lr must be > 0, got {self.table_lr}")
        if self.embedding_sharding == "torchrec":
            for name, bad, expected in (("sparse_items", self.sparse_items, "no --sparse-items (the sharded table has its own optimizer)"),
                                        ("loss", self.loss == "full", "--loss sampled (the full softmax needs the whole table every step)"),
                                        ("weight_decay", self.weight_decay > 0, "--weight-decay 0 (the table's row-wise Adagrad has none)")):
                if bad:
                    raise ValueError(f"{name}: with --embedding-sharding torchrec, expected {expected}")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Evaluate a trained run on the valid or test users."""

    run: str = dataclasses.field(metadata={"help": "a run directory written by comirec train"})
    split: str = _field("test", "which users to evaluate", choices=("valid", "test"))
    lam: tuple[float, ...] = _field((0.0,), "λ values for the aggregation, comma-separated (inf allowed)")
    n: tuple[int, ...] = _field((20, 50), "list lengths N, comma-separated")
    protocol: str = _field("standard", "metric formulas: standard, or the authors' (comirec)", choices=PROTOCOLS)
    json: bool = _field(False, "print one JSON object on stdout and nothing else: λ -> metric -> value as a fraction "
                               "(0-1; the table prints %), and \"units\": \"fraction\"")
    data: str | None = _field(None, "evaluate on this prepared dataset instead of the run's own")
    device: str = _field("auto", "auto, cpu, cuda or cuda:N")
    batch_size: int = _field(1024, "users per evaluation batch")
    index: str = _field("Flat", "faiss index factory string (Flat = exact; e.g. IVF4096,Flat or HNSW32)")
    nprobe: int = _field(16, "IVF indexes: inverted lists searched per query")
    ef_search: int | None = _field(None, "HNSW indexes: search beam width efSearch (default: faiss's, 16)")
    plot: str | None = _field(None, "also write the Recall@N-Diversity@N curve over the --lam values to this PNG file "
                                    "(N = 50, else the largest --n; needs matplotlib: the plot extra)")
    progress: bool = _field(True, "show a progress bar over the users on a terminal (never with --json)")

    def __post_init__(self) -> None:
        _check_index_params(self.nprobe, self.ef_search)
        check_lams(self.lam)
        for n in self.n:
            if n < 1:
                raise ValueError(f"n (list length N) must be >= 1, got {n}")
        if not self.n:
            raise ValueError("n: expected at least one value")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


def _shared(cls: type, name: str) -> Any:
    """A field declared like ``cls``'s field ``name`` (default, help, choices): one definition."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    return dataclasses.field(default=f.default, metadata=f.metadata)


#: ReproduceConfig fields with a ModelConfig / TrainConfig name but another meaning: its
#: ``protocol`` chooses the printed tables' formulas; the runs validate with TrainConfig's default.
NOT_SHARED: tuple[str, ...] = ("protocol",)


@dataclasses.dataclass(frozen=True)
class ReproduceConfig:
    """Train all six models on one split and seed; print the paper's Table 3 and Table 5 layouts."""

    out: str = dataclasses.field(metadata={"help": "output directory (dataset copy if prepared here, runs, report.json, report.md)"})
    data: str | None = _field(
        None,
        "a prepared dataset, or a raw sequences directory like ../shared/data/amazon-beauty (prepared into OUT, "
        "with its split-*.tsv when present); default: $COMIREC_BEAUTY if set, else a small SYNTHETIC dataset",
    )
    budget_minutes: float = _field(8.0, "training wall-clock cap for all models together (0 = none), shared equally")
    max_steps: int = _field(20_000, "training steps per model at most")
    models: str = _field("all", "comma-separated models to run (default: all six)")
    lams: tuple[float, ...] = _field((0.0, 0.05, 0.1, 0.15, 0.2, 0.25), "λ values for the Table 5 layout")
    table4_k: tuple[int, ...] = _field((), "also train both ComiRec models with these K (e.g. 2,4,6,8) for the Table 4 layout")
    protocol: str = _field("standard", "metric formulas of the printed tables (the report holds both)", choices=PROTOCOLS)
    batch_size: int = _field(128, "training batch size")
    maxlen: int = _field(20, "history length")
    interests: int = _field(4, "K for the multi-interest models")
    dim: int = _field(64, "embedding size d")
    lr: float = _field(1e-3, "Adam learning rate")
    eval_every: int = _field(500, "validate every this many steps")
    patience: int = _field(5, "early stop after this many validations without gain")
    seed: int = _field(19, "random seed (the same for every model); with --seeds S: seed, seed+1, ..., seed+S-1")
    seeds: int = _field(1, "train every model with this many seeds: Table 3 cells become mean ± sd over seeds "
                           "(each seed run counts as one run in --budget-minutes; Table 4 uses the first seed)")
    tune_minutes: float = _field(0.0, "before the final runs, tune each learned model for this many minutes on the "
                                      "validation users (comirec tune) and train it with the chosen configuration (0 = no tuning)")
    # The other model and training options, defined once in ModelConfig / TrainConfig (same default,
    # help and choices); every field whose name both have reaches every run (run_configs).
    routing_iters: int = _shared(ModelConfig, "routing_iters")
    weight_decay: float = _shared(TrainConfig, "weight_decay")
    sparse_items: bool = _shared(TrainConfig, "sparse_items")
    loss: str = _shared(TrainConfig, "loss")
    neg_factor: int = _shared(TrainConfig, "neg_factor")
    min_hist: int = _shared(TrainConfig, "min_hist")
    index: str = _shared(TrainConfig, "index")
    nprobe: int = _shared(TrainConfig, "nprobe")
    ef_search: int | None = _shared(TrainConfig, "ef_search")
    device: str = _field("auto", "auto, cpu, cuda or cuda:N")
    threads: int = _field(0, "torch CPU threads (0 = auto: 1 on <= 2 cores or a busy machine, else one per core)")
    progress: bool = _field(True, "show progress bars")
    plot: bool = _field(True, "write OUT/tradeoff-<protocol>.png: Recall@50 against Diversity@50 over λ for each model "
                              "(needs matplotlib: the plot extra)")

    def __post_init__(self) -> None:
        if not self.budget_minutes >= 0:
            raise ValueError(f"budget_minutes must be >= 0, got {self.budget_minutes}")
        if self.seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {self.seeds}")
        if not self.tune_minutes >= 0:
            raise ValueError(f"tune_minutes must be >= 0, got {self.tune_minutes}")
        self.run_configs(COMIREC[0], data="", minutes=0.0)  # the shared fields, checked by their owners
        check_lams(self.lams, arg="lams")
        for k in self.table4_k:
            check_size("table4_k: K", k)

    def run_configs(self, model: str, data: str, minutes: float) -> tuple[ModelConfig, TrainConfig]:
        """The configuration of ``model``'s runs (before tuning): every ModelConfig / TrainConfig
        field that this config also has, by name (none copied by hand, none dropped; not
        ``protocol``, which names the printed tables' formulas here), on dataset ``data`` with a
        budget of ``minutes``; ``out`` and ``seed`` are set per run."""
        def shared(target: type) -> dict[str, Any]:
            return {f.name: getattr(self, f.name) for f in dataclasses.fields(target)
                    if f.init and hasattr(self, f.name) and f.name not in NOT_SHARED}

        train = {**shared(TrainConfig), "data": data, "out": "", "max_minutes": minutes}
        return ModelConfig(**{**shared(ModelConfig), "model": model}), TrainConfig(**train)


@dataclasses.dataclass(frozen=True)
class TuneConfig:
    """``comirec tune``: the search itself; the ModelConfig/TrainConfig options are the fixed base of every trial."""

    minutes: float = _field(10.0, "wall-clock budget of the whole search in minutes (trials stop there; the test "
                                  "evaluation of the chosen trial comes after)")
    trials: int = _field(0, "at most this many trials (0 = as many as --minutes allows)")
    params: str = _field("auto", "comma-separated fields to search (interests, lr, dim, weight_decay, dropout, maxlen, "
                                 "routing_iters, mind_relu, ...); auto = every one that applies to the model")
    prune_startup: int = _field(2, "never prune before this many trials have finished")
    prune_warmup: int = _field(2, "never prune a trial before its this-many-th validation")

    def __post_init__(self) -> None:
        if not self.minutes > 0:
            raise ValueError(f"minutes must be > 0, got {self.minutes}")
        for name in ("trials", "prune_startup", "prune_warmup"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


# -- comirec demo (python/comirec/demo.py) --


@dataclasses.dataclass(frozen=True)
class RecommendConfig:
    """Batch recommendation: top-n lists for many users, written as Parquet shards."""

    run: str = dataclasses.field(metadata={"help": "a run directory written by comirec train"})
    out: str = dataclasses.field(metadata={"help": "directory to create: Parquet shards with columns user_id, items (raw ids, "
                                                   "best first), scores; and _summary.json"})
    users: str | None = _field(None, "a Parquet file (or directory) with columns user_id and history: a list of raw item ids, "
                                     "oldest first")
    data: str | None = _field(None, "instead of --users: a prepared dataset, whose --split users get recommendations from their "
                                    "evaluation histories (the first 80% of each sequence)")
    split: str = _field("test", "with --data: which users", choices=("train", "valid", "test"))
    n: int = _field(50, "items per user")
    lam: float = _field(0.0, "λ of the aggregation: 0 = accuracy only, larger = more categories (inf allowed)")
    exclude_seen: bool = _field(True, "leave out the items of each user's history")
    index: str = _field("Flat", "faiss index factory string (Flat = exact; e.g. IVF4096,Flat, IVF4096,PQ32 or HNSW32)")
    nprobe: int = _field(16, "IVF indexes: inverted lists searched per query")
    ef_search: int | None = _field(None, "HNSW indexes: search beam width efSearch (default: faiss's, 16)")
    engine: str = _field("auto", "ray: a Ray Data pipeline (actor pools per stage); local: the same stages in this process; "
                                 "auto: ray when installed", choices=("auto", "ray", "local"))
    address: str | None = _field(None, "Ray cluster address (e.g. ray://head:10001 or auto); default: a local Ray started here")
    workers: int = _field(0, "Ray actors per stage (0 = half the cluster's CPUs)")
    batch_size: int = _field(4096, "users per batch")
    device: str = _field("auto", "where the model embeds histories: auto (CUDA when available), cpu, cuda or cuda:N")
    threads: int = _field(0, "torch and Faiss threads per worker (0 = automatic)")

    def __post_init__(self) -> None:
        _check_index_params(self.nprobe, self.ef_search)
        check_ns([self.n])
        check_lams([self.lam])
        if (self.users is None) == (self.data is None):
            raise ValueError("recommend: give exactly one of --users PATH.parquet and --data DIR")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        for name in ("workers", "threads"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """Synthetic candidates through aggregate + metrics: the accuracy/diversity trade-off of λ."""

    users: int = dataclasses.field(default=10_000, metadata={"help": "number of synthetic users"})
    interests: int = dataclasses.field(default=4, metadata={"help": "interests per user (K)"})
    per_interest: int = dataclasses.field(default=50, metadata={"help": "candidates retrieved per interest (N)"})
    items: int = dataclasses.field(default=100_000, metadata={"help": "catalogue size"})
    categories: int = dataclasses.field(default=200, metadata={"help": "number of item categories"})
    n: int = dataclasses.field(default=50, metadata={"help": "items recommended per user"})
    lams: tuple[float, ...] = dataclasses.field(
        default=(0.0, 0.05, 0.1, 0.25, 1.0, float("inf")),
        metadata={"help": "diversity factors λ to compare (comma-separated; inf allowed)"},
    )
    seed: int = dataclasses.field(default=0, metadata={"help": "random seed"})


# ---- data layer: `comirec prepare` and `comirec synth` ------------------------------------------



@dataclasses.dataclass(frozen=True)
class PrepareConfig:
    """Options of ``comirec prepare``: read a raw dataset, apply the protocol, write a prepared one."""

    format: str = dataclasses.field(
        metadata={"help": "input format", "choices": FORMAT_NAMES},
    )
    input: str = dataclasses.field(
        metadata={
            "help": "input file or directory (taobao: UserBehavior.csv; amazon-books: reviews JSON lines; "
            "movielens: a ratings file or its directory; sequences: <name>.txt or its directory; csv/parquet: a table)"
        }
    )
    out: str = dataclasses.field(metadata={"help": "output directory (written atomically)"})
    name: str | None = dataclasses.field(default=None, metadata={"help": "dataset name (default: from the input)"})
    categories: str | None = dataclasses.field(
        default=None,
        metadata={
            "help": "item -> category file: Amazon metadata (amazon-books), a genres file (movielens; found "
            "beside the ratings by default), or a TSV item<TAB>category[<TAB>...] (sequences, csv, parquet)"
        },
    )
    user_col: str = dataclasses.field(default="user_id", metadata={"help": "csv/parquet: user column"})
    item_col: str = dataclasses.field(default="item_id", metadata={"help": "csv/parquet: item column"})
    time_col: str = dataclasses.field(
        default="timestamp", metadata={"help": "csv/parquet: time column ('' = the file order is the time order)"}
    )
    category_col: str | None = dataclasses.field(
        default=None, metadata={"help": "csv/parquet: per-row category column (else --categories, else none)"}
    )
    delimiter: str = dataclasses.field(default=",", metadata={"help": "csv: field delimiter ('\\t' or 'tab' for tabs)"})
    header: bool = dataclasses.field(
        default=True, metadata={"help": "csv: the first line names the columns (else columns are named 0, 1, ...)"}
    )
    behaviors: str = dataclasses.field(
        default="pv", metadata={"help": "taobao: comma-separated behavior types to keep ('all' keeps every row)"}
    )
    min_item_count: int = dataclasses.field(default=5, metadata={"help": "keep items with at least this many interactions"})
    min_user_count: int = dataclasses.field(
        default=5, metadata={"help": "then keep users with at least this many remaining interactions"}
    )
    kcore: bool = dataclasses.field(
        default=False, metadata={"help": "repeat the two filters until both hold (a true k-core; the authors filter once)"}
    )
    seed: int = dataclasses.field(default=1230, metadata={"help": "seed of the user split"})
    split_ratio: tuple[float, ...] = dataclasses.field(
        default=(0.8, 0.1, 0.1), metadata={"help": "train,valid,test fractions of the users"}
    )
    split_file: str | None = dataclasses.field(
        default=None, metadata={"help": "use this user split (user_id<TAB>split per line, raw ids) instead of drawing one"}
    )
    overwrite: bool = dataclasses.field(default=False, metadata={"help": "replace --out if it exists"})
    block_mb: int = dataclasses.field(default=32, metadata={"help": "read the input in blocks of this many MiB"})
    progress: bool = dataclasses.field(default=True, metadata={"help": "show the rows read so far on a terminal"})


@dataclasses.dataclass(frozen=True)
class SynthConfig:
    """Options of ``comirec synth``: a SYNTHETIC prepared dataset with planted category interests."""

    users: int = dataclasses.field(metadata={"help": "number of users"})
    items: int = dataclasses.field(metadata={"help": "number of items (the catalogue; rarely drawn items stay in it)"})
    categories: int = dataclasses.field(metadata={"help": "number of categories (<= items)"})
    out: str = dataclasses.field(metadata={"help": "output directory (written atomically)"})
    interests_per_user: tuple[int, ...] = dataclasses.field(
        default=(2, 4), metadata={"help": "MIN,MAX latent category interests per user (uniform in the range)"}
    )
    mean_length: float = dataclasses.field(default=20.0, metadata={"help": "mean sequence length"})
    min_length: int = dataclasses.field(default=5, metadata={"help": "minimum sequence length"})
    max_length: int = dataclasses.field(default=500, metadata={"help": "maximum sequence length"})
    stickiness: float = dataclasses.field(
        default=0.7, metadata={"help": "probability that an event stays with the previous event's interest"}
    )
    item_skew: float = dataclasses.field(
        default=1.0, metadata={"help": "power-law exponent of item popularity within a category (0 = uniform)"}
    )
    category_skew: float = dataclasses.field(
        default=1.0, metadata={"help": "power-law exponent of category size and popularity (0 = uniform)"}
    )
    seed: int = dataclasses.field(default=0, metadata={"help": "random seed (the data and the user split)"})
    split_ratio: tuple[float, ...] = dataclasses.field(
        default=(0.8, 0.1, 0.1), metadata={"help": "train,valid,test fractions of the users"}
    )
    name: str = dataclasses.field(default="synthetic", metadata={"help": "dataset name"})
    overwrite: bool = dataclasses.field(default=False, metadata={"help": "replace --out if it exists"})
