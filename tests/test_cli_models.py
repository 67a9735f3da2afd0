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
    assert set(obj) == {"0.0", "0.1"}
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
