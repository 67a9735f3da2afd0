"""``comirec tune``: a hyper-parameter search on the validation users only (Optuna).

Every trial is an ordinary training run (``OUT/trials/NNN``) whose objective is its best model's
validation Recall@50; a trial whose intermediate validation Recall@50 falls below the median of
the earlier trials at the same step is pruned (Optuna's MedianPruner). The first trial is the
given (base) configuration, so the chosen one is never worse than it on validation. The test
users are evaluated once, after the search, for the chosen trial only. The study is kept::

    OUT/study.db      the Optuna study (SQLite): every trial, its parameters and intermediate values
    OUT/best.json     the chosen parameters, its validation score, its run, and its test metrics
    OUT/trials/NNN    one run directory per trial (comirec evaluate reads them)

Given ``--seed``, the sampler (TPE) is deterministic; so is the search when the trials are bounded
by ``--max-steps`` rather than by time.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .config import ModelConfig, TrainConfig, TuneConfig
from .core import PROTOCOLS
from .models import spec, takes

if TYPE_CHECKING:
    from types import ModuleType

    from optuna.study import Study
    from optuna.trial import FrozenTrial, Trial

    from .data.prepared import PreparedDataset


def _trainable(model: str) -> bool:
    return spec(model).trainable


STUDY_DB = "study.db"
BEST_JSON = "best.json"
TRIALS = "trials"
#: Below this many seconds left, no new trial starts (it could not reach a validation).
MIN_TRIAL_SECONDS = 5.0


@dataclasses.dataclass(frozen=True)
class Param:
    """One searched field: where it lives, the values, and whether it applies to a model."""

    name: str
    kind: str  # "log" (float, log scale), "int" (uniform), "cat" (the listed values)
    values: tuple[Any, ...]  # (low, high) for log/int; the choices for cat
    applies: Callable[[str], bool]


#: The search space. A field is searched only if it exists in ModelConfig/TrainConfig and applies.
SPACE: tuple[Param, ...] = (
    Param("interests", "cat", (1, 2, 4, 8), lambda m: takes(m, "interests")),
    Param("lr", "log", (1e-4, 1e-2), _trainable),
    Param("dim", "cat", (32, 64, 128), _trainable),
    Param("weight_decay", "cat", (0.0, 1e-4, 1e-3, 1e-2, 1e-1), _trainable),
    Param("dropout", "cat", (0.0, 0.1, 0.2, 0.3, 0.5), lambda m: takes(m, "dropout")),
    Param("maxlen", "cat", (10, 20, 50), _trainable),
    Param("routing_iters", "int", (1, 5), lambda m: takes(m, "routing_iters")),
    Param("mind_relu", "cat", (True, False), lambda m: takes(m, "mind_relu")),
)


def _config_fields() -> dict[str, str]:
    """Field name -> "model" or "train"."""
    out = {f.name: "train" for f in dataclasses.fields(TrainConfig)}
    out.update({f.name: "model" for f in dataclasses.fields(ModelConfig)})
    return out


def _generic_options(model: str) -> list[Param]:
    """Model options added to ModelConfig later (a bool, or a field with choices) that the model
    takes (its registry entry's ``options``): searched over all their values."""
    known = {p.name for p in SPACE} | {"model"}
    out = []
    for f in dataclasses.fields(ModelConfig):
        if f.name in known or not takes(model, f.name):
            continue
        if "choices" in f.metadata:
            out.append(Param(f.name, "cat", tuple(f.metadata["choices"]), lambda m: True))
        elif isinstance(f.default, bool):
            out.append(Param(f.name, "cat", (True, False), lambda m: True))
    return out


def search_space(model: str, params: str = "auto") -> list[Param]:
    """The parameters searched for ``model``: all that apply (``auto``) or the named ones, each of
    which must exist in the configs and apply to the model."""
    fields = _config_fields()
    available = [p for p in SPACE if p.name in fields and p.applies(model)] + _generic_options(model)
    if params.strip() == "auto":
        chosen = available
    else:
        names = [t.strip() for t in params.split(",") if t.strip()]
        by_name = {p.name: p for p in available}
        for n in names:
            if n not in by_name:
                why = f"does not apply to {model}" if n in {p.name for p in SPACE} and n in fields else "is not a searchable field"
                raise ValueError(f"--params: {n!r} {why} (searchable for {model}: {', '.join(by_name) or 'nothing'})")
        chosen = [by_name[n] for n in dict.fromkeys(names)]
    if not chosen:
        raise ValueError(f"model {model} has nothing to tune (no searchable parameter applies to it)")
    return chosen


def _with_base(p: Param, base: Any) -> Param:
    """The base value is always inside the space (trial 0 is the base configuration)."""
    if p.kind == "cat":
        return p if base in p.values else dataclasses.replace(p, values=(*p.values, base))
    low, high = p.values
    return dataclasses.replace(p, values=(min(low, base), max(high, base)))


def _suggest(trial: Trial, p: Param) -> Any:
    if p.kind == "cat":
        return trial.suggest_categorical(p.name, list(p.values))
    if p.kind == "log":
        return trial.suggest_float(p.name, p.values[0], p.values[1], log=True)
    return trial.suggest_int(p.name, p.values[0], p.values[1])


def apply_params(model_cfg: ModelConfig, train_cfg: TrainConfig, params: dict[str, Any]) -> tuple[ModelConfig, TrainConfig]:
    fields = _config_fields()
    m = {k: v for k, v in params.items() if fields.get(k) == "model"}
    t = {k: v for k, v in params.items() if fields.get(k) == "train"}
    return dataclasses.replace(model_cfg, **m), dataclasses.replace(train_cfg, **t)


def _import_optuna() -> ModuleType:
    try:
        import optuna
    except ImportError:
        raise ImportError("comirec tune needs Optuna: pip install 'comirec[tune]' (or pip install optuna)") from None
    return optuna


def tune(model_cfg: ModelConfig, train_cfg: TrainConfig, tune_cfg: TuneConfig, *, dataset: PreparedDataset | None = None,
         evaluate_test: bool = True, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Search on the validation users; write ``study.db``, ``trials/`` and ``best.json`` into
    ``train_cfg.out``; return the content of ``best.json``. With ``evaluate_test`` the chosen
    trial's run is evaluated on the test users (once) and the result stored in ``best.json``."""
    optuna = _import_optuna()
    from .data import load_prepared

    say = log or (lambda text: None)
    out = Path(train_cfg.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"tune output directory {out} already exists and is not empty (choose another --out)")
    if train_cfg.resume:
        raise ValueError("--resume: a search cannot be resumed; start a new one in another --out")
    space = [_with_base(p, getattr(model_cfg, p.name, getattr(train_cfg, p.name, None))) for p in search_space(model_cfg.model, tune_cfg.params)]
    ds = dataset if dataset is not None else load_prepared(train_cfg.data)
    out.mkdir(parents=True, exist_ok=True)

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial of our own instead
    try:
        return _search(optuna, model_cfg, train_cfg, tune_cfg, space, ds, out, evaluate_test, say)
    finally:
        optuna.logging.set_verbosity(verbosity)


def _search(optuna: ModuleType, model_cfg: ModelConfig, train_cfg: TrainConfig, tune_cfg: TuneConfig, space: list[Param], ds: PreparedDataset,
            out: Path, evaluate_test: bool, say: Callable[[str], None]) -> dict[str, Any]:
    from .training import VALID_METRIC
    from .runs import METRICS

    storage = f"sqlite:///{(out / STUDY_DB).resolve()}"
    study = optuna.create_study(
        study_name=f"comirec-{model_cfg.model}", storage=storage, direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=train_cfg.seed, n_startup_trials=5),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=tune_cfg.prune_startup,
                                           n_warmup_steps=max(0, (tune_cfg.prune_warmup - 1) * train_cfg.eval_every + 1)),
    )
    base = {p.name: getattr(model_cfg, p.name, getattr(train_cfg, p.name, None)) for p in space}
    study.enqueue_trial(base)  # trial 0: the configuration given
    study.set_user_attr("model", model_cfg.model)
    study.set_user_attr("protocol", train_cfg.protocol)
    study.set_user_attr("base_model_config", dataclasses.asdict(model_cfg))
    study.set_user_attr("base_train_config", dataclasses.asdict(train_cfg))

    t_end = time.monotonic() + tune_cfg.minutes * 60.0

    def objective(trial: Trial) -> float:
        from .training import train

        params = {p.name: _suggest(trial, p) for p in space}
        m_cfg, t_cfg = apply_params(model_cfg, train_cfg, params)
        left = t_end - time.monotonic()
        minutes = left / 60.0 if not train_cfg.max_minutes else min(train_cfg.max_minutes, left / 60.0)
        run = out / TRIALS / f"{trial.number:03d}"
        t_cfg = dataclasses.replace(t_cfg, out=str(run), max_minutes=max(minutes, 1e-6))
        trial.set_user_attr("run", str(run))

        def on_validate(step: int, metrics: dict[str, float]) -> None:
            trial.report(metrics[VALID_METRIC], step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"validation {VALID_METRIC} {metrics[VALID_METRIC]:.4f} at step {step}")

        try:
            train(m_cfg, t_cfg, dataset=ds, on_validate=on_validate, evaluate_test=False)
        except optuna.TrialPruned as exc:
            say(f"trial {trial.number}: pruned ({exc})  {fmt_params(params)}")
            raise
        final = json.loads((run / METRICS).read_text())
        value = float(final["valid"][train_cfg.protocol]["0.0"][VALID_METRIC])
        trial.set_user_attr("steps", final["steps"])
        trial.set_user_attr("best_step", final["best_step"])
        say(f"trial {trial.number}: valid {VALID_METRIC} {100 * value:.3f}%  {fmt_params(params)}")
        return value

    def stop_when_out_of_time(study: Study, trial: FrozenTrial) -> None:
        if t_end - time.monotonic() < MIN_TRIAL_SECONDS:
            study.stop()

    t0 = time.monotonic()
    study.optimize(objective, n_trials=tune_cfg.trials or None, timeout=max(t_end - time.monotonic(), 0.0),
                   callbacks=[stop_when_out_of_time], gc_after_trial=False)
    seconds = time.monotonic() - t0
    states = [t.state for t in study.trials]
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise ValueError(f"no trial finished within --minutes {tune_cfg.minutes:g} ({len(states)} started): raise --minutes or lower --max-steps")
    best = study.best_trial
    m_best, t_best = apply_params(model_cfg, train_cfg, best.params)
    result: dict[str, Any] = {
        "model": model_cfg.model,
        "params": best.params,
        "trial": best.number,
        "run": best.user_attrs["run"],
        "valid": {"protocol": train_cfg.protocol, VALID_METRIC: best.value},
        "base_params": base,
        "model_config": dataclasses.asdict(m_best),
        "train_config": {k: v for k, v in dataclasses.asdict(t_best).items() if k not in ("out", "max_minutes")},
        "trials": {"total": len(states), "complete": len(done),
                   "pruned": sum(s == optuna.trial.TrialState.PRUNED for s in states)},
        "search_seconds": round(seconds, 1),
        "study": str(out / STUDY_DB),
    }
    if evaluate_test:
        result["test"] = evaluate_run_test(Path(best.user_attrs["run"]), ds, m_best, train_cfg)
    (out / BEST_JSON).write_text(json.dumps(result, indent=2) + "\n")
    return result


def evaluate_run_test(run: Path, ds: PreparedDataset, model_cfg: ModelConfig, train_cfg: TrainConfig) -> dict[str, Any]:
    """The chosen run on the test users (both protocols, N = 20 and 50, with standard errors)."""
    from .evaluation import evaluate_model, report_to_json
    from .runs import load_model
    from .device import resolve_device

    device = resolve_device(train_cfg.device)
    model, _ = load_model(run, device)
    rep = evaluate_model(model, ds, split="test", ns=(20, 50), protocols=PROTOCOLS, maxlen=model_cfg.maxlen,
                         batch_size=train_cfg.eval_batch_size, device=device, factory=train_cfg.index, stderr=True)
    return report_to_json(rep)


def fmt_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) and not isinstance(v, bool) and not math.isnan(v) else f"{k}={v}"
                     for k, v in params.items())


