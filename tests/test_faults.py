"""Fault injection (issue 9): kill -9 at random points of `synth`, `prepare`, `--overwrite` and
`train` (then `--resume`), a full disk, two writers of one --out. Each asserts that the output
is absent or complete and identical to an undisturbed run, and that errors are one clear line.

Kill points are drawn from a seeded generator (COMIREC_FAULT_SEED to vary them); kept to a
handful so the module stays well under a minute on an idle machine.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from comirec.data import load_prepared
from comirec.data.prepared import ARRAYS

REPO = Path(__file__).resolve().parents[1]
SEED = int(os.environ.get("COMIREC_FAULT_SEED", "9"))
SYNTH = ["synth", "--users", "60000", "--items", "3000", "--categories", "20", "--mean-length", "12"]
ENV = dict(os.environ, PYTHONPATH=str(REPO / "python") + os.pathsep + os.environ.get("PYTHONPATH", ""))


def comirec(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "comirec.cli", *argv], capture_output=True, text=True, env=ENV, timeout=timeout)


def killed_at(delay: float, *argv: str) -> int:
    """Start ``comirec ARGV``, SIGKILL it after ``delay`` seconds (if still running); its status."""
    p = subprocess.Popen([sys.executable, "-m", "comirec.cli", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    try:
        p.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGKILL)
    return p.wait()


def same_arrays(a: Path, b: Path) -> bool:
    return all((a / f"{n}.npy").read_bytes() == (b / f"{n}.npy").read_bytes() for n in ARRAYS)


def absent_or_identical(out: Path, *refs: Path) -> str:
    """'absent', or the index of the reference ``out`` equals; fails on anything else."""
    if not out.exists():
        return "absent"
    load_prepared(out)  # complete and consistent
    for i, ref in enumerate(refs):
        if same_arrays(out, ref):
            return str(i)
    raise AssertionError(f"{out} is complete but matches no reference")


def siblings(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.") or p.name == f"{out.name}.lock")


@pytest.fixture(scope="module")
def refs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("refs")
    t0 = time.perf_counter()
    for seed in ("1", "2"):
        r = comirec(*SYNTH, "--seed", seed, "--out", str(root / f"seed{seed}"))
        assert r.returncode == 0, r.stderr
    seconds = (time.perf_counter() - t0) / 2
    seq = root / "seq.txt"
    rng = random.Random(0)
    seq.write_text("".join(f"u{u} " + " ".join(f"i{rng.randrange(400)}" for _ in range(rng.randrange(5, 30))) + "\n" for u in range(6000)))
    r = comirec("prepare", "--format", "sequences", "--input", str(seq), "--out", str(root / "prepared"))
    assert r.returncode == 0, r.stderr
    return {"seed1": root / "seed1", "seed2": root / "seed2", "seq": seq, "prepared": root / "prepared", "seconds": seconds}  # type: ignore[dict-item]


def test_kill_synth_and_prepare(refs, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(SEED)
    seen = set()
    for i in range(3):
        out = tmp_path / f"s{i}"
        killed_at(rng.uniform(0.2, 1.2 * refs["seconds"]), *SYNTH, "--seed", "1", "--out", str(out))
        seen.add(absent_or_identical(out, refs["seed1"]))
        # a later command writing the same --out cleans up after the dead writer and succeeds
        r = comirec(*SYNTH, "--seed", "1", "--out", str(out), "--overwrite")
        assert r.returncode == 0, r.stderr
        assert absent_or_identical(out, refs["seed1"]) == "0" and siblings(out) == []
    for i in range(2):
        out = tmp_path / f"p{i}"
        argv = ["prepare", "--format", "sequences", "--input", str(refs["seq"]), "--out", str(out)]
        killed_at(rng.uniform(0.2, 2.0), *argv)
        seen.add(absent_or_identical(out, refs["prepared"]))
        r = comirec(*argv, "--overwrite")
        assert r.returncode == 0, r.stderr
        assert absent_or_identical(out, refs["prepared"]) == "0" and siblings(out) == []


def test_kill_overwrite(refs, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    rng = random.Random(SEED + 1)
    out = tmp_path / "ds"
    for _ in range(3):
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(refs["seed1"], out)
        killed_at(rng.uniform(0.2, 1.2 * refs["seconds"]), *SYNTH, "--seed", "2", "--out", str(out), "--overwrite")
        state = absent_or_identical(out, refs["seed1"], refs["seed2"])
        olds = [s for s in siblings(out) if ".old-" in s]
        assert state in ("0", "1") or olds, "the old data is gone and the new is not there"
        r = comirec(*SYNTH, "--seed", "2", "--out", str(out), "--overwrite")
        assert r.returncode == 0, r.stderr
        assert absent_or_identical(out, refs["seed1"], refs["seed2"]) == "1" and siblings(out) == []


def test_kill_between_the_two_renames_of_overwrite(refs, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    out = tmp_path / "ds"
    shutil.copytree(refs["seed1"], out)
    # the kill lands exactly after `out -> .out.old-PID` and before `tmp -> out`
    code = ("import os, signal, sys; import comirec.data.prepared as p\n"
            "p.rename_noreplace = lambda src, dst: os.kill(os.getpid(), signal.SIGKILL)\n"
            "from comirec.cli import main; sys.exit(main(sys.argv[1:]))")
    p = subprocess.run([sys.executable, "-c", code, *SYNTH, "--seed", "2", "--out", str(out), "--overwrite"], env=ENV,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == -signal.SIGKILL
    assert not out.exists() and [s for s in siblings(out) if ".old-" in s]  # the old data, only there
    r = comirec(*SYNTH, "--seed", "1", "--out", str(out))  # any later writer of the same --out
    assert r.returncode == 2 and "restored" in r.stderr and "already exists" in r.stderr, r.stderr
    assert absent_or_identical(out, refs["seed1"]) == "0" and siblings(out) == []


def test_two_concurrent_writers(refs, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "race"
    argv = [sys.executable, "-m", "comirec.cli", *SYNTH, "--seed", "1", "--out", str(out)]
    procs = [subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV) for _ in range(2)]
    results = [(p.returncode, p.communicate(timeout=300)[1]) for p in procs]
    results = [(p.returncode, err) for p, (_, err) in zip(procs, results)]
    codes = sorted(c for c, _ in results)
    assert codes[0] == 0 and codes[1] in (1, 2), results  # never two "wrote race"
    loser = next(err for c, err in results if c != 0).strip()
    assert len(loser.splitlines()) == 1 and ("another comirec process is writing it" in loser or "already exists" in loser), loser
    assert absent_or_identical(out, refs["seed1"]) == "0" and siblings(out) == []


def test_kill_train_then_resume(refs, tmp_path) -> None:  # type: ignore[no-untyped-def]
    torch = pytest.importorskip("torch")
    data = str(refs["prepared"])
    argv = ["--model", "youtube-dnn", "--dim", "16", "--maxlen", "12", "--batch-size", "32", "--max-steps", "60", "--eval-every", "20",
            "--eval-users", "200", "--threads", "1", "--no-progress"]
    whole = tmp_path / "whole"
    t0 = time.perf_counter()
    r = comirec("train", "--data", data, "--out", str(whole), *argv)
    assert r.returncode == 0, r.stderr
    seconds = time.perf_counter() - t0
    want = torch.load(whole / "last.pt", weights_only=True)
    rng = random.Random(SEED + 2)
    for i in range(2):
        run = tmp_path / f"r{i}"
        killed_at(rng.uniform(0.3 * seconds, 0.9 * seconds), "train", "--data", data, "--out", str(run), *argv)
        again = ["--resume"] if (run / "config.json").is_file() else argv  # not even created: start again
        r = comirec("train", "--data", data, "--out", str(run), *again)
        assert r.returncode == 0, r.stderr
        got = torch.load(run / "last.pt", weights_only=True)
        assert got["step"] == want["step"] == 60
        assert all(torch.equal(got["model"][k], want["model"][k]) for k in want["model"])
        assert not list(run.glob("*.tmp")) and not (tmp_path / f"r{i}.lock").exists()


@pytest.fixture
def tiny_tmpfs(tmp_path: Path):  # type: ignore[no-untyped-def]
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs Linux and root (tests/test_outputs.py covers ENOSPC with a patched writer)")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=5m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or r.returncode}); tests/test_outputs.py covers ENOSPC with a patched writer")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_full_disk(refs, tiny_tmpfs) -> None:  # type: ignore[no-untyped-def]
    out = tiny_tmpfs / "X"
    r = comirec("synth", "--users", "200000", "--items", "20000", "--categories", "50", "--out", str(out))
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])  # was -7: SIGBUS through a memory map
    assert r.stderr.strip().startswith(f"comirec synth: error: no space left on device writing {out}/")
    assert len(r.stderr.strip().splitlines()) == 1 and os.listdir(tiny_tmpfs) == []
    with open(tiny_tmpfs / "ballast", "wb") as f:  # leave ~100 kB
        f.write(b"\0" * (5 * 2**20 - 100 * 2**10))
    r = comirec("prepare", "--format", "sequences", "--input", str(refs["seq"]), "--out", str(out))
    assert r.returncode == 1 and r.stderr.strip().startswith(f"comirec prepare: error: no space left on device writing {out}/"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and os.listdir(tiny_tmpfs) == ["ballast"]
    pytest.importorskip("torch")
    run = tiny_tmpfs / "run"
    r = comirec("train", "--data", str(refs["prepared"]), "--out", str(run), "--model", "youtube-dnn", "--dim", "64", "--max-steps", "4",
                "--eval-every", "2", "--batch-size", "16", "--threads", "1", "--no-progress")
    assert r.returncode == 1 and r.stderr.strip().startswith("comirec train: error: no space left on device writing "), r.stderr[-2000:]
    assert len(r.stderr.strip().splitlines()) == 1 and not list(run.glob("*.tmp"))
