"""Data-parallel training (torchrun, gloo on CPU): 2 ranks compute what one process computes with
the same global batch; a run whose rank was killed resumes exactly, with the same or another
number of ranks; the checkpoint loads in Recommender."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torch.distributed")
if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
    pytest.skip("this torch build has no gloo backend for torch.distributed", allow_module_level=True)

from _dist_helpers import SETTINGS, assert_same_model, comirec, last, ok, one_and_two, synth_data, worker  # noqa: E402

from comirec.distributed import World, check_batch  # noqa: E402


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth_data(tmp_path_factory, "ddp", items=300)


@pytest.mark.parametrize("model", ["youtube-dnn", "comirec-dr"])
def test_two_ranks_train_what_one_process_trains(data: Path, tmp_path: Path, model: str) -> None:
    """`comirec train --nproc-per-node 2` (torchrun, gloo): each rank trains on half of the global
    batch, DDP averages the gradients; after 30 steps the parameters are those of one process
    with the same global batch (to float tolerance: only the order of the sums differs).
    ComiRec-DR draws random routing logits per row: each rank takes its rows of the global draw."""
    args = ["train", "--model", model, "--data", str(data), "--max-steps", "30", "--eval-every", "15", *SETTINGS]
    a, b = one_and_two(args, tmp_path)
    assert (a["step"], a["best_step"]) == (b["step"], b["best_step"]) == (30, b["best_step"])
    assert_same_model(a["model"], b["model"], atol=1e-5)
    assert not any(k.startswith("module.") for k in b["model"])  # the plain model, loadable anywhere
    assert (tmp_path / "two" / "metrics.json").is_file()


def test_killed_rank_resumes_exactly_with_two_ranks_and_with_one(data: Path, tmp_path: Path) -> None:
    """Rank 1 is killed (SIGKILL) after step 25 of 40; torchrun stops rank 0. `--resume` continues
    from the step-20 checkpoint: with 2 ranks to the very bits of an uninterrupted 2-rank run, with
    1 process to float tolerance (the same global batches); the result loads in Recommender."""
    common = ["--data", str(data), "--model", "comirec-dr", "--max-steps", "40", "--eval-every", "10"]
    ok(worker(2, *common, "--out", str(tmp_path / "full")))
    killed = worker(2, *common, "--out", str(tmp_path / "killed"), "--kill-rank", "1", "--kill-after", "25")
    assert killed.returncode != 0
    assert last(tmp_path / "killed")["step"] == 20
    assert not (tmp_path / "killed" / "metrics.json").exists()
    import shutil

    shutil.copytree(tmp_path / "killed", tmp_path / "killed-one")
    ok(comirec("train", "--out", str(tmp_path / "killed"), "--data", str(data), "--resume", "--no-progress", nproc=2))
    full, resumed = last(tmp_path / "full"), last(tmp_path / "killed")
    assert resumed["step"] == full["step"] == 40
    assert_same_model(full["model"], resumed["model"], atol=0)
    for k, state in full["optimizer"]["state"].items():
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(resumed["optimizer"]["state"][k][name])), (k, name)

    ok(comirec("train", "--out", str(tmp_path / "killed-one"), "--data", str(data), "--resume", "--no-progress"))
    assert_same_model(full["model"], last(tmp_path / "killed-one")["model"], atol=1e-5)

    from comirec import serving

    rec = serving.Recommender.load(tmp_path / "killed", device="cpu")
    out = rec.recommend([1, 2, 3], n=10)
    assert out.items.shape == (10,) and (out.items > 0).all()


def test_two_machines_train_what_two_local_ranks_train(data: Path, tmp_path: Path) -> None:
    """Two torchrun agents with --nnodes 2 (one rank each, static rendezvous on 127.0.0.1), as two
    machines run them: both ranks have LOCAL_RANK 0, and only global rank 0 (node 0) validates,
    checkpoints and reports. The result is bit for bit that of one agent with two ranks."""
    import socket
    import subprocess
    import sys

    args = ["train", "--model", "comirec-dr", "--data", str(data), "--max-steps", "30", "--eval-every", "15", *SETTINGS]
    ok(comirec(*args, "--out", str(tmp_path / "local"), nproc=2))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1",
                               f"--node-rank={r}", "--master-addr=127.0.0.1", f"--master-port={port}",
                               "-m", "comirec", *args, "--out", str(tmp_path / "nodes")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    outs = [p.communicate(timeout=600) for p in nodes]
    for p, (out, err) in zip(nodes, outs):
        assert p.returncode == 0, out[-3000:] + err[-3000:]
    assert outs[0][0].count("best step") == 1 and "best step" not in outs[1][0]
    a, b = last(tmp_path / "local"), last(tmp_path / "nodes")
    assert a["step"] == b["step"] == 30
    assert_same_model(a["model"], b["model"], atol=0)


def test_batch_must_split_evenly_over_the_ranks(data: Path, tmp_path: Path) -> None:
    check_batch(World(rank=0, size=4), 128)
    with pytest.raises(ValueError, match=r"^batch_size: expected a multiple of the number of training processes \(3\)"):
        check_batch(World(rank=0, size=3), 128)
    proc = comirec("train", "--model", "youtube-dnn", "--data", str(data), "--out", str(tmp_path / "r"), "--nproc-per-node", "3",
                   "--batch-size", "32", "--no-progress")
    assert proc.returncode == 2
    assert "batch_size: expected a multiple of the number of training processes (3)" in proc.stderr
    assert not (tmp_path / "r").exists()  # refused before torchrun started


def test_world_rows_partition_the_global_batch() -> None:
    rows = [World(rank=r, size=4).rows(32) for r in range(4)]
    covered = np.concatenate([np.arange(32)[s] for s in rows])
    assert covered.tolist() == list(range(32))


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """More items than one batch's negatives, so that the sampled softmax is sampled."""
    return synth_data(tmp_path_factory, "ddp-wide", items=2000)


SPARSE = [s for s in SETTINGS if s not in ("--loss", "full")] + ["--sparse-items"]


@pytest.mark.parametrize("model", ["youtube-dnn", "comirec-dr"])
def test_sparse_item_table_two_ranks_train_what_one_process_trains(wide: Path, tmp_path: Path, model: str) -> None:
    """--sparse-items: the item table's rows are gathered outside DDP and its sparse gradient is
    all-reduced over the ranks; the rest is under DDP. 2 ranks end where 1 process ends."""
    args = ["train", "--model", model, "--data", str(wide), "--max-steps", "30", "--eval-every", "15", *SPARSE]
    a, b = one_and_two(args, tmp_path)
    assert a["step"] == b["step"] == 30
    assert set(a["optimizer"]) == {"sparse_items"}  # SparseAdam + Adam
    assert_same_model(a["model"], b["model"], atol=1e-5)
    # and the sparse table did move: not the dense-Adam run, not the initial table
    dense = [s for s in args if s != "--sparse-items"]
    ok(comirec(*dense, "--out", str(tmp_path / "dense")))
    table = "item_emb.weight"
    assert not torch.allclose(a["model"][table], last(tmp_path / "dense")["model"][table], atol=1e-6)
