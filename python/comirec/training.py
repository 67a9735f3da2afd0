"""Training: one loop for every model (none is special-cased by name), into a run directory
(its layout: :mod:`comirec.runs`).

Determinism: each step reseeds torch's generator from (seed, step) and the data layer's sampler
is a pure function of (seed, step), so a run is repeatable on CPU and a resumed run continues
exactly as if it had never stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from .config import ModelConfig, TrainConfig
from .core import PROTOCOLS
from . import distributed
from .device import as_torch_device as torch_device
from .device import auto_threads, resolve_device
from .models import build_model
from .runs import (BEST, CONFIG, ITEMS, LAST, LOG, METRICS, atomic_torch_save, atomic_write_text, load_checkpoint,
                   check_same_items, dataset_identity, load_model, load_run_config, write_items)

if TYPE_CHECKING:
    import torch

    from .data.prepared import PreparedDataset
    from .losses import Negatives, SampledSoftmaxLoss
    from .device import Device
    from .models.base import InterestModel
    from .sharding import ShardedItems

VALID_METRIC = "recall@50"


def _step_seed(seed: int, step: int) -> int:
    return (seed * 1_000_003 + step * 7_919 + 12_345) % (2**63 - 1)


class _StopFlag:
    """First Ctrl-C: finish the current step, save, stop. Second Ctrl-C: the usual interrupt."""

    def __init__(self) -> None:
        self.set = False
        self._old: Any = None

    def __enter__(self) -> "_StopFlag":
        import threading

        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.set:
            raise KeyboardInterrupt
        self.set = True

    def __exit__(self, *exc: Any) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def batch_loss(model: InterestModel, loss_fn: SampledSoftmaxLoss, history: torch.Tensor, mask: torch.Tensor,
               target: torch.Tensor, rng: np.random.Generator, readout: str = "hard") -> torch.Tensor:
    """The training loss of one batch (eqs. 8-10): interests, readout, (sampled) softmax.

    ``readout="hard"`` is eq. 8 (the authors'): the interest nearest the target is scored against
    the target and the negatives. ``"max"`` scores every item, target and negatives alike, by its
    best interest: the ranking function that retrieval + merge apply at evaluation.

    History, target and negative rows come from the item table in a single gather
    (:func:`gather_rows`), so the backward pass scatters into the table's gradient once."""
    rows, neg = gather_rows(model, loss_fn, history, target, rng)
    return loss_from_rows(model, loss_fn, rows, neg, mask, target, readout)


def gather_rows(model: InterestModel, loss_fn: SampledSoftmaxLoss, history: torch.Tensor, target: torch.Tensor,
                rng: np.random.Generator, sparse: bool = False) -> tuple[torch.Tensor, Negatives | None]:
    """The item-table rows of a batch, history (B·T), target (B) and negatives (S) in one gather
    (``sparse``: with a sparse gradient), and the negatives drawn (None: full softmax)."""
    import torch
    import torch.nn.functional as F

    ids, neg = batch_ids(loss_fn, history, target, rng)
    return F.embedding(ids, model.item_emb.weight, sparse=sparse), neg


def batch_ids(loss_fn: SampledSoftmaxLoss, history: torch.Tensor, target: torch.Tensor,
              rng: np.random.Generator) -> tuple[torch.Tensor, Negatives | None]:
    """The item ids whose rows a batch needs, history (B·T), target (B) and negatives (S), in
    :func:`gather_rows`'s order, and the negatives drawn (None: full softmax)."""
    import torch

    neg = None if loss_fn.exact else loss_fn.draw(rng, history.device)
    parts = [history.reshape(-1), target] + ([neg.ids] if neg is not None else [])
    return torch.cat(parts), neg


def loss_from_rows(model: InterestModel, loss_fn: SampledSoftmaxLoss, rows: torch.Tensor, neg: Negatives | None, mask: torch.Tensor,
                   target: torch.Tensor, readout: str) -> torch.Tensor:
    """:func:`batch_loss` from the gathered rows (:func:`gather_rows`)."""
    from .models import select_interest

    B, T = mask.shape
    his = rows[: B * T].view(B, T, -1) * mask.unsqueeze(-1)
    target_vec = rows[B * T : B * T + B]
    interests = model.encode(his, mask)
    user = interests if readout == "max" and interests.shape[1] > 1 else select_interest(interests, target_vec)
    if model.logit_scale != 1.0:
        user = user * model.logit_scale  # every logit interest . item, scaled
    if neg is None:
        from .losses import full_softmax_loss

        return full_softmax_loss(user, target, model.item_emb.weight)
    return loss_fn.loss(user, target, target_vec, neg, rows[B * T + B :])


def _loss_module(model: InterestModel, loss_fn: SampledSoftmaxLoss, readout: str) -> torch.nn.Module:
    """:func:`batch_loss` as a module whose parameters are the model's: what
    DistributedDataParallel wraps (its gradient hooks need the forward pass to go through it)."""
    from torch import nn

    class BatchLoss(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, history: torch.Tensor, mask: torch.Tensor, target: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
            return batch_loss(self.model, loss_fn, history, mask, target, rng, readout)

    return BatchLoss()


def _dense_loss_module(model: InterestModel, loss_fn: SampledSoftmaxLoss, readout: str) -> torch.nn.Module:
    """:func:`loss_from_rows` as a module whose parameters are the model's except the item table
    (``--sparse-items``): DistributedDataParallel cannot hold a parameter with sparse gradients
    (torch 2.15: "Cannot access storage of SparseTensorImpl" in the backward pass, even when told to
    ignore it), so the rows are gathered outside it and the table's gradient is all-reduced
    as a sparse tensor (:meth:`_Trainer.step`)."""
    from torch import nn

    class DenseLoss(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            object.__setattr__(self, "_model", model)  # not a submodule: its item table stays out
            self.parts = nn.ModuleList([m for m in model.children() if m is not model.item_emb])
            self.own = nn.ParameterList(list(model.parameters(recurse=False)))

        def forward(self, rows: torch.Tensor, neg: Negatives | None, mask: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return loss_from_rows(self._model, loss_fn, rows, neg, mask, target, readout)

        _model: InterestModel

    return DenseLoss()


class SparseItemsAdam:
    """``--sparse-items``: SparseAdam (lazy Adam) for the item table, Adam for the other parameters;
    one optimizer to the training loop (step, zero_grad, state_dict, load_state_dict)."""

    def __init__(self, model: InterestModel, lr: float) -> None:
        import torch

        table = model.item_emb.weight
        rest = [p for p in model.parameters() if p.requires_grad and p is not table]
        self.parts = [torch.optim.SparseAdam([table], lr=lr)] + ([torch.optim.Adam(rest, lr=lr)] if rest else [])

    def step(self) -> None:
        for o in self.parts:
            o.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.parts:
            o.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {"sparse_items": [o.state_dict() for o in self.parts]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        parts = state.get("sparse_items") if isinstance(state, dict) else None
        if not isinstance(parts, list) or len(parts) != len(self.parts):
            raise ValueError("the checkpoint's optimizer state is not that of --sparse-items (SparseAdam + Adam)")
        for o, s in zip(self.parts, parts):
            o.load_state_dict(s)


def make_optimizer(model: InterestModel, lr: float, device: Device, weight_decay: float = 0.0,
                   sparse_items: bool = False) -> Any:
    """Adam (dense, like the authors' TF Adam); with ``weight_decay`` > 0, AdamW: decoupled decay
    (``p -= lr * weight_decay * p`` each step, every parameter, the item table included), not an
    L2 term in the gradient. The fused kernel is ~20x faster than the default per-tensor loop on
    CPU for the item table. ``sparse_items``: :class:`SparseItemsAdam`."""
    import torch

    if sparse_items and model.item_emb.weight.requires_grad:
        return SparseItemsAdam(model, lr)

    params = [p for p in model.parameters() if p.requires_grad]
    def make(fused: bool | None) -> torch.optim.Optimizer:
        if weight_decay > 0:
            return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused)
        return torch.optim.Adam(params, lr=lr, fused=fused)

    try:
        return make(True)
    except RuntimeError:  # a device without the fused kernel
        return make(None)


def train(
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    *,
    dataset: PreparedDataset | None = None,
    on_step: Callable[[int], None] | None = None,
    on_validate: Callable[[int, dict[str, float]], None] | None = None,
    evaluate_test: bool = True,
) -> Path:
    """Train (or resume, ``cfg.resume``) a run and write its final metrics; returns the run
    directory. ``on_step(step)`` is called after each step (tests use it to interrupt);
    ``on_validate(step, metrics)`` after each validation is logged (an exception it raises stops
    the run: ``comirec tune`` prunes so). ``evaluate_test=False`` leaves the test users out of
    ``metrics.json`` (validation-only callers: the tuner, and reproduce, which evaluates them itself)."""
    import torch

    from .data import load_prepared

    if cfg.embedding_sharding == "torchrec":  # before anything is written: an ImportError saying what to install
        from .sharding import _import_torchrec

        _import_torchrec()
    ds = dataset if dataset is not None else load_prepared(cfg.data)
    world = distributed.world_from_env()  # torchrun's ranks; one process without it
    distributed.check_batch(world, cfg.batch_size)
    device = distributed.rank_device(world, resolve_device(cfg.device))
    threads_before = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(cfg.threads or max(1, auto_threads() // world.local_size))
    started = distributed.init(world, device, always=cfg.embedding_sharding == "torchrec")
    try:
        # One writer per run directory: rank 0 writes it, the other ranks only read it.
        with _run_lock(Path(cfg.out)) if world.main else contextlib.nullcontext():
            return _train(model_cfg, cfg, ds, device, on_step, on_validate, evaluate_test, world)
    finally:
        torch.set_num_threads(threads_before)  # a library call leaves the process as it found it
        if started:
            distributed.shutdown()


def _run_lock(run: Path) -> Any:
    from .data._writing import OutputBusyError, OutputLock, write_error

    if os.path.lexists(run) and not run.is_dir():
        raise FileExistsError(f"--out {run}: exists and is not a directory; expected a run directory")
    lock = OutputLock(run)
    try:
        return lock.acquire()
    except OutputBusyError:
        raise
    except (NotADirectoryError, FileExistsError):
        raise FileExistsError(f"--out {run}: a parent path is a file, not a directory") from None
    except OSError as exc:
        raise write_error(exc, lock.path) from None


def _train(model_cfg: ModelConfig, cfg: TrainConfig, ds: PreparedDataset, device: Device, on_step: Callable[[int], None] | None,
           on_validate: Callable[[int, dict[str, float]], None] | None = None, evaluate_test: bool = True,
           world: distributed.World = distributed.World()) -> Path:
    import torch

    from .evaluation import evaluate_model, report_to_json
    from .retrieval import resolve_backend

    run = Path(cfg.out)
    # Rank 0 creates (or, resuming, reads) the run; every rank then reads the same resume state.
    model_cfg, cfg = distributed.from_main(world, lambda: _prepare_run(run, model_cfg, cfg, ds))
    resume_state = load_checkpoint(run / LAST) if cfg.resume and (run / LAST).is_file() else None

    torch.manual_seed(cfg.seed)
    model = build_model(model_cfg, ds.n_items).to(device)
    eval_kwargs: dict[str, Any] = dict(maxlen=model_cfg.maxlen, batch_size=cfg.eval_batch_size, device=device, factory=cfg.index,
                                       nprobe=cfg.nprobe, ef_search=cfg.ef_search)
    retrieval = {"backend": resolve_backend(cfg.index, str(device)), "factory": cfg.index, "nprobe": cfg.nprobe, "ef_search": cfg.ef_search}
    with _LogFile(run / LOG) if world.main else contextlib.nullcontext() as log_f, \
            _tensorboard(cfg.tensorboard if world.main else None) as tb:

        def log(record: dict[str, Any]) -> None:
            if log_f is None:
                return  # ranks other than 0 write nothing
            log_f.write(json.dumps(record) + "\n")
            if tb is not None:
                tb(record)

        log({"event": "retrieval", **retrieval})

        def validate() -> dict[str, float]:
            rep = evaluate_model(model, ds, split="valid", ns=(50,), protocols=(cfg.protocol,), max_users=cfg.eval_users or None, **eval_kwargs)
            return rep[cfg.protocol][0.0]

        if model.trainable:
            trainer = _Trainer(model, model_cfg, cfg, ds, device, run, validate, log, on_validate, world)
            summary = trainer.fit(resume_state, on_step)
            if not world.main:
                distributed.barrier(world)  # rank 0 evaluates the best checkpoint and writes metrics.json
                return run
        elif world.distributed:
            raise ValueError(f"model {model_cfg.model} is fitted by counting, not by gradient steps: train it in one process")
        else:
            model.fit_sequences(ds.indptr, ds.items, ds.users("train"))
            atomic_torch_save(model.state_dict(), run / BEST)
            metrics = validate()
            log({"step": 0, "event": "fitted", "valid": metrics})
            if on_validate is not None:
                on_validate(0, metrics)
            summary = {"best_step": 0, "steps": 0, "train_seconds": 0.0, "train_samples_per_s": None}
        model, _ = load_model(run, device)
        for split in ("valid", "test") if evaluate_test else ("valid",):
            rep = evaluate_model(model, ds, split=split, ns=(20, 50), protocols=PROTOCOLS,
                                 max_users=cfg.final_eval_users or None, **eval_kwargs)
            summary[split] = report_to_json(rep)
        if cfg.final_eval_users:
            summary["final_eval_users"] = cfg.final_eval_users  # the first this many of each split
        summary["retrieval"] = retrieval
        summary["units"] = "fraction"  # the metrics are 0-1 (the printed tables are in %)
        atomic_write_text(run / METRICS, json.dumps(summary, indent=2) + "\n")
        log({"event": "done", "steps": summary["steps"], "best_step": summary["best_step"]})
    distributed.barrier(world)
    return run


# Options that may change when a run is resumed; everything else comes from the stored config.
_RESUMABLE = ("max_steps", "max_minutes", "patience", "progress", "device", "threads", "resume", "out", "data", "tensorboard",
              "nproc_per_node", "final_eval_users")
# Of those, the ones that change the run's length: a new value is written back to config.json.
EXTENDABLE = ("max_steps", "max_minutes", "patience")
# What a killed `comirec train` may leave before it wrote config.json: a new run may start there.
_CREATION_LEFTOVERS = {ITEMS, ITEMS + ".tmp", CONFIG + ".tmp"}


@contextlib.contextmanager
def _tensorboard(logdir: str | None) -> Iterator[Any]:
    """The TensorBoard writer of ``--tensorboard``, or None (not asked, or not installed: one line)."""
    if logdir is None:
        yield None
        return
    from .tracking import TensorBoardLog, TrackingUnavailable

    try:
        tb = TensorBoardLog(logdir)
    except TrackingUnavailable as exc:
        print(f"--tensorboard: skipped: {exc}; log.jsonl has every record", file=sys.stderr)
        yield None
        return
    try:
        yield tb
    finally:
        tb.close()


class _LogFile:
    """``log.jsonl`` opened for appending; a line cut short by a kill is completed first (so the
    next record starts on its own line); write errors name the file."""

    def __init__(self, path: Path) -> None:
        from .data._writing import write_error

        self.path = path
        try:
            self._f = open(path, "a+b")
            if self._f.tell() > 0:
                self._f.seek(-1, os.SEEK_END)
                if self._f.read(1) != b"\n":
                    self._f.write(b"\n")
        except OSError as exc:
            raise write_error(exc, path) from None

    def write(self, text: str) -> None:
        from .data._writing import write_error

        try:
            self._f.write(text.encode())
            self._f.flush()
        except OSError as exc:
            raise write_error(exc, self.path) from None

    def __enter__(self) -> "_LogFile":
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self._f.close()
        except OSError:
            pass


def resume_config(run: Path, model_cfg: ModelConfig | None, cfg: TrainConfig, given: set[str] | None = None,
                  notice: Callable[[str], None] | None = None) -> tuple[ModelConfig, TrainConfig]:
    """The settings of ``--resume``: every setting from the run's config.json, except the options
    in ``given`` (those the user passed). A given option that differs from the stored one is
    applied with a notice when it only changes the run's length or where it runs (max_steps,
    max_minutes, patience, device, threads, progress, data); any other difference is refused
    (ValueError), since it would change the model, the data or the optimisation."""
    stored = load_run_config(run)
    try:
        stored_model = ModelConfig.from_stored(stored["model"])
        stored_train = dict(stored["train"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{run / CONFIG}: not a comirec run configuration ({exc})") from None
    given = set(given) if given is not None else {f.name for f in dataclasses.fields(TrainConfig)} | {"model"}
    notice = notice or (lambda text: print(text, file=sys.stderr))
    refused = []
    for name in sorted(given):
        if name in ("resume", "out"):
            continue
        if name in dataclasses.asdict(stored_model) or name == "model":
            if model_cfg is None:
                continue
            # resolved: a readout "auto" compares as what it means
            old, new = getattr(stored_model.resolved(), name), getattr(model_cfg.resolved(), name)
        elif name in stored_train:
            old, new = stored_train[name], getattr(cfg, name)
        else:
            continue
        if isinstance(old, list):
            old = tuple(old)
        if old == new:
            continue
        flag = "--" + name.replace("_", "-")
        if name in _RESUMABLE:
            if name in EXTENDABLE:
                notice(f"--resume: {flag} {new} applied (the run was started with {old}; config.json updated)")
        else:
            refused.append(f"{flag} {new} (the run has {old})")
    if refused:
        raise ValueError(
            f"--resume {run}: {'; '.join(refused)}: --resume takes every setting from {run / CONFIG}; only "
            "--max-steps, --max-minutes, --patience, --device, --threads, --progress, --tensorboard and --nproc-per-node may change "
            "(start a new run with another --out to change the others)"
        )
    merged = {k: v for k, v in stored_train.items() if k in {f.name for f in dataclasses.fields(TrainConfig)}}
    for name in _RESUMABLE:
        if name in given or name not in merged:
            merged[name] = getattr(cfg, name)
    for name, value in merged.items():
        if isinstance(value, list):
            merged[name] = tuple(value)
    return stored_model, TrainConfig(**merged)


def _prepare_run(run: Path, model_cfg: ModelConfig, cfg: TrainConfig, ds: PreparedDataset) -> tuple[ModelConfig, TrainConfig]:
    """Create the run directory (or, resuming, read it): the model and training configs the run has."""
    if cfg.resume:
        stored = load_run_config(run)
        check_same_items(stored["dataset"]["n_items"], ds, f"--resume {run}")
        model_cfg = ModelConfig.from_stored(stored["model"])
        cfg = dataclasses.replace(cfg, **{k: v for k, v in stored["train"].items() if k not in _RESUMABLE})
        extended = {k: getattr(cfg, k) for k in EXTENDABLE if stored["train"].get(k) != getattr(cfg, k)}
        if extended:  # a later --resume continues with the extended budget
            stored["train"].update(extended)
            atomic_write_text(run / CONFIG, json.dumps(stored, indent=2) + "\n")
        if not (run / ITEMS).is_file():  # killed between config.json and items.npz
            write_items(run, ds)
        return model_cfg, cfg
    if run.exists() and (not run.is_dir() or set(os.listdir(run)) - _CREATION_LEFTOVERS):
        raise FileExistsError(f"run directory {run} already exists and is not empty (pass --resume to continue it, or choose another --out)")
    try:
        run.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from .data._writing import write_error

        raise write_error(exc, run) from None
    model_cfg = model_cfg.resolved()  # the readout it trains with, whatever "auto" means later
    config = {"model": dataclasses.asdict(model_cfg), "train": dataclasses.asdict(cfg), "dataset": dataset_identity(ds)}
    write_items(run, ds)
    atomic_write_text(run / CONFIG, json.dumps(config, indent=2) + "\n")  # last: it marks the run as created
    return model_cfg, cfg


@dataclasses.dataclass
class _State:
    """The counters saved in ``last.pt`` beside the model and the optimizer."""

    step: int = 0
    best: float = -math.inf
    best_step: int = 0
    bad: int = 0  # validations since the last improvement
    elapsed: float = 0.0  # wall-clock seconds, validations included
    train_time: float = 0.0  # seconds inside training steps only

    def rate(self, batch_size: int) -> float:
        return self.step * batch_size / max(self.train_time, 1e-9)


class _Trainer:
    """The gradient loop: steps, periodic validation, best/last checkpoints, early stop."""

    def __init__(self, model: InterestModel, model_cfg: ModelConfig, cfg: TrainConfig, ds: PreparedDataset, device: Device, run: Path,
                 validate: Callable[[], dict[str, float]], log: Callable[[dict[str, Any]], None],
                 on_validate: Callable[[int, dict[str, float]], None] | None = None,
                 world: distributed.World = distributed.World()) -> None:
        from .data import TrainSampler
        from .losses import make_loss

        self.model, self.cfg, self.model_cfg, self.device, self.run = model, cfg, model_cfg, device, run
        self.validate, self.log, self.on_validate, self.world = validate, log, on_validate, world
        self.torch_device = torch_device(device)
        # --embedding-sharding torchrec: the item table sharded over the ranks (comirec.sharding);
        # the model's own table is then the whole-table copy that validation and checkpoints read
        self.table: ShardedItems | None = None
        self.table_state: torch.Tensor | None = None  # its optimizer state, gathered for last.pt
        if cfg.embedding_sharding == "torchrec" and model.item_emb.weight.requires_grad:
            from .sharding import ShardedItems

            self.table = ShardedItems(model, world, self.torch_device, cfg.table_lr)
        self.optimizer = make_optimizer(model, cfg.lr, device, cfg.weight_decay, cfg.sparse_items)
        # --sparse-items, and a sharded table: the item table's rows are gathered outside the (DDP) loss module
        self.sparse = cfg.sparse_items and model.item_emb.weight.requires_grad
        # The negatives of the global batch: with P ranks, every rank draws the same ones.
        self.loss_fn = make_loss(cfg.loss, ds.n_items, cfg.neg_factor * cfg.batch_size)
        if self.sparse and self.loss_fn.exact:
            raise ValueError(f"sparse_items: {cfg.neg_factor} x {cfg.batch_size} negatives cover all {ds.n_items} items, so "
                             "the softmax is the full one and its gradient dense; expected a smaller --neg-factor or "
                             "--batch-size with --sparse-items")
        self.sampler = TrainSampler(ds.indptr, ds.items, users=ds.users("train"), batch_size=cfg.batch_size,
                                    maxlen=model_cfg.maxlen, min_hist=cfg.min_hist, seed=cfg.seed)
        # This process's rows of each global batch (all of them in one process).
        self.rows = world.rows(cfg.batch_size) if world.distributed else slice(None)
        outside = self.sparse or self.table is not None
        self.loss_step: Any = (_dense_loss_module if outside else _loss_module)(model, self.loss_fn, model_cfg.training_readout)
        if world.distributed:  # DDP averages the ranks' gradients in the backward pass
            import torch.distributed as dist
            from torch.nn.parallel import DistributedDataParallel

            if self.sparse and dist.get_backend() != "gloo":
                raise ValueError(f"sparse_items: the {dist.get_backend()} backend has no sparse all-reduce; "
                                 "expected CPU ranks (gloo) with --sparse-items, or a dense item table")
            model.batch_rows = (self.rows.start, cfg.batch_size)
            dev = self.torch_device
            self.loss_step = DistributedDataParallel(self.loss_step, device_ids=[dev.index] if dev.type == "cuda" else None)
            if self.sparse:  # outside DDP: start every rank from rank 0's table, as DDP does for the rest
                dist.broadcast(model.item_emb.weight.data, 0)
        self.st = _State()

    def save_last(self) -> None:
        optimizer = self.optimizer.state_dict()
        if self.table is not None:  # gathered by sync_table, on every rank, before rank 0 saves
            optimizer = {"dense": optimizer, "table_state": self.table_state}
        state = {"model": self.model.state_dict(), "optimizer": optimizer, **dataclasses.asdict(self.st)}
        atomic_torch_save(state, self.run / LAST)

    def sync_table(self) -> None:
        """A sharded table (every rank calls it): on rank 0, the whole table into the model's own
        copy, and its optimizer state kept for ``save_last``."""
        if self.table is not None and (gathered := self.table.gather()) is not None:
            weight, self.table_state = gathered
            self.model.item_emb.weight.data.copy_(weight)

    def restore(self, saved: dict[str, Any]) -> None:
        self.model.load_state_dict(saved.pop("model"))
        optimizer = saved.pop("optimizer")
        if self.table is not None:
            if not (isinstance(optimizer, dict) and "table_state" in optimizer):
                raise ValueError("the checkpoint was not written with --embedding-sharding torchrec (no sharded table state)")
            self.table.load(self.model.item_emb.weight.detach(), optimizer["table_state"])
            optimizer = optimizer["dense"]
        self.optimizer.load_state_dict(optimizer)
        self.st = _State(**saved)

    def step(self, step: int) -> Any:
        import torch

        # MIND's and ComiRec-DR's random routing logits, per step (with P ranks, each takes its rows
        # of the global batch's draw: model.batch_rows)
        torch.manual_seed(_step_seed(self.cfg.seed, step))
        rng = np.random.default_rng([self.cfg.seed, step])  # the negatives: the same on every rank
        batch = self.sampler.batch(step)
        rows = self.rows
        history = torch.from_numpy(batch.history[rows]).to(self.device, non_blocking=True)
        mask = torch.from_numpy(batch.mask[rows]).to(self.device, non_blocking=True)
        target = torch.from_numpy(batch.target[rows]).to(self.device, non_blocking=True)
        if self.table is not None:
            ids, neg = batch_ids(self.loss_fn, history, target, rng)
            loss = self.loss_step(self.table.lookup(ids), neg, mask, target)
        elif self.sparse:
            gathered, neg = gather_rows(self.model, self.loss_fn, history, target, rng, sparse=True)
            loss = self.loss_step(gathered, neg, mask, target)
        else:
            loss = self.loss_step(history, mask, target, rng)
        self.optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(loss)
        if self.sparse and self.world.distributed:  # the table's rows: summed over ranks, averaged as DDP does
            import torch.distributed as dist

            table = self.model.item_emb.weight
            assert table.grad is not None  # every batch gathers rows of the table
            grad = table.grad.coalesce()
            dist.all_reduce(grad)
            table.grad = grad / self.world.size
        self.optimizer.step()
        return loss.detach()

    def checkpoint(self, mean_loss: float | None) -> float:
        """Validate; keep the best model; save the resumable state; log. Returns Recall@50.
        With several ranks, rank 0 does it and the others take its counters."""
        st = self.st

        def validate_and_save() -> tuple[dict[str, float], float, int, int]:
            metrics = self.validate()
            value = metrics[VALID_METRIC]
            if value > st.best:
                st.best, st.best_step, st.bad = value, st.step, 0
                atomic_torch_save(self.model.state_dict(), self.run / BEST)
            else:
                st.bad += 1
            self.save_last()
            self.log({"step": st.step, "loss": mean_loss, "valid": metrics, "best": st.best, "best_step": st.best_step,
                      "elapsed_s": round(st.elapsed, 3), "train_samples_per_s": round(st.rate(self.cfg.batch_size), 1)})
            return metrics, st.best, st.best_step, st.bad

        self.sync_table()
        metrics, st.best, st.best_step, st.bad = distributed.from_main(self.world, validate_and_save)
        self.model.train()
        if self.on_validate is not None:
            self.on_validate(st.step, metrics)
        return metrics[VALID_METRIC]

    def fit(self, resume_state: dict[str, Any] | None, on_step: Callable[[int], None] | None) -> dict[str, Any]:
        if resume_state is not None:
            self.restore(resume_state)
        reason = self._loop(on_step)
        st, cfg = self.st, self.cfg
        self.sync_table()
        if self.world.main:
            self.save_last()
        self.log({"event": "stopped", "reason": reason, "step": st.step, "elapsed_s": round(st.elapsed, 3)})
        if reason == "interrupted":
            print(f"interrupted at step {st.step}: checkpoint saved in {self.run}; continue with: "
                  f"comirec train --data {cfg.data} --out {self.run} --resume", file=sys.stderr)
            raise KeyboardInterrupt
        if distributed.from_main(self.world, lambda: not (self.run / BEST).is_file()):  # stopped before any validation
            self.checkpoint(None)
        import torch

        return {"best_step": st.best_step, "steps": st.step, "stop_reason": reason, "threads": torch.get_num_threads(),
                "train_seconds": round(st.train_time, 3), "train_samples_per_s": round(st.rate(cfg.batch_size), 1)}

    def _loop(self, on_step: Callable[[int], None] | None) -> str:
        """Train until a stop condition; returns its name."""
        from tqdm import tqdm

        cfg, st = self.cfg, self.st
        budget = cfg.max_minutes * 60.0 if cfg.max_minutes > 0 else math.inf
        loss_sum, loss_n, last_valid = 0.0, 0, "–"  # no validation yet
        bar = tqdm(total=cfg.max_steps, initial=st.step, disable=not (cfg.progress and self.world.main), dynamic_ncols=True, file=sys.stderr,
                   desc=self.model_cfg.model)
        self.model.train()
        t_start = time.perf_counter() - st.elapsed
        try:
            with _StopFlag() as stop:
                while st.step < cfg.max_steps and st.bad < cfg.patience:
                    t0 = time.perf_counter()
                    loss_sum = loss_sum + self.step(st.step)  # a tensor: no device sync per step
                    st.step += 1
                    loss_n += 1
                    st.train_time += time.perf_counter() - t0
                    if st.step % 20 == 0:
                        bar.set_postfix(loss=f"{float(loss_sum) / loss_n:.4f}", val_r50=last_valid, refresh=False)
                    bar.update(1)
                    if on_step is not None:
                        on_step(st.step)
                    if st.step % cfg.eval_every == 0 or st.step == cfg.max_steps:
                        st.elapsed = time.perf_counter() - t_start
                        mean_loss = float(loss_sum) / loss_n
                        last_valid = f"{self.checkpoint(mean_loss):.4f}"
                        bar.set_postfix(loss=f"{mean_loss:.4f}", val_r50=last_valid)  # shown at once
                        loss_sum, loss_n = 0.0, 0
                    st.elapsed = time.perf_counter() - t_start
                    local = "interrupted" if stop.set else "max_minutes" if st.elapsed >= budget and self.world.main else None
                    reason = distributed.stop_reason(self.world, local, self.torch_device)
                    if reason is not None:
                        return reason
            return "patience" if st.bad >= cfg.patience else "max_steps"
        finally:
            bar.close()


