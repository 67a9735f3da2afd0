"""comirec reproduce --seeds / --tune-minutes: mean ± sd over seeds, paired differences over seeds
and users from the saved per-user arrays, the test users evaluated once per run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")

from _models_helpers import make_synth  # noqa: E402

import comirec.evaluation  # noqa: E402
from comirec.cli import main  # noqa: E402
from comirec.data import load_prepared  # noqa: E402
from comirec.runs import load_model  # noqa: E402

TINY = ["--max-steps", "20", "--eval-every", "10", "--budget-minutes", "0", "--dim", "16", "--maxlen", "12",
        "--batch-size", "64", "--threads", "1", "--no-progress"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(make_synth(tmp_path_factory.mktemp("repro") / "synth", users=800, items=800, categories=8).path)


def test_two_seeds(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    passes: list[int] = []
    real_batches = comirec.evaluation._per_user_batches
    real_eval = comirec.evaluation.evaluate_model
    real_per_user = comirec.evaluation.per_user_metrics
    ds = load_prepared(data)
    n_test = len(ds.users("test"))

    def batches(model: Any, dataset: Any, users: Any, *a: Any, **kw: Any) -> Any:
        if len(users) == n_test and np.array_equal(users, dataset.users("test")):
            passes.append(1)
        return real_batches(model, dataset, users, *a, **kw)

    def no_test_eval(model: Any, dataset: Any, **kw: Any) -> Any:
        assert kw.get("split") != "test", "reproduce evaluates the test users through one per-user pass"
        return real_eval(model, dataset, **kw)

    monkeypatch.setattr(comirec.evaluation, "_per_user_batches", batches)
    monkeypatch.setattr(comirec.evaluation, "evaluate_model", no_test_eval)
    monkeypatch.setattr(comirec.evaluation, "per_user_metrics", None)  # not needed any more
    out = tmp_path / "repro"
    argv = ["reproduce", "--data", str(data), "--out", str(out), "--models", "youtube-dnn,comirec-sa", "--seeds", "2",
            "--lams", "0,0.25", *TINY]
    assert main(argv) == 0
    assert len(passes) == 4  # 2 models x 2 seeds, one pass over the test users each
    text = capsys.readouterr().out
    assert "seeds 19, 20 (cells: mean ± sd over seeds)" in text and " ± " in text.split("Table 3 layout")[1]
    assert "Paired Recall@50 differences over the same test users and 2 seeds" in text

    report = json.loads((out / "report.json").read_text())
    assert report["seeds"] == [19, 20]
    runs = {m: [out / "runs" / m, out / "runs" / f"{m}-seed20"] for m in ("youtube-dnn", "comirec-sa")}
    arrays = {m: [np.load(r / "test_per_user.npz") for r in rs] for m, rs in runs.items()}
    for m, rs in runs.items():
        entry = report["models"][m]
        assert entry["seeds"] == [19, 20] and entry["runs"] == [str(r) for r in rs]
        assert [json.loads((r / "config.json").read_text())["train"]["seed"] for r in rs] == [19, 20]
        for p in ("standard", "comirec"):
            per_seed = [e["test"][p]["0.0"]["recall@50"] for e in entry["per_seed"]]
            assert entry["test"][p]["0.0"]["recall@50"] == pytest.approx(np.mean(per_seed))
            assert entry["test_sd"][p]["0.0"]["recall@50"] == pytest.approx(np.std(per_seed, ddof=1))
            # each seed's mean is that of its saved per-user array
            for e, z in zip(entry["per_seed"], arrays[m]):
                assert e["test"][p]["0.0"]["recall@50"] == pytest.approx(np.nanmean(z[f"{p}|0.0|recall@50"]))
    # the saved arrays are the runs' own per-user metrics (the library's per-user path)
    model, _ = load_model(runs["comirec-sa"][1])
    ref = real_per_user(model, ds, split="test", n=50, maxlen=12)["recall@50"]
    np.testing.assert_allclose(arrays["comirec-sa"][1]["standard|0.0|recall@50"], ref)
    # paired differences: per user the difference averaged over seeds, then mean and se over users
    for p in ("standard", "comirec"):
        d = np.array([a[f"{p}|0.0|recall@50"] - b[f"{p}|0.0|recall@50"] for a, b in zip(arrays["comirec-sa"], arrays["youtube-dnn"])])
        by_user = d.mean(axis=0)
        got = report["paired"][p]["comirec-sa - youtube-dnn"]
        assert got["users"] == n_test
        assert got["mean"] == pytest.approx(by_user.mean())
        assert got["se"] == pytest.approx(by_user.std(ddof=1) / math.sqrt(n_test))
        assert got["per_seed"] == pytest.approx(list(d.mean(axis=1)))
        assert got["seed_sd"] == pytest.approx(np.std(d.mean(axis=1), ddof=1))
    # a second call reuses every run and its saved arrays: no training, no evaluation pass
    passes.clear()
    assert main(argv) == 0
    assert passes == [] and "trained in" not in capsys.readouterr().err
    assert json.loads((out / "report.json").read_text())["paired"] == report["paired"]


def test_one_seed_keeps_the_report_layout(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "repro"
    assert main(["reproduce", "--data", str(data), "--out", str(out), "--models", "youtube-dnn,comirec-sa", *TINY]) == 0
    report = json.loads((out / "report.json").read_text())
    entry = report["models"]["comirec-sa"]
    assert isinstance(entry["steps"], int) and "test_sd" not in entry
    assert set(entry["test"]["standard"]["0.0"]) >= {"recall@50", "recall@50_se", "ndcg@20", "hitrate@50", "diversity@50"}
    paired = report["paired"]["standard"]["comirec-sa - youtube-dnn"]
    assert paired["seed_sd"] is None and len(paired["per_seed"]) == 1
    assert paired["per_seed"][0] == pytest.approx(paired["mean"])
    # the run's metrics.json carries its test metrics, as after comirec train
    metrics = json.loads((out / "runs" / "comirec-sa" / "metrics.json").read_text())
    assert metrics["test"]["comirec"]["0.0"]["recall@50"] == entry["test"]["comirec"]["0.0"]["recall@50"]


def test_tune_minutes_uses_the_chosen_configuration(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("optuna", reason="--tune-minutes needs the optional Optuna dependency (comirec[tune])")
    out = tmp_path / "repro"
    assert main(["reproduce", "--data", str(data), "--out", str(out), "--models", "youtube-dnn", "--tune-minutes", "0.08", *TINY]) == 0
    report = json.loads((out / "report.json").read_text())
    tuned = report["tuned"]["youtube-dnn"]
    best = json.loads((out / "tune" / "youtube-dnn" / "best.json").read_text())
    assert tuned["params"] == best["params"] == report["models"]["youtube-dnn"]["tuned_params"]
    assert "test" not in best  # the search stays on the validation users
    stored = json.loads((out / "runs" / "youtube-dnn" / "config.json").read_text())
    for k, v in tuned["params"].items():
        assert {**stored["model"], **stored["train"]}[k] == v
    assert "Tuned on the validation users" in (out / "report.md").read_text()
    assert "Tuned on the validation users" in capsys.readouterr().out


def test_every_shared_option_reaches_the_runs() -> None:
    """reproduce's model/training options reach every run by name (loss, neg_factor, routing_iters
    and index were once dropped on the way)."""
    import dataclasses

    from comirec.config import NOT_SHARED, ModelConfig, ReproduceConfig, TrainConfig

    cfg = ReproduceConfig(out="x", loss="full", neg_factor=3, routing_iters=2, index="HNSW32", nprobe=4, ef_search=40,
                          weight_decay=0.01, min_hist=2, batch_size=64, lr=0.01, dim=16, interests=2, maxlen=7, protocol="comirec")
    m, t = cfg.run_configs("comirec-dr", "d", 3.0)
    for target, got in ((ModelConfig, m), (TrainConfig, t)):
        for f in dataclasses.fields(target):
            if hasattr(cfg, f.name) and f.name not in ("data", "out", "model", *NOT_SHARED):
                assert getattr(got, f.name) == getattr(cfg, f.name), f.name
    assert (m.model, t.data, t.max_minutes, t.protocol) == ("comirec-dr", "d", 3.0, "standard")
