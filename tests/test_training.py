"""The training loop: run directory, repeatability, resume, Ctrl-C, early stop, budgets, errors."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _models_helpers import make_synth, quick_train  # noqa: E402

from comirec.runs import BEST, CONFIG, ITEMS, LAST, LOG, METRICS, load_model  # noqa: E402


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return make_synth(tmp_path_factory.mktemp("data") / "synth")


def states_equal(a: dict, b: dict) -> bool:  # type: ignore[type-arg]
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_run_directory(synth, tmp_path) -> None:  # type: ignore[no-untyped-def]
    run = quick_train(synth.path, tmp_path / "run", dataset=synth)
    for name in (CONFIG, ITEMS, BEST, LAST, LOG, METRICS):
        assert (run / name).is_file(), name
    cfg = json.loads((run / CONFIG).read_text())
    assert cfg["model"]["model"] == "comirec-sa" and cfg["dataset"]["n_items"] == synth.n_items
    assert cfg["dataset"]["synthetic"] is True
    lines = [json.loads(x) for x in (run / LOG).read_text().splitlines()]
    evals = [x for x in lines if "valid" in x]
    assert [x["step"] for x in evals] == [20, 40]
    assert all(0 <= x["valid"]["recall@50"] <= 1 and np.isfinite(x["loss"]) for x in evals)
    assert lines[-1]["event"] == "done"
    final = json.loads((run / METRICS).read_text())
    assert final["steps"] == 40 and final["best_step"] in (20, 40) and final["stop_reason"] == "max_steps"
    for split in ("valid", "test"):
        for protocol in ("standard", "comirec"):
            assert set(final[split][protocol]["0.0"]) == {f"{m}@{n}" for m in ("recall", "ndcg", "hitrate", "diversity") for n in (20, 50)}
    with np.load(run / ITEMS) as z:
        np.testing.assert_array_equal(z["item_cat"], synth.item_cat)
        np.testing.assert_array_equal(z["item_raw"], synth.item_raw)
    model, _ = load_model(run)
    assert not model.training and model.n_items == synth.n_items


def test_training_is_repeatable_on_cpu(synth, tmp_path) -> None:  # type: ignore[no-untyped-def]
    runs = [quick_train(synth.path, tmp_path / f"r{i}", model="mind", dataset=synth, max_steps=15, eval_every=15) for i in range(2)]
    a, b = (torch.load(r / LAST, weights_only=False) for r in runs)
    assert states_equal(a["model"], b["model"])
    c = torch.load(quick_train(synth.path, tmp_path / "r3", model="mind", dataset=synth, max_steps=15, eval_every=15, seed=5) / LAST, weights_only=False)
    assert not states_equal(a["model"], c["model"])


def test_resume_continues_exactly(synth, tmp_path) -> None:  # type: ignore[no-untyped-def]
    whole = quick_train(synth.path, tmp_path / "whole", model="comirec-dr", dataset=synth, max_steps=30, eval_every=10)
    part = quick_train(synth.path, tmp_path / "part", model="comirec-dr", dataset=synth, max_steps=10, eval_every=10)
    assert json.loads((part / METRICS).read_text())["steps"] == 10
    quick_train(synth.path, part, model="comirec-dr", dataset=synth, max_steps=30, eval_every=10, resume=True)
    a, b = (torch.load(r / LAST, weights_only=False) for r in (whole, part))
    assert a["step"] == b["step"] == 30
    assert states_equal(a["model"], b["model"])
    assert json.loads((part / METRICS).read_text())["steps"] == 30


def test_ctrl_c_leaves_a_usable_checkpoint(synth, tmp_path) -> None:  # type: ignore[no-untyped-def]
    def interrupt(step: int) -> None:
        if step == 7:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        quick_train(synth.path, tmp_path / "run", dataset=synth, on_step=interrupt, max_steps=50, eval_every=25)
    run = tmp_path / "run"
    assert torch.load(run / LAST, weights_only=False)["step"] == 7
    assert not (run / METRICS).exists()
    model, _ = load_model(run)  # no validation yet: the last checkpoint serves
    assert model.n_items == synth.n_items
    assert json.loads((run / LOG).read_text().splitlines()[-1])["reason"] == "interrupted"
    quick_train(synth.path, run, dataset=synth, max_steps=50, eval_every=25, resume=True)
    assert json.loads((run / METRICS).read_text())["steps"] == 50


def test_early_stop_after_patience(synth, tmp_path) -> None:  # type: ignore[no-untyped-def]
    run = quick_train(synth.path, tmp_path / "run", dataset=synth, lr=1e-12, max_steps=1000, eval_every=5, patience=2)
    final = json.loads((run / METRICS).read_text())
    assert final["stop_reason"] == "patience" and final["steps"] == 15 and final["best_step"] == 5


def test_time_budget(synth, tmp_path) -> None:  # type: ignore[no-untyped-def]
    run = quick_train(synth.path, tmp_path / "run", dataset=synth, max_steps=10**6, eval_every=10**5, max_minutes=1e-4)
    final = json.loads((run / METRICS).read_text())
    assert final["stop_reason"] == "max_minutes" and 1 <= final["steps"] < 1000
    assert (run / BEST).is_file()  # validated once at the stop, so there is a best model


def test_mostpop_needs_no_training(synth, tmp_path) -> None:  # type: ignore[no-untyped-def]
    run = quick_train(synth.path, tmp_path / "run", model="mostpop", dataset=synth)
    final = json.loads((run / METRICS).read_text())
    assert final["steps"] == 0
    model, _ = load_model(run)
    counts = np.bincount(np.concatenate([synth.items[synth.indptr[u] : synth.indptr[u + 1]] for u in synth.users("train")]),
                         minlength=synth.n_items + 1)[1:]
    np.testing.assert_array_equal(model.item_vectors()[:, 0].numpy(), counts)


def test_short_training_beats_mostpop(synth, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pop = json.loads((quick_train(synth.path, tmp_path / "pop", model="mostpop", dataset=synth) / METRICS).read_text())
    sa = json.loads((quick_train(synth.path, tmp_path / "sa", dataset=synth, max_steps=200, eval_every=100, batch_size=128) / METRICS).read_text())
    assert synth.n_items > 10 * 128  # the sampled softmax path, not the exact fallback
    p, s = pop["test"]["standard"]["0.0"], sa["test"]["standard"]["0.0"]
    assert s["recall@20"] > 1.3 * p["recall@20"], (s, p)
    assert s["ndcg@50"] > 1.3 * p["ndcg@50"], (s, p)
    assert s["recall@50"] > p["recall@50"], (s, p)


def test_threads_option_is_scoped_to_the_call(synth, tmp_path) -> None:  # type: ignore[no-untyped-def]
    before = torch.get_num_threads()
    quick_train(synth.path, tmp_path / "run", model="youtube-dnn", dataset=synth, max_steps=2, eval_every=2, threads=1)
    assert torch.get_num_threads() == before


def test_run_directory_errors(synth, tmp_path) -> None:  # type: ignore[no-untyped-def]
    run = quick_train(synth.path, tmp_path / "run", model="mostpop", dataset=synth)
    with pytest.raises(FileExistsError, match="--resume"):
        quick_train(synth.path, run, model="mostpop", dataset=synth)
    other = make_synth(tmp_path / "other", items=500, categories=5)
    with pytest.raises(ValueError, match=f"trained on {synth.n_items} items but dataset .* has {other.n_items}"):
        quick_train(other.path, run, model="mostpop", dataset=other, resume=True)
    with pytest.raises(ValueError, match="not a comirec run directory"):
        quick_train(synth.path, tmp_path, dataset=synth, resume=True)
    with pytest.raises(ValueError, match="not a comirec run directory"):
        load_model(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(tmp_path / "nowhere")
