"""Training: one loop for every model (none is special-cased by name).

A run directory holds::

    config.json    model + training config, and the dataset's identity (path, sizes)
    items.npz      item raw ids and categories (so serving needs no dataset)
    best.pt        the best model by validation Recall@50
    last.pt        model + optimizer + counters, for --resume (also written on Ctrl-C)
    log.jsonl      one JSON line per validation (and a last line for the end of training)
    metrics.json   final valid/test metrics of the best model, both protocols

Determinism: each step reseeds torch's generator from (seed, step) and the data layer's sampler
is a pure function of (seed, step), so a run is repeatable on CPU and a resumed run continues
exactly as if it had never stopped.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .config import ModelConfig, TrainConfig

CONFIG = "config.json"
ITEMS = "items.npz"
BEST = "best.pt"
LAST = "last.pt"
LOG = "log.jsonl"
METRICS = "metrics.json"
VALID_METRIC = "recall@50"


def resolve_device(spec: str) -> Any:
    import torch

    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {spec!r} requested but CUDA is not available (use --device cpu or auto)")
        return torch.device(spec)
    raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {spec!r}")


def dataset_identity(ds: Any) -> dict[str, Any]:
    header = dict(getattr(ds, "header", {}) or {})
    return {
        "path": str(Path(ds.path).resolve()),
        "name": header.get("name"),
        "synthetic": bool(header.get("synthetic", False)),
        "n_users": int(ds.n_users),
        "n_items": int(ds.n_items),
        "n_cats": int(ds.n_cats),
        "n_interactions": int(ds.n_interactions),
    }


def check_same_items(run_items: int, ds: Any, what: str) -> None:
    if int(ds.n_items) != int(run_items):
        raise ValueError(
            f"{what}: the checkpoint was trained on {run_items} items but dataset {ds.path} has {ds.n_items}: "
            "a checkpoint only works with the dataset it was trained on"
        )


def auto_threads() -> int:
    """CPU threads for training when none are given: 1 on machines of up to 2 cores or when the
    other cores are already busy (1-minute load average, read once before training starts),
    else torch's default (one per core). The models are small: torch's OpenMP threads spend
    much of a step waiting for each other, and when another process takes a core they
    spin-wait, so 2 threads on a shared 2-core machine can be several times slower than 1
    (benches/README.md); on an idle one 2 threads are ~1.6x faster (pass --threads 2)."""
    import torch

    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # not available on this platform
        load = 0.0
    return 1 if cores <= 2 or load > cores - 1 else torch.get_num_threads()


def _step_seed(seed: int, step: int) -> int:
    return (seed * 1_000_003 + step * 7_919 + 12_345) % (2**63 - 1)


def _atomic_torch_save(obj: Any, path: Path) -> None:
    import torch

    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_items(run: Path, ds: Any) -> None:
    raw = np.asarray(ds.item_raw)
    if raw.dtype == object:
        raw = raw.astype(str)
    tmp = run / (ITEMS + ".tmp.npz")
    np.savez(tmp, item_raw=raw, item_cat=np.asarray(ds.item_cat, dtype=np.int32))
    os.replace(tmp, run / ITEMS)


def load_run_config(run: Path) -> dict[str, Any]:
    run = Path(run)
    path = run / CONFIG
    if not run.is_dir():
        raise FileNotFoundError(f"run directory {run} does not exist")
    if not path.is_file():
        raise ValueError(f"{run} is not a comirec run directory (no {CONFIG}; create one with comirec train)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None


def build_from_config(model_cfg: ModelConfig, n_items: int) -> Any:
    from .models import build_model

    return build_model(
        model_cfg.model,
        n_items,
        dim=model_cfg.dim,
        interests=model_cfg.interests,
        maxlen=model_cfg.maxlen,
        routing_iters=model_cfg.routing_iters,
        mind_relu=model_cfg.mind_relu,
    )


def load_model(run: Path | str, device: Any = "cpu") -> tuple[Any, dict[str, Any]]:
    """The run's best model (its last checkpoint if no validation happened yet), in eval mode."""
    import torch

    run = Path(run)
    cfg = load_run_config(run)
    model_cfg = ModelConfig(**cfg["model"])
    model = build_from_config(model_cfg, int(cfg["dataset"]["n_items"]))
    for name in (BEST, LAST):
        if (run / name).is_file():
            state = torch.load(run / name, map_location="cpu", weights_only=True)
            model.load_state_dict(state["model"] if "optimizer" in state else state)
            break
    else:
        raise ValueError(f"{run} has no checkpoint ({BEST} or {LAST}): its training never reached a save")
    model.to(device).eval()
    return model, cfg


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


def batch_loss(model: Any, loss_fn: Any, history: Any, mask: Any, target: Any, rng: np.random.Generator) -> Any:
    """The training loss of one batch (eqs. 8-10): interests, hard readout, (sampled) softmax.

    History, target and negative rows come from the item table in a single gather, so the
    backward pass scatters into the table's gradient once."""
    import torch
    import torch.nn.functional as F

    from .models import select_interest

    weight = model.item_emb.weight
    B, T = history.shape
    neg = None if loss_fn.exact else loss_fn.draw(rng, history.device)
    parts = [history.reshape(-1), target] + ([neg.ids] if neg is not None else [])
    rows = F.embedding(torch.cat(parts), weight)
    his = rows[: B * T].view(B, T, -1) * mask.unsqueeze(-1)
    target_vec = rows[B * T : B * T + B]
    user = select_interest(model.encode(his, mask), target_vec)
    if neg is None:
        from .losses import full_softmax_loss

        return full_softmax_loss(user, target, weight)
    return loss_fn.loss(user, target, target_vec, neg, rows[B * T + B :])


def make_optimizer(model: Any, lr: float, device: Any) -> Any:
    """Adam (dense, like the authors' TF Adam). The fused kernel is ~20x faster than the default
    per-tensor loop on CPU for the item table."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except RuntimeError:  # a device without the fused kernel
        return torch.optim.Adam(params, lr=lr)


def train(
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    *,
    dataset: Any = None,
    on_step: Callable[[int], None] | None = None,
) -> Path:
    """Train (or resume, ``cfg.resume``) a run and write its final metrics; returns the run
    directory. ``on_step(step)`` is called after each step (tests use it to interrupt)."""
    import torch

    from .data import load_prepared

    ds = dataset if dataset is not None else load_prepared(cfg.data)
    device = resolve_device(cfg.device)
    threads_before = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(cfg.threads or auto_threads())
    try:
        return _train(model_cfg, cfg, ds, device, on_step)
    finally:
        torch.set_num_threads(threads_before)  # a library call leaves the process as it found it


def _train(model_cfg: ModelConfig, cfg: TrainConfig, ds: Any, device: Any, on_step: Callable[[int], None] | None) -> Path:
    import torch

    from .evaluation import evaluate_model, report_to_json
    from .retrieval import resolve_backend

    run = Path(cfg.out)
    model_cfg, cfg, resume_state = _prepare_run(run, model_cfg, cfg, ds)

    torch.manual_seed(cfg.seed)
    model = build_from_config(model_cfg, ds.n_items).to(device)
    eval_kwargs: dict[str, Any] = dict(maxlen=model_cfg.maxlen, batch_size=cfg.eval_batch_size, device=device, factory=cfg.index,
                                       nprobe=cfg.nprobe, ef_search=cfg.ef_search)
    retrieval = {"backend": resolve_backend(cfg.index, str(device)), "factory": cfg.index, "nprobe": cfg.nprobe, "ef_search": cfg.ef_search}
    with open(run / LOG, "a") as log_f:

        def log(record: dict[str, Any]) -> None:
            log_f.write(json.dumps(record) + "\n")
            log_f.flush()

        log({"event": "retrieval", **retrieval})

        def validate() -> dict[str, float]:
            rep = evaluate_model(model, ds, split="valid", ns=(50,), protocols=(cfg.protocol,), max_users=cfg.eval_users or None, **eval_kwargs)
            return rep[cfg.protocol][0.0]

        if model.trainable:
            summary = _Trainer(model, model_cfg, cfg, ds, device, run, validate, log).fit(resume_state, on_step)
        else:
            model.fit_sequences(ds.indptr, ds.items, ds.users("train"))
            _atomic_torch_save(model.state_dict(), run / BEST)
            log({"step": 0, "event": "fitted", "valid": validate()})
            summary = {"best_step": 0, "steps": 0, "train_seconds": 0.0, "train_samples_per_s": None}
        model, _ = load_model(run, device)
        for split in ("valid", "test"):
            rep = evaluate_model(model, ds, split=split, ns=(20, 50), protocols=("standard", "comirec"), **eval_kwargs)
            summary[split] = report_to_json(rep)
        summary["retrieval"] = retrieval
        _atomic_write_text(run / METRICS, json.dumps(summary, indent=2) + "\n")
        log({"event": "done", "steps": summary["steps"], "best_step": summary["best_step"]})
    return run


# Options that may change when a run is resumed; everything else comes from the stored config.
_RESUMABLE = ("max_steps", "max_minutes", "patience", "progress", "device", "threads", "resume", "out", "data")


def _prepare_run(run: Path, model_cfg: ModelConfig, cfg: TrainConfig, ds: Any) -> tuple[ModelConfig, TrainConfig, Any]:
    import torch

    if cfg.resume:
        stored = load_run_config(run)
        check_same_items(stored["dataset"]["n_items"], ds, f"--resume {run}")
        model_cfg = ModelConfig(**stored["model"])
        cfg = dataclasses.replace(cfg, **{k: v for k, v in stored["train"].items() if k not in _RESUMABLE})
        state = torch.load(run / LAST, map_location="cpu", weights_only=True) if (run / LAST).is_file() else None
        return model_cfg, cfg, state
    if run.exists() and (not run.is_dir() or any(run.iterdir())):
        raise FileExistsError(f"run directory {run} already exists and is not empty (pass --resume to continue it, or choose another --out)")
    run.mkdir(parents=True, exist_ok=True)
    config = {"model": dataclasses.asdict(model_cfg), "train": dataclasses.asdict(cfg), "dataset": dataset_identity(ds)}
    _atomic_write_text(run / CONFIG, json.dumps(config, indent=2) + "\n")
    write_items(run, ds)
    return model_cfg, cfg, None


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

    def __init__(self, model: Any, model_cfg: ModelConfig, cfg: TrainConfig, ds: Any, device: Any, run: Path,
                 validate: Callable[[], dict[str, float]], log: Callable[[dict[str, Any]], None]) -> None:
        from .data import TrainSampler
        from .losses import make_loss

        self.model, self.cfg, self.model_cfg, self.device, self.run = model, cfg, model_cfg, device, run
        self.validate, self.log = validate, log
        self.optimizer = make_optimizer(model, cfg.lr, device)
        self.loss_fn = make_loss(cfg.loss, ds.n_items, cfg.neg_factor * cfg.batch_size)
        self.sampler = TrainSampler(ds.indptr, ds.items, users=ds.users("train"), batch_size=cfg.batch_size,
                                    maxlen=model_cfg.maxlen, min_hist=cfg.min_hist, seed=cfg.seed)
        self.st = _State()

    def save_last(self) -> None:
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), **dataclasses.asdict(self.st)}
        _atomic_torch_save(state, self.run / LAST)

    def restore(self, saved: dict[str, Any]) -> None:
        self.model.load_state_dict(saved.pop("model"))
        self.optimizer.load_state_dict(saved.pop("optimizer"))
        self.st = _State(**saved)

    def step(self, step: int) -> Any:
        import torch

        torch.manual_seed(_step_seed(self.cfg.seed, step))  # MIND's random routing logits
        rng = np.random.default_rng([self.cfg.seed, step])  # the negatives
        batch = self.sampler.batch(step)
        history = torch.from_numpy(batch.history).to(self.device, non_blocking=True)
        mask = torch.from_numpy(batch.mask).to(self.device, non_blocking=True)
        target = torch.from_numpy(batch.target).to(self.device, non_blocking=True)
        loss = batch_loss(self.model, self.loss_fn, history, mask, target, rng)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def checkpoint(self, mean_loss: float | None) -> float:
        """Validate; keep the best model; save the resumable state; log. Returns Recall@50."""
        st = self.st
        metrics = self.validate()
        value = metrics[VALID_METRIC]
        if value > st.best:
            st.best, st.best_step, st.bad = value, st.step, 0
            _atomic_torch_save(self.model.state_dict(), self.run / BEST)
        else:
            st.bad += 1
        self.save_last()
        self.log({"step": st.step, "loss": mean_loss, "valid": metrics, "best": st.best, "best_step": st.best_step,
                  "elapsed_s": round(st.elapsed, 3), "train_samples_per_s": round(st.rate(self.cfg.batch_size), 1)})
        self.model.train()
        return value

    def fit(self, resume_state: dict[str, Any] | None, on_step: Callable[[int], None] | None) -> dict[str, Any]:
        if resume_state is not None:
            self.restore(resume_state)
        reason = self._loop(on_step)
        st, cfg = self.st, self.cfg
        self.save_last()
        self.log({"event": "stopped", "reason": reason, "step": st.step, "elapsed_s": round(st.elapsed, 3)})
        if reason == "interrupted":
            print(f"interrupted at step {st.step}: checkpoint saved in {self.run}; continue with: "
                  f"comirec train --data {cfg.data} --out {self.run} --resume", file=sys.stderr)
            raise KeyboardInterrupt
        if not (self.run / BEST).is_file():  # stopped before any validation (a tiny time budget)
            self.checkpoint(None)
        import torch

        return {"best_step": st.best_step, "steps": st.step, "stop_reason": reason, "threads": torch.get_num_threads(),
                "train_seconds": round(st.train_time, 3), "train_samples_per_s": round(st.rate(cfg.batch_size), 1)}

    def _loop(self, on_step: Callable[[int], None] | None) -> str:
        """Train until a stop condition; returns its name."""
        from tqdm import tqdm

        cfg, st = self.cfg, self.st
        budget = cfg.max_minutes * 60.0 if cfg.max_minutes > 0 else math.inf
        loss_sum, loss_n, last_valid = 0.0, 0, float("nan")
        bar = tqdm(total=cfg.max_steps, initial=st.step, disable=not cfg.progress, dynamic_ncols=True, file=sys.stderr, desc=self.model_cfg.model)
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
                        bar.set_postfix(loss=f"{float(loss_sum) / loss_n:.4f}", val_r50=f"{last_valid:.4f}", refresh=False)
                    bar.update(1)
                    if on_step is not None:
                        on_step(st.step)
                    if st.step % cfg.eval_every == 0 or st.step == cfg.max_steps:
                        st.elapsed = time.perf_counter() - t_start
                        last_valid = self.checkpoint(float(loss_sum) / loss_n)
                        loss_sum, loss_n = 0.0, 0
                    st.elapsed = time.perf_counter() - t_start
                    if stop.set:
                        return "interrupted"
                    if st.elapsed >= budget:
                        return "max_minutes"
            return "patience" if st.bad >= cfg.patience else "max_steps"
        finally:
            bar.close()


def cli_train(args: Any) -> int:
    """``comirec train``: options come from ModelConfig + TrainConfig."""
    from .config import from_namespace

    if args.resume:
        stored = load_run_config(Path(args.out))
        model_cfg = ModelConfig(**stored["model"])
        if args.model is not None and args.model != model_cfg.model:
            raise ValueError(f"--model {args.model} does not match the run being resumed ({model_cfg.model})")
    else:
        if args.model is None:
            raise ValueError("--model is required: one of mostpop, youtube-dnn, gru4rec, mind, comirec-dr, comirec-sa")
        model_cfg = from_namespace(ModelConfig, args)
    cfg = from_namespace(TrainConfig, args)
    from .retrieval import check_factory

    check_factory(cfg.index, arg="--index")
    run = train(model_cfg, cfg)
    final = json.loads((run / METRICS).read_text())
    test = final["test"]["standard"]["0.0"]
    print(f"{model_cfg.model}: best step {final['best_step']} of {final['steps']}; test (standard protocol) "
          + ", ".join(f"{k} {100 * v:.3f}" for k, v in test.items()) + f"  [%]  -> {run}")
    print("retrieval: " + ", ".join(f"{k} {v}" for k, v in final["retrieval"].items()), file=sys.stderr)
    return 0
