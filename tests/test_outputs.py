"""Writing outputs safely (issue 9): a full disk, two writers of one --out, dead writers' leftovers,
corrupt prepared datasets and the one-line errors of the CLI."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from comirec.cli import main
from comirec.data import PreparedWriter, load_prepared
from comirec.data import _writing
from comirec.data._writing import OutputBusyError, OutputLock

REPO = Path(__file__).resolve().parents[1]
SYNTH = ["synth", "--users", "300", "--items", "120", "--categories", "6", "--mean-length", "8", "--max-length", "30"]


def cli(*argv: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``comirec ARGV`` in a fresh interpreter (this worktree's package first on the path)."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "python") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "comirec.cli", *argv], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=timeout)


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def same_dataset(a: Path, b: Path) -> bool:
    from comirec.data.prepared import ARRAYS

    return all((a / f"{n}.npy").read_bytes() == (b / f"{n}.npy").read_bytes() for n in ARRAYS)


def leftovers(parent: Path, name: str) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}.") or p.name == f"{name}.lock")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "ds"
    assert main([*SYNTH, "--out", str(out)]) == 0
    return out


# -- item 2: a full disk -------------------------------------------------------------------------


def test_synth_writes_no_memory_map(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
        mode = kwargs.get("mode", args[1] if len(args) > 1 else "r")
        if mode in ("w+", "r+", "readwrite", "write"):
            raise AssertionError("a memory-mapped write: a full disk would be SIGBUS")
        return real(*args, **kwargs)

    real = np.lib.format.open_memmap
    monkeypatch.setattr(np.lib.format, "open_memmap", refuse)
    assert main([*SYNTH, "--out", str(tmp_path / "ds")]) == 0
    load_prepared(tmp_path / "ds")


def test_enospc_while_writing_is_one_line_and_exit_1(reference, tmp_path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    real = np.save

    def full(file, arr, *a, **kw):  # type: ignore[no-untyped-def]
        if getattr(file, "name", "").endswith("item_freq.npy"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(file, arr, *a, **kw)

    monkeypatch.setattr(np, "save", full)
    out = tmp_path / "ds"
    assert main([*SYNTH, "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"comirec synth: error: no space left on device writing {out / 'item_freq.npy'}"
    assert not out.exists() and leftovers(tmp_path, "ds") == []  # the temporary directory is gone
    # prepare: the same writer
    seq = tmp_path / "s.txt"
    seq.write_text("".join(f"u{u} " + " ".join(f"i{(u * 7 + j) % 30}" for j in range(8)) + "\n" for u in range(50)))
    assert main(["prepare", "--format", "sequences", "--input", str(seq), "--out", str(tmp_path / "p")]) == 1
    assert "no space left on device writing" in capsys.readouterr().err
    assert leftovers(tmp_path, "p") == []


def test_train_on_a_full_disk(reference, tmp_path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("torch")
    import comirec.runs as runs

    real = runs.atomic_write

    def full(path, write, mode="wb"):  # type: ignore[no-untyped-def]
        if path.name == runs.BEST:
            def failing(f):  # type: ignore[no-untyped-def]
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(path, failing, mode)
        return real(path, write, mode)

    monkeypatch.setattr(runs, "atomic_write", full)
    run = tmp_path / "run"
    argv = ["train", "--data", str(reference), "--out", str(run), "--model", "youtube-dnn", "--dim", "8", "--max-steps", "4",
            "--eval-every", "2", "--batch-size", "16", "--threads", "1", "--no-progress"]
    assert main(argv) == 1
    assert capsys.readouterr().err.strip() == f"comirec train: error: no space left on device writing {run / 'best.pt'}"
    assert not list(run.glob("*.tmp")) and not (tmp_path / "run.lock").exists()


def test_torch_save_error_on_a_real_file_is_named(tmp_path) -> None:  # type: ignore[no-untyped-def]
    torch = pytest.importorskip("torch")
    from comirec.runs import atomic_torch_save

    with pytest.raises(OSError, match=f"^cannot write {tmp_path / 'missing' / 'x.pt'}: No such file"):
        atomic_torch_save({"w": torch.zeros(3)}, tmp_path / "missing" / "x.pt")


# The same on a real 5 MB tmpfs (where the machine allows mounting one): tests/test_faults.py.


# -- item 4: two writers of one --out ------------------------------------------------------------


def test_second_writer_fails_while_the_first_holds_the_lock(reference, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "race"
    with OutputLock(out):
        assert main([*SYNTH, "--out", str(out)]) == 1
        err = capsys.readouterr().err
        assert "another comirec process is writing it" in err and str(out) in err
        run = tmp_path / "run"
        with OutputLock(run):
            assert main(["train", "--data", str(reference), "--out", str(run), "--model", "mostpop"]) == 1
            assert "another comirec process is writing it" in capsys.readouterr().err
        repro = tmp_path / "repro"
        with OutputLock(repro):
            assert main(["reproduce", "--data", str(reference), "--out", str(repro), "--models", "mostpop", "--no-progress"]) == 1
            assert "another comirec process is writing it" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "race.lock").exists()


@pytest.mark.parametrize("renameat2", [True, False], ids=["renameat2", "fallback"])
def test_final_rename_never_replaces_a_directory_that_appeared(reference, tmp_path, monkeypatch, renameat2) -> None:  # type: ignore[no-untyped-def]
    if not renameat2:
        monkeypatch.setattr(_writing, "_renameat2", False)
    elif not _writing._libc_renameat2():
        pytest.skip("renameat2 is not available on this platform")
    src = load_prepared(reference)
    out = tmp_path / "ds"
    with pytest.raises(OutputBusyError, match="appeared while this command was writing it"):
        with PreparedWriter(out) as w:
            for name in ("indptr", "items", "split", "item_freq", "item_cat", "user_raw", "item_raw", "cat_raw"):
                w.save(name, getattr(src, name))
            out.mkdir()  # another program creates the directory meanwhile
            (out / "theirs.txt").write_text("keep me")
            w.commit(dict(src.header))
    assert (out / "theirs.txt").read_text() == "keep me" and sorted(os.listdir(out)) == ["theirs.txt"]
    assert leftovers(tmp_path, "ds") == []


def test_out_naming_a_file_is_bad_input(reference, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "afile"
    f.write_text("x")
    assert main([*SYNTH, "--out", str(f)]) == 2
    assert main([*SYNTH, "--out", str(f / "sub")]) == 2
    assert main([*SYNTH, "--out", str(f), "--overwrite"]) == 2
    errs = capsys.readouterr().err.strip().splitlines()
    assert len(errs) == 3 and all(str(f) in e and "not a directory" in e for e in errs), errs
    pytest.importorskip("torch")
    assert main(["train", "--data", str(reference), "--out", str(f), "--model", "mostpop"]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert f.read_text() == "x"


# -- item 5: leftovers of dead writers ----------------------------------------------------------


def test_stale_temporary_directories_are_removed(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    dead, alive = dead_pid(), os.getppid()
    for pid, tag in ((dead, "abc"), (alive, "def")):
        d = tmp_path / f".ds.tmp-{pid}-{tag}"
        d.mkdir()
        (d / "items.npy").write_bytes(b"\0" * 1000)
    assert main([*SYNTH, "--out", str(tmp_path / "ds")]) == 0
    assert leftovers(tmp_path, "ds") == [f".ds.tmp-{alive}-def"]  # a live writer's is kept
    assert "left by a writer" in capsys.readouterr().err


def test_orphaned_old_copy_is_restored_or_removed(reference, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "ds"
    shutil.copytree(reference, out)
    old = tmp_path / f".ds.old-{dead_pid()}"
    os.rename(out, old)  # killed between the two renames of --overwrite: only the old copy is left
    assert main([*SYNTH, "--out", str(out)]) == 2  # no --overwrite: the restored dataset stays
    err = capsys.readouterr().err
    assert f"restored {out}" in err and "already exists" in err
    assert same_dataset(out, reference) and not old.exists()
    # killed after the second rename: the replaced copy is only in the way
    shutil.copytree(reference, old)
    assert main([*SYNTH, "--seed", "3", "--out", str(out), "--overwrite"]) == 0
    assert not old.exists() and "removed" in capsys.readouterr().err
    assert not same_dataset(out, reference) and leftovers(tmp_path, "ds") == []


# -- item 8: corrupt prepared datasets ----------------------------------------------------------


def corrupt(src: Path, dst: Path, name: str, values: np.ndarray | None = None, raw: bytes | None = None) -> Path:
    shutil.copytree(src, dst)
    if raw is not None:
        (dst / f"{name}.npy").write_bytes(raw)
    else:
        np.save(dst / f"{name}.npy", values)
    return dst


@pytest.mark.parametrize("bad", [0, -3, "n+1"])
def test_item_ids_out_of_range(reference, tmp_path, bad) -> None:  # type: ignore[no-untyped-def]
    ds = load_prepared(reference)
    items = np.array(ds.items)
    items[len(items) // 2] = ds.n_items + 1 if bad == "n+1" else bad
    path = corrupt(reference, tmp_path / "c", "items", items)
    with pytest.raises(ValueError, match=rf"items\.npy: expected item ids .* in 1\.\.{ds.n_items}"):
        load_prepared(path)


def test_other_ranges_are_checked(reference, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ds = load_prepared(reference)
    indptr = np.array(ds.indptr)
    indptr[1], indptr[2] = indptr[2], indptr[1]
    with pytest.raises(ValueError, match=r"indptr\.npy: expected non-decreasing"):
        load_prepared(corrupt(reference, tmp_path / "a", "indptr", indptr))
    split = np.array(ds.split)
    split[0] = 7
    with pytest.raises(ValueError, match=r"split\.npy: expected split codes"):
        load_prepared(corrupt(reference, tmp_path / "b", "split", split))
    cat = np.array(ds.item_cat)
    cat[3] = ds.n_cats
    with pytest.raises(ValueError, match=r"item_cat\.npy: expected categories"):
        load_prepared(corrupt(reference, tmp_path / "c", "item_cat", cat))


# -- item 9: one line naming the file and what was expected -------------------------------------


def test_bad_npy_files(reference, tmp_path) -> None:  # type: ignore[no-untyped-def]
    good = (reference / "items.npy").read_bytes()
    cases = {"empty": b"", "truncated": good[: len(good) // 2], "garbage": os.urandom(300), "text": b"hello\n" * 40}
    for tag, raw in cases.items():
        path = corrupt(reference, tmp_path / tag, "items", raw=raw)
        for mmap in (True, False):
            with pytest.raises(ValueError) as exc:
                load_prepared(path, mmap=mmap)
            msg = str(exc.value)
            assert msg.startswith(f"{path / 'items.npy'}: ") and "\n" not in msg, (tag, msg)
            assert "pickled" not in msg and msg.isprintable(), (tag, msg)


def test_header_that_is_not_an_object(reference, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "h"
    shutil.copytree(reference, path)
    (path / "header.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"header\.json: expected a JSON object, got a JSON list"):
        load_prepared(path)
    (path / "header.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(ValueError, match=r"header\.json: not valid JSON"):
        load_prepared(path)


def test_corrupt_checkpoint_under_evaluate(reference, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("torch")
    run = tmp_path / "run"
    assert main(["train", "--data", str(reference), "--out", str(run), "--model", "youtube-dnn", "--dim", "8", "--max-steps", "2",
                 "--eval-every", "2", "--batch-size", "16", "--threads", "1", "--no-progress"]) == 0
    good = (run / "best.pt").read_bytes()
    for raw in (good[: len(good) // 2], b"", os.urandom(2000), good[:-40]):
        (run / "best.pt").write_bytes(raw)
        capsys.readouterr()
        assert main(["evaluate", "--run", str(run), "--device", "cpu"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"comirec evaluate: error: {run / 'best.pt'}: not a readable comirec checkpoint"), err
        assert len(err.splitlines()) == 1
    (run / "config.json").write_text("[]")
    assert main(["evaluate", "--run", str(run)]) == 2
    assert "config.json: expected a JSON object" in capsys.readouterr().err


def test_invalid_faiss_factory_is_one_line(reference, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("torch")
    pytest.importorskip("faiss")
    run = tmp_path / "run"
    assert main(["train", "--data", str(reference), "--out", str(run), "--model", "mostpop", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--run", str(run), "--index", "IVF4096,Flat", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("comirec evaluate: error: factory: faiss cannot build 'IVF4096,Flat'") and len(err.splitlines()) == 1, err


def test_garbage_in_sequences_names_file_and_line_escaped(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    seq = tmp_path / "s.txt"
    seq.write_bytes(b"u1 a b c\nu2 a b\nu3 a \x1b[31m\xff\xfe b\n")
    assert main(["prepare", "--format", "sequences", "--input", str(seq), "--out", str(tmp_path / "o"),
                 "--min-item-count", "1", "--min-user-count", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"comirec prepare: error: {seq}, line 3: expected text lines") and "\\xff\\xfe" in err, err
    assert "\x1b" not in err and "\ufffd" not in err and len(err.splitlines()) == 1


def test_unprintable_bytes_in_messages_are_escaped(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    name = os.fsdecode(b"bad\xff\x1b[2Jname")  # a file name that is not UTF-8 (a surrogate escape)
    assert main(["prepare", "--format", "sequences", "--input", str(tmp_path / name), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "no such file" in err and "\\udcff" in err, err


def test_recommend_messages_start_with_histories(reference, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("torch")
    from comirec.serving import Recommender

    run = tmp_path / "run"
    assert main(["train", "--data", str(reference), "--out", str(run), "--model", "youtube-dnn", "--dim", "8", "--max-steps", "2",
                 "--eval-every", "2", "--batch-size", "16", "--threads", "1", "--no-progress"]) == 0
    rec = Recommender.load(run)
    for bad in ([[1, 2], [3, [4, 5]]], [1.5, 2.5], [[1, 2], [10**6]], [[1, 2], 3], [[[1, 2]], [[3, 4]]]):
        with pytest.raises((ValueError, TypeError)) as exc:
            rec.recommend(bad, n=5)
        assert str(exc.value).startswith("histories"), (bad, str(exc.value))
    with pytest.raises(ValueError, match=r"^histories\[1\]: expected a flat sequence"):
        rec.recommend([[1, 2], [3, [4, 5]]], n=5)
