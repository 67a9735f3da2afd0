"""comirec tune: validation-only search, pruning, the study kept, the test users evaluated once."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
optuna = pytest.importorskip("optuna", reason="comirec tune needs the optional Optuna dependency (comirec[tune])")

from _models_helpers import make_synth  # noqa: E402

import comirec.evaluation  # noqa: E402
import comirec.models  # noqa: E402
import comirec.tune  # noqa: E402
from comirec.cli import main  # noqa: E402
from comirec.config import ModelConfig, TrainConfig, TuneConfig  # noqa: E402
from comirec.data import load_prepared  # noqa: E402
from comirec.training import make_optimizer, train
from comirec.runs import load_model  # noqa: E402

TINY = ["--dim", "16", "--maxlen", "12", "--batch-size", "64", "--eval-batch-size", "256", "--threads", "1", "--no-progress"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(make_synth(tmp_path_factory.mktemp("tune") / "synth", users=800, items=800, categories=8).path)


class SplitSpy:
    """A dataset that records which user splits are read, and whether a trial was running then."""

    def __init__(self, ds: Any) -> None:
        self._ds = ds
        self.calls: list[tuple[str, bool]] = []
        self.in_search = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ds, name)

    def users(self, split: str) -> Any:
        self.calls.append((split, self.in_search))
        return self._ds.users(split)


def _study(out: Path) -> Any:
    return optuna.load_study(study_name=None, storage=f"sqlite:///{out / 'study.db'}")


def test_tune_uses_validation_only_and_evaluates_test_once(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = SplitSpy(load_prepared(data))
    test_evals: list[str] = []
    real_eval = comirec.evaluation.evaluate_model

    def counting_eval(model: Any, dataset: Any, **kw: Any) -> Any:
        if kw.get("split") == "test":
            test_evals.append("evaluate_model")
        return real_eval(model, dataset, **kw)

    monkeypatch.setattr(comirec.evaluation, "evaluate_model", counting_eval)
    real_optimize = optuna.Study.optimize

    def optimize(self: Any, *a: Any, **kw: Any) -> Any:  # mark the end of the search
        try:
            return real_optimize(self, *a, **kw)
        finally:
            spy.in_search = False

    monkeypatch.setattr(optuna.Study, "optimize", optimize)
    out = tmp_path / "study"
    mcfg = ModelConfig(model="comirec-sa", dim=16, interests=2, maxlen=12)
    tcfg = TrainConfig(data=str(data), out=str(out), max_steps=20, eval_every=10, batch_size=64, eval_batch_size=256,
                       threads=1, progress=False, seed=3)
    best = comirec.tune.tune(mcfg, tcfg, TuneConfig(minutes=2, trials=3, params="lr,interests,weight_decay"), dataset=spy)

    # the test users were read once, after the search; during it only train and valid
    assert [c for c in spy.calls if c[0] == "test"] == [("test", False)]
    assert {split for split, during in spy.calls if during} == {"train", "valid"}
    assert test_evals == ["evaluate_model"]

    study = _study(out)
    assert len(study.trials) == 3 and len(list((out / "trials").iterdir())) == 3
    assert study.trials[0].params == {"lr": 1e-3, "interests": 2, "weight_decay": 0.0}  # trial 0: the base
    on_disk = json.loads((out / "best.json").read_text())
    assert on_disk == json.loads(json.dumps(best))
    assert on_disk["trial"] == study.best_trial.number and on_disk["params"] == study.best_trial.params
    assert on_disk["valid"]["recall@50"] == study.best_value == max(t.value for t in study.trials if t.value is not None)
    run = out / "trials" / f"{study.best_trial.number:03d}"
    assert Path(on_disk["run"]) == run
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["valid"]["standard"]["0.0"]["recall@50"] == on_disk["valid"]["recall@50"]
    assert "test" not in metrics  # trials never evaluate the test users
    assert on_disk["model_config"]["interests"] == on_disk["params"]["interests"]
    assert on_disk["train_config"]["lr"] == on_disk["params"]["lr"]
    # the stored test metrics are those of the chosen run
    model, _ = load_model(run)
    ref = real_eval(model, load_prepared(data), split="test", ns=(50,), maxlen=12)
    assert on_disk["test"]["standard"]["0.0"]["recall@50"] == pytest.approx(ref["standard"][0.0]["recall@50"])


def test_terrible_learning_rate_is_pruned(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # lr is searched over a good value and a useless one; the pruner stops the useless trials at
    # their first validation
    monkeypatch.setattr(comirec.tune, "SPACE", (comirec.tune.Param("lr", "cat", (1e-2, 1e-9), lambda m: True),))
    out = tmp_path / "study"
    argv = ["tune", "--data", str(data), "--model", "youtube-dnn", "--out", str(out), "--minutes", "2", "--trials", "5",
            "--max-steps", "30", "--eval-every", "10", "--lr", "1e-2", "--prune-startup", "1", "--prune-warmup", "1", "--seed", "0", *TINY]
    assert main(argv) == 0
    study = _study(out)
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned, [(t.params, t.state) for t in study.trials]
    for t in pruned:
        assert t.params["lr"] == 1e-9
        assert list(t.intermediate_values) == [10]  # stopped at its first validation
        run = out / "trials" / f"{t.number:03d}"
        assert not (run / "metrics.json").exists()
        assert len([line for line in (run / "log.jsonl").read_text().splitlines() if '"valid"' in line]) == 1
    assert json.loads((out / "best.json").read_text())["params"]["lr"] == 1e-2
    assert json.loads((out / "best.json").read_text())["trials"]["pruned"] == len(pruned)


def test_same_seed_same_search(data: Path, tmp_path: Path) -> None:
    def params(out: Path) -> list[dict[str, Any]]:
        argv = ["tune", "--data", str(data), "--model", "comirec-sa", "--out", str(out), "--trials", "3", "--max-steps", "10",
                "--eval-every", "10", "--params", "lr,dim", "--seed", "5", *TINY]
        assert main(argv) == 0
        return [t.params for t in _study(out).trials]

    first = params(tmp_path / "a")
    assert first == params(tmp_path / "b")
    assert len({json.dumps(p, sort_keys=True) for p in first}) > 1


def test_search_space_follows_the_model() -> None:
    sa = {p.name for p in comirec.tune.search_space("comirec-sa")}
    assert {"interests", "lr", "dim", "weight_decay", "maxlen"} <= sa and "routing_iters" not in sa
    assert {"routing_iters", "mind_relu"} <= {p.name for p in comirec.tune.search_space("mind")}
    assert "interests" not in {p.name for p in comirec.tune.search_space("youtube-dnn")}
    # dropout is searched exactly for the models that take it
    for name in ("youtube-dnn", "comirec-sa", "comirec-dr"):
        assert ("dropout" in {p.name for p in comirec.tune.search_space(name)}) == comirec.models.takes(name, "dropout")
    with pytest.raises(ValueError, match="nothing to tune"):
        comirec.tune.search_space("mostpop")
    with pytest.raises(ValueError, match="'interests' does not apply to youtube-dnn"):
        comirec.tune.search_space("youtube-dnn", "lr,interests")
    with pytest.raises(ValueError, match="'colour' is not a searchable field"):
        comirec.tune.search_space("comirec-sa", "colour")


def test_cli_bad_input(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["tune", "--data", str(data), "--model", "youtube-dnn", "--out", str(tmp_path / "o"), *TINY]
    assert main([*base, "--minutes", "0"]) == 2
    assert "minutes must be > 0" in capsys.readouterr().err
    assert main([*base, "--params", "routing_iters"]) == 2
    assert "'routing_iters' does not apply" in capsys.readouterr().err
    assert main([*base, "--align", "right"]) == 2  # a model option the model does not take: refused, not ignored
    assert "--align: model youtube-dnn does not take it" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    assert main([*base[:5], "--out", str(tmp_path / "full"), *TINY]) == 2
    assert "already exists" in capsys.readouterr().err


# -- the training hooks the tuner relies on --


def test_on_validate_sees_every_validation_and_can_stop_the_run(data: Path, tmp_path: Path) -> None:
    seen: list[tuple[int, float]] = []

    class Stop(Exception):
        pass

    def on_validate(step: int, metrics: dict[str, float]) -> None:
        seen.append((step, metrics["recall@50"]))
        if step >= 20:
            raise Stop

    mcfg = ModelConfig(model="youtube-dnn", dim=16, maxlen=12)
    tcfg = TrainConfig(data=str(data), out=str(tmp_path / "run"), max_steps=50, eval_every=10, batch_size=64,
                       eval_batch_size=256, threads=1, progress=False)
    with pytest.raises(Stop):
        train(mcfg, tcfg, on_validate=on_validate)
    assert [s for s, _ in seen] == [10, 20]
    logged = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [(r["step"], r["valid"]["recall@50"]) for r in logged if "valid" in r] == seen


def test_weight_decay_is_decoupled_adamw() -> None:
    import torch

    model = torch.nn.Linear(3, 3)
    assert type(make_optimizer(model, 1e-3, "cpu")) is torch.optim.Adam
    opt = make_optimizer(model, 1e-3, "cpu", weight_decay=0.1)
    assert type(opt) is torch.optim.AdamW and opt.param_groups[0]["weight_decay"] == 0.1
    # decoupled: with a zero gradient the parameters still shrink by lr * weight_decay
    before = model.weight.detach().clone()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    np.testing.assert_allclose(model.weight.detach().numpy(), (before * (1 - 1e-3 * 0.1)).numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="weight_decay must be >= 0"):
        TrainConfig(data="d", out="o", weight_decay=-1.0)


def test_dropout_is_never_silently_ignored() -> None:
    from comirec.models import build_model, takes

    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        ModelConfig(model="comirec-sa", dropout=1.0)
    without = [m for m in ("youtube-dnn", "gru4rec", "mind", "comirec-dr", "comirec-sa") if not takes(m, "dropout")]
    if not without:
        pytest.skip("every model takes dropout now: nothing to refuse")
    with pytest.raises(ValueError, match=f"dropout: model {without[0]} takes no dropout"):
        build_model(ModelConfig(model=without[0], dropout=0.2), 10)
    assert build_model(ModelConfig(model=without[0], dropout=0.0), 10) is not None


def test_dropout_reaches_a_model_that_takes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A model registered with ``dropout`` among its options gets it, and tune searches it."""
    import dataclasses
    import types

    import comirec.models
    from comirec.models import build_model

    class WithDropout(comirec.models.YouTubeDNN):
        def __init__(self, n_items: int, dim: int = 64, dropout: float = 0.0) -> None:
            super().__init__(n_items, dim=dim)
            self.dropout_rate = dropout

    module = types.ModuleType("comirec.models._test_with_dropout")
    module.WithDropout = WithDropout  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    entry = dataclasses.replace(comirec.models.REGISTRY["youtube-dnn"], target="_test_with_dropout:WithDropout", options=("dropout",))
    monkeypatch.setitem(comirec.models.REGISTRY, "youtube-dnn", entry)
    assert "dropout" in {p.name for p in comirec.tune.search_space("youtube-dnn")}
    assert build_model(ModelConfig(model="youtube-dnn", dim=8, dropout=0.3), 10).dropout_rate == 0.3
