"""The fuzz harness as tests (issue 9): the kept corpus and every input that ever crashed a target
replay in-process, then each target runs under atheris for a bounded time (COMIREC_FUZZ_SECONDS in
all, default 60; 0 turns the runs off). A crash fails the test and names the input to keep under
``crashes/<target>/``; see README.md."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import _targets
import pytest

import comirec

HERE = Path(__file__).resolve().parent
TARGETS = list(_targets.TARGETS)


def _inputs(kind: str, target: str) -> list[Path]:
    return sorted(p for p in (HERE / kind / target).glob("*") if p.is_file())


@pytest.mark.parametrize("target", TARGETS)
def test_corpus_and_past_crashes_replay(target: str) -> None:
    corpus, crashes = _inputs("corpus", target), _inputs("crashes", target)
    assert corpus, f"tests/fuzz/corpus/{target}/ is empty"
    for f in corpus + crashes:
        try:
            _targets.TARGETS[target](f.read_bytes())
        except BaseException as exc:
            raise AssertionError(f"{f.relative_to(HERE)}: {exc!r}") from exc


def _seconds() -> float:
    return float(os.environ.get("COMIREC_FUZZ_SECONDS", "60")) / len(TARGETS)


@pytest.mark.skipif(_seconds() <= 0, reason="fuzzing turned off (COMIREC_FUZZ_SECONDS=0)")
@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_for_a_while(target: str, tmp_path: Path, record_property: pytest.RecordProperty) -> None:
    pytest.importorskip("atheris", reason="atheris is not installed (pip install atheris); the corpus still replays")
    seconds = max(1, round(_seconds()))
    new = tmp_path / "new"  # libFuzzer adds what it finds to the first directory: not the repository's
    new.mkdir()
    package_dir = str(Path(comirec.__file__).resolve().parents[1])  # the comirec under test
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([package_dir, os.environ.get("PYTHONPATH", "")])}
    cmd = [
        sys.executable,
        str(HERE / "fuzz.py"),
        target,
        f"-max_total_time={seconds}",
        "-timeout=30",
        "-rss_limit_mb=4096",
        f"-artifact_prefix={tmp_path}/",
        str(new),
        str(HERE / "corpus" / target),
        str(HERE / "crashes" / target),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 300, env=env, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    done = re.search(r"Done (\d+) runs in (\d+) second", out)
    crashes = sorted(p.name for p in tmp_path.glob("*-*") if p.is_file())
    tail = "\n".join(line for line in out.splitlines() if not line.startswith("INFO: Instrumenting"))[-4000:]
    assert proc.returncode == 0 and done, (
        f"fuzz target {target} failed (exit {proc.returncode}); inputs written: {crashes} in {tmp_path}. "
        f"Keep each under tests/fuzz/crashes/{target}/ as a regression and fix the cause.\n{tail}"
    )
    record_property(f"fuzz_{target}_executions", int(done.group(1)))
    print(f"fuzz {target}: {done.group(1)} executions in {done.group(2)} s, no crash")
