"""Helpers of the distributed-training tests (test_distributed.py, test_torchrec.py): run
``comirec`` (or tests/_ddp_worker.py) as one process or as torchrun ranks, read a run's checkpoint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from comirec.distributed import torchrun_command

WORKER = Path(__file__).with_name("_ddp_worker.py")
# The settings of tests/_ddp_worker.py, as `comirec train` options.
SETTINGS = ["--interests", "2", "--dim", "16", "--batch-size", "32", "--loss", "full", "--threads", "1", "--seed", "3",
            "--patience", "100", "--no-progress"]


def comirec(*argv: str, nproc: int = 1) -> subprocess.CompletedProcess[str]:
    cmd = torchrun_command(nproc, list(argv)) if nproc > 1 else [sys.executable, "-m", "comirec", *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def worker(nproc: int, *argv: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", str(WORKER), *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def last(run: Path) -> dict:
    return torch.load(run / "last.pt", weights_only=True)


def assert_same_model(a: dict, b: dict, atol: float) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if atol == 0:
            assert torch.equal(a[k], b[k]), k
        else:
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=atol, msg=k)


def synth_data(tmp_path_factory: pytest.TempPathFactory, name: str, items: int) -> Path:
    """A small synthetic dataset (600 users, 12 categories) with ``items`` items."""
    from comirec.config import SynthConfig
    from comirec.data import synthesize

    out = tmp_path_factory.mktemp(name) / "syn"
    synthesize(SynthConfig(users=600, items=items, categories=12, out=str(out), seed=1))
    return out


def one_and_two(args: list[str], tmp_path: Path) -> tuple[dict, dict]:
    """Run ``comirec <args>`` as one process (``tmp_path/one``) and as 2 torchrun ranks
    (``tmp_path/two``, where rank 0 alone reports); their ``last.pt``."""
    ok(comirec(*args, "--out", str(tmp_path / "one")))
    two = comirec(*args, "--out", str(tmp_path / "two"), "--nproc-per-node", "2")
    ok(two)
    assert two.stdout.count("best step") == 1  # rank 0 reports
    return last(tmp_path / "one"), last(tmp_path / "two")
