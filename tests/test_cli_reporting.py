"""What the commands show and write besides their numbers (issue 11, items 7-8): the λ trade-off
plot, TensorBoard event files, progress bars, units, and the messages a newcomer meets."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from _models_helpers import make_synth  # noqa: E402

from comirec.cli import main  # noqa: E402

TINY = ["--dim", "16", "--maxlen", "12", "--batch-size", "64", "--eval-batch-size", "256", "--threads", "1", "--no-progress"]
PNG = b"\x89PNG\r\n\x1a\n"


def hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make ``import <module>`` fail, as when the package is not installed."""
    for name in list(sys.modules):
        if any(name == m or name.startswith(m + ".") for m in modules):
            monkeypatch.delitem(sys.modules, name)
    for m in modules:
        monkeypatch.setitem(sys.modules, m, None)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synth(tmp_path_factory.mktemp("look") / "synth").path  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("look-run") / "runs" / "sa"
    argv = ["train", "--data", str(data), "--model", "comirec-sa", "--out", str(out), "--max-steps", "20", "--eval-every", "10", *TINY]
    assert main(argv) == 0
    return out


# -- the Recall@50-Diversity@50 curve --------------------------------------------------------


def test_evaluate_plot_writes_a_png(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib (the plot extra) is not installed: the PNG cannot be drawn")
    target = tmp_path / "curve.png"
    assert main(["evaluate", "--run", str(run), "--lam", "0,0.1,0.5", "--plot", str(target), "--no-progress"]) == 0
    assert target.read_bytes()[:8] == PNG
    assert f"plot: {target}" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["curve.png"]  # no temporary file left


def test_evaluate_plot_without_matplotlib_is_one_line(run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    hide(monkeypatch, "matplotlib")
    target = tmp_path / "curve.png"
    assert main(["evaluate", "--run", str(run), "--lam", "0,0.1", "--plot", str(target), "--json"]) == 0
    got = capsys.readouterr()
    json.loads(got.out)  # the evaluation itself is unaffected
    skipped = [line for line in got.err.splitlines() if "plot" in line]
    assert skipped == ["--plot: skipped: matplotlib is not installed (pip install 'comirec[plot]')"]
    assert not target.exists()


def test_evaluate_plot_into_a_missing_directory_fails_first(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--run", str(run), "--plot", str(tmp_path / "no" / "curve.png")]) == 2
    assert "its directory does not exist" in capsys.readouterr().err


def test_tradeoff_points_sort_by_lambda_and_skip_missing() -> None:
    from comirec.plots import tradeoff_points

    by_lam = {"inf": {"recall@50": 0.1, "diversity@50": 0.9}, "0.0": {"recall@50": 0.3, "diversity@50": 0.2},
              "0.1": {"recall@50": 0.2}}
    assert tradeoff_points(by_lam) == [(0.0, 0.3, 0.2), (float("inf"), 0.1, 0.9)]


def test_reproduce_writes_the_curves(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib (the plot extra) is not installed: the PNG cannot be drawn")
    out = tmp_path / "repro"
    argv = ["reproduce", "--data", str(data), "--out", str(out), "--models", "mostpop,comirec-sa", "--max-steps", "10",
            "--eval-every", "10", "--lams", "0,0.25", "--budget-minutes", "0", "--dim", "16", "--maxlen", "12",
            "--batch-size", "64", "--threads", "1", "--no-progress"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    for p in ("standard", "comirec"):
        assert (out / f"tradeoff-{p}.png").read_bytes()[:8] == PNG
        assert f"plot: {out / f'tradeoff-{p}.png'}" in text
    assert "printed above: standard, --protocol comirec prints the other" in text
    assert "Table 3 layout (λ = 0), in %" in text and "Table 5 layout (N = 50), in %" in text
    assert json.loads((out / "report.json").read_text())["units"] == "fraction"
    # without matplotlib: the same command (the runs are reused) says so in one line, no error


def test_reproduce_without_matplotlib_is_one_line(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    hide(monkeypatch, "matplotlib")
    out = tmp_path / "repro"
    argv = ["reproduce", "--data", str(data), "--out", str(out), "--models", "mostpop", "--lams", "0",
            "--budget-minutes", "0", "--threads", "1", "--no-progress"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if "plot" in line] == ["plot: skipped: matplotlib is not installed (pip install 'comirec[plot]')"]
    assert not list(out.glob("*.png")) and (out / "report.json").is_file()


# -- TensorBoard ------------------------------------------------------------------------------


def test_train_tensorboard_logs_the_log_jsonl_fields(data: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="tensorboard (the tensorboard extra) is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run, tb = tmp_path / "run", tmp_path / "tb"
    argv = ["train", "--data", str(data), "--model", "youtube-dnn", "--out", str(run), "--max-steps", "20", "--eval-every", "10",
            "--tensorboard", str(tb), *TINY]
    assert main(argv) == 0
    assert list(tb.glob("events.out.tfevents.*"))
    acc = EventAccumulator(str(tb), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    validations = [r for r in records if "valid" in r]
    tags = set(acc.Tags()["scalars"])
    assert {"loss", "valid/recall@50", "best", "best_step", "elapsed_s", "train_samples_per_s"} <= tags
    logged = [(e.step, e.value) for e in acc.Scalars("valid/recall@50")]
    assert logged == [(r["step"], pytest.approx(r["valid"]["recall@50"])) for r in validations]
    texts = acc.Tensors("log.jsonl/text_summary")  # every record whole, in order
    assert [json.loads(t.tensor_proto.string_val[0].decode()) for t in texts] == records


def test_train_tensorboard_without_the_package_is_one_line(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    hide(monkeypatch, "torch.utils.tensorboard", "tensorboard")
    tb = tmp_path / "tb"
    argv = ["train", "--data", str(data), "--model", "mostpop", "--out", str(tmp_path / "run"), "--tensorboard", str(tb), *TINY]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "--tensorboard: skipped: tensorboard is not installed (pip install 'comirec[tensorboard]'); log.jsonl has every record" in err
    assert not tb.exists() and (tmp_path / "run" / "log.jsonl").is_file()


# -- progress and units -----------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_evaluate_progress_counts_users_and_json_is_quiet(run: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from comirec.data import load_prepared

    n_users = len(load_prepared(json.loads((run / "config.json").read_text())["dataset"]["path"]).users("valid"))
    assert main(["evaluate", "--run", str(run), "--split", "valid"]) == 0
    assert "users" not in capsys.readouterr().err  # not a terminal: no bar
    for quiet, shown in (([], True), (["--json"], False), (["--no-progress"], False)):
        term = Terminal()
        monkeypatch.setattr(sys, "stderr", term)
        assert main(["evaluate", "--run", str(run), "--split", "valid", *quiet]) == 0
        assert (f"{n_users}/{n_users}" in term.getvalue() and "users" in term.getvalue()) is shown, (quiet, term.getvalue())


def test_evaluate_json_states_fractions_and_the_table_percent(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--run", str(run), "--json", "--lam", "0"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["units"] == "fraction" and 0.0 <= obj["0.0"]["recall@50"] <= 1.0
    assert main(["evaluate", "--run", str(run), "--lam", "0", "--no-progress"]) == 0
    table = capsys.readouterr().out
    assert "metrics in %" in table
    value = float(table.splitlines()[-1].split()[1 + 4])  # recall@50 (after recall/ndcg/hitrate/diversity @20)
    assert value == pytest.approx(100 * obj["0.0"]["recall@50"], abs=1e-3)
    assert json.loads((run / "metrics.json").read_text())["units"] == "fraction"


def test_prepare_progress_counts_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [f"{u},{i},{t}" for u in range(60) for t, i in enumerate(range(u % 7, u % 7 + 8))]
    log = tmp_path / "log.csv"
    log.write_text("user_id,item_id,timestamp\n" + "\n".join(rows) + "\n")
    assert main(["prepare", "--format", "csv", "--input", str(log), "--out", str(tmp_path / "a")]) == 0
    assert "rows" not in capsys.readouterr().err  # not a terminal: no bar
    for name, extra, shown in (("b", [], True), ("c", ["--no-progress"], False)):
        term = Terminal()
        monkeypatch.setattr(sys, "stderr", term)
        assert main(["prepare", "--format", "csv", "--input", str(log), "--out", str(tmp_path / name), *extra]) == 0
        assert ("reading" in term.getvalue() and f"{len(rows)} rows" in term.getvalue()) is shown, term.getvalue()


def test_demo_table_is_in_percent(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--users", "200", "--items", "3000", "--categories", "20", "--lams", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("in %")
    assert 1.0 < float(lines[3].split()[lines[1].split().index("diversity@50")]) <= 100.0


# -- what a newcomer tripped on (issue 11, item 8) -------------------------------------------


def test_evaluate_on_a_parent_directory_lists_its_runs(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parent = run.parent.parent  # <tmp>/runs/sa: as reproduce's OUT/runs/<model>
    assert main(["evaluate", "--run", str(parent)]) == 2
    err = capsys.readouterr().err
    assert "not a comirec run directory" in err and f"holds runs: {run}" in err and "pass one of them to --run" in err
    assert err.count("\n") == 1


def test_train_on_raw_sequences_names_the_prepare_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = tmp_path / "beauty"
    raw.mkdir()
    (raw / "Beauty.txt").write_text("1 5 6 7 8 9\n")
    (raw / "split-seed1230.tsv").write_text("1\ttrain\n")
    assert main(["train", "--data", str(raw), "--model", "comirec-sa", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert (f"`comirec prepare --format sequences --input {raw} --out data/beauty --split-file {raw / 'split-seed1230.tsv'}`, "
            "then pass --data data/beauty") in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv", [
    ["train", "--data", "{tmp}/no-data", "--model", "comirec-sa", "--out", "{tmp}/out"],
    ["evaluate", "--run", "{tmp}/no-run"],
    ["reproduce", "--data", "{tmp}/no-data", "--out", "{tmp}/out"],
])
def test_path_mistakes_are_reported_before_torch_is_imported(argv: list[str], tmp_path: Path) -> None:
    code = ("import sys; from comirec.cli import main; rc = main(sys.argv[1:]); "
            "sys.exit(rc if 'torch' not in sys.modules else 99)")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, (done.returncode, done.stderr)  # 99: torch was imported first
    assert "does not exist" in done.stderr and done.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()  # nothing created


def test_gitignore_covers_prepared_data() -> None:
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        pytest.skip("not a git checkout (an sdist): .gitignore is not shipped")
    done = subprocess.run(["git", "-C", str(root), "check-ignore", "-q", "data/beauty/header.json"], timeout=60)
    assert done.returncode == 0, "data/ (where the README's `comirec prepare --out data/...` writes) is not ignored"


def test_readme_names_the_demo_and_the_reproduce_protocol() -> None:
    root = Path(__file__).resolve().parents[1]
    text = (root / "README.md").read_text()
    assert "comirec demo" in text
    assert "--protocol comirec" in text and "prints the `standard` protocol" in text
