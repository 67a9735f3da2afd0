"""CLI: comirec train / evaluate / reproduce, and their error messages."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from _models_helpers import make_synth  # noqa: E402

from comirec.cli import main  # noqa: E402

TINY = ["--dim", "16", "--maxlen", "12", "--batch-size", "64", "--eval-batch-size", "256", "--threads", "1", "--no-progress"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return make_synth(tmp_path_factory.mktemp("cli") / "synth").path


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("cli-run") / "sa"
    assert main(["train", "--data", str(data), "--model", "comirec-sa", "--out", str(out), "--max-steps", "20", "--eval-every", "10", *TINY]) == 0
    return out


def test_train_prints_a_summary(data, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["train", "--data", str(data), "--model", "mostpop", "--out", str(tmp_path / "pop"), *TINY]) == 0
    out = capsys.readouterr().out
    assert out.startswith("mostpop: best step 0 of 0") and "recall@50" in out and str(tmp_path / "pop") in out


def test_evaluate_json_is_one_object(run, capsys) -> None:  # type: ignore[no-untyped-def]
    capsys.readouterr()
    assert main(["evaluate", "--run", str(run), "--lam", "0,0.1", "--n", "10,50", "--json", "--split", "valid"]) == 0
    out = capsys.readouterr().out
    obj = json.loads(out)  # nothing else on stdout
    assert set(obj) == {"units", "0.0", "0.1"} and obj["units"] == "fraction"
    assert set(obj["0.1"]) == {f"{m}@{n}" for m in ("recall", "ndcg", "hitrate", "diversity") for n in (10, 50)}


def test_the_retrieval_backend_is_logged_and_recorded(run, capsys) -> None:  # type: ignore[no-untyped-def]
    final = json.loads((run / "metrics.json").read_text())
    assert final["retrieval"] == {"backend": "faiss-cpu", "factory": "Flat", "nprobe": 16, "ef_search": None}
    events = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert {"event": "retrieval", **final["retrieval"]} in events
    capsys.readouterr()
    assert main(["evaluate", "--run", str(run), "--index", "HNSW16", "--ef-search", "40", "--json"]) == 0
    got = capsys.readouterr()
    assert "retrieval: backend faiss-cpu, factory HNSW16, nprobe 16, ef_search 40" in got.err
    json.loads(got.out)  # stdout stays one JSON object


def test_evaluate_table_names_protocol_and_data(run, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["evaluate", "--run", str(run), "--protocol", "comirec"]) == 0
    out = capsys.readouterr().out
    assert "protocol: comirec" in out and "SYNTHETIC" in out and "recall@50" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--model", "comirec-sa", "--interests", "0"], "interests must be >= 1"),
        (["train", "--model", "comirec-sa", "--max-steps", "0"], "max_steps must be >= 1"),
        (["train"], "--model is required"),
        (["evaluate", "--n", "0"], "n (list length N) must be >= 1"),
        (["evaluate", "--lam", "-0.5"], "lam (λ) must be >= 0"),
        (["train", "--model", "comirec-sa", "--index", "NoSuch"], "error: --index: faiss cannot build the index 'NoSuch'"),
        (["evaluate", "--index", "IVF,Nope"], "error: --index: faiss cannot build the index 'IVF,Nope'"),
        (["evaluate", "--nprobe", "0"], "--nprobe must be >= 1"),
        (["train", "--model", "comirec-sa", "--ef-search", "0"], "--ef-search must be >= 1"),
        (["evaluate", "--index", "IVF4,Flat", "--ef-search", "8"], "ef_search: only HNSW indexes have efSearch"),
        (["train", "--model", "comirec-dr", "--pos-init", "zero"], "--pos-init: model comirec-dr does not take it (it applies to comirec-sa)"),
        (["train", "--model", "mind", "--logit-scale", "2"], "--logit-scale: model mind does not take it (it applies to comirec-sa)"),
        (["train", "--model", "comirec-sa", "--logit-scale", "0"], "logit_scale must be a finite number > 0, got 0.0"),
        (["train", "--model", "youtube-dnn", "--align", "right"], "--align: model youtube-dnn does not take it"),
        (["train", "--model", "comirec-sa", "--routing-iters", "2"], "--routing-iters: model comirec-sa does not take it"),
    ],
)
def test_bad_values(data, run, tmp_path, capsys, argv, message) -> None:  # type: ignore[no-untyped-def]
    if argv[0] == "train":
        argv = [*argv, "--data", str(data), "--out", str(tmp_path / "x")]
    else:
        argv = [*argv, "--run", str(run)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1, err  # one line, no traceback


def test_unknown_model(data, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", str(data), "--model", "sasrec", "--out", str(tmp_path / "x")])
    assert exc.value.code == 2
    assert "invalid choice: 'sasrec'" in capsys.readouterr().err


def test_not_a_run_directory(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["evaluate", "--run", str(tmp_path)]) == 2
    assert "not a comirec run directory" in capsys.readouterr().err
    assert main(["evaluate", "--run", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_checkpoint_from_another_dataset(run, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    other = make_synth(tmp_path / "other", items=500, categories=5)
    assert main(["evaluate", "--run", str(run), "--data", str(other.path)]) == 2
    err = capsys.readouterr().err
    assert "items but dataset" in err and str(other.n_items) in err


def test_resume_needs_a_run(data, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["train", "--data", str(data), "--out", str(tmp_path), "--resume"]) == 2
    assert "not a comirec run directory" in capsys.readouterr().err


def test_reproduce_small(data, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "repro"
    argv = ["reproduce", "--data", str(data), "--out", str(out), "--models", "mostpop,youtube-dnn,comirec-sa",
            "--max-steps", "20", "--eval-every", "10", "--lams", "0,0.25", "--budget-minutes", "0", "--table4-k", "2,4",
            "--dim", "16", "--maxlen", "12", "--batch-size", "64", "--threads", "1", "--no-progress"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "Table 3 layout" in text and "Table 4 layout" in text and "Table 5 layout" in text and "SYNTHETIC" in text
    assert "ComiRec-SA (K=2)" in text and "ComiRec-SA (K=4)" in text
    assert "Paired Recall@50 differences" in text and "ComiRec-SA - YouTube DNN" in text
    for name in ("MostPopular", "YouTube DNN", "ComiRec-SA"):
        assert name in text
    report = json.loads((out / "report.json").read_text())
    assert set(report["models"]) == {"mostpop", "youtube-dnn", "comirec-sa"}
    assert set(report["models"]["comirec-sa"]["test"]["standard"]) == {"0.0", "0.25"}
    assert set(report["table4"]["comirec-sa"]) == {"2", "4"}
    assert (out / "runs" / "comirec-sa-K2" / "metrics.json").is_file()
    assert "## protocol: comirec" in (out / "report.md").read_text()
    assert main(argv) == 0  # finished runs are reused, not retrained
    assert main([*argv[:6], "sasrec", *argv[7:]]) == 2
    assert "unknown model 'sasrec'" in capsys.readouterr().err


# -- issue 9, item 3: --resume takes the run's settings ------------------------------------------


def _guard_steps(monkeypatch, limit: int, interrupt_at: int | None = None) -> None:  # type: ignore[no-untyped-def]
    """Fail if training goes past ``limit`` steps (a resume that forgot the stored max_steps);
    optionally Ctrl-C at step ``interrupt_at``."""
    import os
    import signal

    import comirec.training as training

    real = training._Trainer._loop

    def loop(self, on_step):  # type: ignore[no-untyped-def]
        def check(step: int) -> None:
            assert step <= limit, f"training went past the run's {limit} steps"
            if step == interrupt_at:
                os.kill(os.getpid(), signal.SIGINT)
            if on_step is not None:
                on_step(step)

        return real(self, check)

    monkeypatch.setattr(training._Trainer, "_loop", loop)


def test_resume_takes_the_stored_settings(data, tmp_path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import torch

    base = ["--model", "gru4rec", "--max-steps", "30", "--eval-every", "10", "--lr", "0.005", *TINY]
    whole = tmp_path / "whole"
    assert main(["train", "--data", str(data), "--out", str(whole), *base]) == 0
    part = tmp_path / "part"
    _guard_steps(monkeypatch, 30, interrupt_at=12)
    assert main(["train", "--data", str(data), "--out", str(part), *base]) == 130
    capsys.readouterr()
    # the printed command: nothing but --data, --out, --resume (and the progress bar on)
    assert main(["train", "--data", str(data), "--out", str(part), "--resume", "--threads", "1", "--progress"]) == 0
    err = capsys.readouterr().err
    assert "/30" in err  # the bar's total is the stored max_steps
    a, b = (torch.load(r / "last.pt", weights_only=True) for r in (whole, part))
    assert a["step"] == b["step"] == 30
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])  # bit-identical
    ma, mb = (json.loads((r / "metrics.json").read_text()) for r in (whole, part))
    assert ma["test"] == mb["test"] and ma["best_step"] == mb["best_step"]


def test_resume_refuses_changed_settings_and_extends_budgets(data, tmp_path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--model", "youtube-dnn", "--max-steps", "10", "--eval-every", "10", *TINY]) == 0
    capsys.readouterr()
    for extra, flag in ((["--lr", "0.01"], "--lr 0.01"), (["--dim", "32"], "--dim 32"), (["--batch-size", "32"], "--batch-size 32"),
                        (["--model", "mind"], "--model mind")):
        assert main(["train", "--data", str(data), "--out", str(run), "--resume", *extra]) == 2
        err = capsys.readouterr().err
        assert flag in err and "--resume takes every setting from" in err and len(err.strip().splitlines()) == 1, err
    # the same values again are no change; a longer budget is applied with a notice and stored
    _guard_steps(monkeypatch, 20)
    assert main(["train", "--data", str(data), "--out", str(run), "--resume", "--lr", "0.001", "--batch-size", "64",
                 "--max-steps", "20", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "--max-steps 20 applied (the run was started with 10" in err
    assert json.loads((run / "metrics.json").read_text())["steps"] == 20
    assert json.loads((run / "config.json").read_text())["train"]["max_steps"] == 20


def test_progress_bar_shows_a_dash_then_each_validation(data, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import tqdm

    shown: list[str] = []

    class Recorder(tqdm.tqdm):  # type: ignore[misc]
        def set_postfix(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            shown.append(kwargs.get("val_r50"))
            return super().set_postfix(*args, **kwargs)

    monkeypatch.setattr(tqdm, "tqdm", Recorder)
    run = tmp_path / "run"
    argv = ["--model", "youtube-dnn", "--max-steps", "60", "--eval-every", "30", *[a for a in TINY if a != "--no-progress"]]
    assert main(["train", "--data", str(data), "--out", str(run), *argv]) == 0
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    vals = [f"{x['valid']['recall@50']:.4f}" for x in log if "valid" in x]
    assert shown[0] == "–"  # before the first validation (was "nan")
    assert [v for v in dict.fromkeys(shown) if v != "–"] == list(dict.fromkeys(vals))
    assert shown[shown.index(vals[0]) - 1] == "–"  # updated at the validation itself
