"""``--embedding-sharding torchrec``: the item table sharded row-wise by TorchRec (gloo on CPU),
the rest under DDP. 2 ranks train what one process trains with the same global batch; a run whose
rank was killed resumes exactly, with 2 ranks or 1; the checkpoint holds the whole table and
loads in Recommender; bad combinations are refused naming the option."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
    pytest.skip("this torch build has no gloo backend for torch.distributed", allow_module_level=True)
try:
    from comirec.sharding import _import_torchrec

    _import_torchrec()  # quietly: FBGEMM's CPU build warns on import
except ImportError as exc:  # pragma: no cover - depends on the machine
    pytest.skip(f"TorchRec/FBGEMM not importable ({exc}); .ci/run installs them (see comirec.sharding)", allow_module_level=True)

from _dist_helpers import SETTINGS, assert_same_model, comirec, last, ok, one_and_two, synth_data, worker  # noqa: E402

from comirec.config import TrainConfig  # noqa: E402

SHARDED = [s for s in SETTINGS if s not in ("--loss", "full")] + ["--embedding-sharding", "torchrec"]
TABLE = "item_emb.weight"


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """More items than one batch's negatives, so that the sampled softmax is sampled."""
    return synth_data(tmp_path_factory, "torchrec", items=2000)


@pytest.mark.parametrize("model", ["youtube-dnn", "comirec-dr"])
def test_two_ranks_train_what_one_process_trains(wide: Path, tmp_path: Path, model: str) -> None:
    """Each rank owns half of the table's rows; the rows of a batch come through TorchRec's
    all-to-all and their gradients go back to their owner divided by 2 (TorchRec's gradient
    division), as DDP averages the rest:
    after 30 steps, 2 ranks hold the parameters of one process (itself a TorchRec run of one rank)."""
    args = ["train", "--model", model, "--data", str(wide), "--max-steps", "30", "--eval-every", "15", *SHARDED]
    a, b = one_and_two(args, tmp_path)
    assert a["step"] == b["step"] == 30
    assert set(a["optimizer"]) == {"dense", "table_state"}
    assert_same_model(a["model"], b["model"], atol=1e-5)
    # the per-row Adagrad state: one value per row, grown only on rows the batches touched
    state = a["optimizer"]["table_state"]
    assert state.shape == (a["model"][TABLE].shape[0],) and (state >= 0).all() and 0 < int((state > 0).sum()) < state.numel()
    torch.testing.assert_close(state, b["optimizer"]["table_state"], rtol=1e-4, atol=1e-7)
    # the whole table moved (rows trained, rows never seen untouched) and differs from dense Adam's
    dense = [s for s in args if s not in ("--embedding-sharding", "torchrec")]
    ok(comirec(*dense, "--out", str(tmp_path / "dense")))
    assert not torch.allclose(a["model"][TABLE], last(tmp_path / "dense")["model"][TABLE], atol=1e-6)
    assert (tmp_path / "two" / "metrics.json").is_file()


def test_killed_rank_resumes_exactly_with_two_ranks_and_with_one(wide: Path, tmp_path: Path) -> None:
    """Rank 1 is killed after step 25 of 40; `--resume` continues from the step-20 checkpoint
    (whole table and row states, re-split by the new plan): with 2 ranks to the bits of an
    uninterrupted run, with 1 process to float tolerance; the result loads in Recommender."""
    common = ["--data", str(wide), "--model", "comirec-dr", "--max-steps", "40", "--eval-every", "10", "--embedding-sharding", "torchrec"]
    ok(worker(2, *common, "--out", str(tmp_path / "full")))
    killed = worker(2, *common, "--out", str(tmp_path / "killed"), "--kill-rank", "1", "--kill-after", "25")
    assert killed.returncode != 0
    assert last(tmp_path / "killed")["step"] == 20
    shutil.copytree(tmp_path / "killed", tmp_path / "killed-one")
    ok(comirec("train", "--out", str(tmp_path / "killed"), "--data", str(wide), "--resume", "--no-progress", nproc=2))
    full, resumed = last(tmp_path / "full"), last(tmp_path / "killed")
    assert resumed["step"] == full["step"] == 40
    assert_same_model(full["model"], resumed["model"], atol=0)
    assert torch.equal(full["optimizer"]["table_state"], resumed["optimizer"]["table_state"])

    ok(comirec("train", "--out", str(tmp_path / "killed-one"), "--data", str(wide), "--resume", "--no-progress"))
    assert_same_model(full["model"], last(tmp_path / "killed-one")["model"], atol=1e-5)

    from comirec import serving

    rec = serving.Recommender.load(tmp_path / "killed", device="cpu")
    out = rec.recommend([1, 2, 3], n=10)
    assert out.items.shape == (10,) and (out.items > 0).all()


@pytest.mark.parametrize(("extra", "name", "expected"), [
    ({"sparse_items": True}, "sparse_items", "no --sparse-items"),
    ({"loss": "full"}, "loss", "--loss sampled"),
    ({"weight_decay": 0.1}, "weight_decay", "--weight-decay 0"),
    ({"table_lr": 0.0}, "table_lr", "> 0"),
])
def test_bad_combinations_are_refused(extra: dict, name: str, expected: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name}: .*{expected}|^{name} must be {expected}"):
        TrainConfig(data="d", out="o", embedding_sharding="torchrec", **extra)


def test_missing_torchrec_is_an_import_error_saying_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from comirec import sharding

    monkeypatch.setitem(sys.modules, "torchrec", None)  # import torchrec -> ImportError
    with pytest.raises(ImportError, match=r"--embedding-sharding torchrec needs TorchRec and FBGEMM \(pip install --no-deps torchrec"):
        sharding._import_torchrec()


def test_train_without_torchrec_says_what_to_install_and_writes_nothing(wide: Path, tmp_path: Path) -> None:
    """A `torchrec` that fails to import (a stand-in first on the path): `comirec train` stops
    before the run directory exists, with the install command."""
    import os
    import subprocess
    import sys

    fake = tmp_path / "fake"
    (fake / "torchrec").mkdir(parents=True)
    (fake / "torchrec" / "__init__.py").write_text("raise ImportError('simulated: not installed')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake), os.environ.get("PYTHONPATH", "")])}
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "comirec", "train", "--model", "youtube-dnn", "--data", str(wide), "--out", str(run),
                           "--embedding-sharding", "torchrec", "--no-progress"], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 1, proc.stderr
    assert "--embedding-sharding torchrec needs TorchRec and FBGEMM (pip install --no-deps" in proc.stderr
    assert "simulated: not installed" in proc.stderr
    assert not run.exists()
