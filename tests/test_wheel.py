"""The wheel a pipeline installs: one manylinux, abi3 wheel that needs no Rust toolchain.

The wheel is built once per session with ``maturin build --compatibility manylinux_2_28 --zig``
(the dev profile: the test checks packaging, not speed), or taken from ``$COMIREC_WHEEL``
(e.g. the release wheel). Skipped, saying why, when maturin, cargo or ziglang is missing
(``pip install -c constraints.txt -e ".[test]"`` installs them; .ci/run does).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # builds the extension (about 2 minutes cold, seconds when cached)


def _maturin() -> list[str] | None:
    exe = shutil.which("maturin")
    if exe:
        return [exe]
    if importlib.util.find_spec("maturin") is not None:
        return [sys.executable, "-m", "maturin"]
    return None


def _need_build_tools() -> list[str]:
    maturin = _maturin()
    if maturin is None:
        pytest.skip("maturin is not installed (pip install -c constraints.txt maturin)")
    if shutil.which("cargo") is None:
        pytest.skip("no Rust toolchain (cargo) to build the wheel")
    return maturin


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("COMIREC_WHEEL")
    if given:
        path = Path(given)
        assert path.is_file(), f"COMIREC_WHEEL={given} is not a file"
        return path
    maturin = _need_build_tools()
    if importlib.util.find_spec("ziglang") is None:
        pytest.skip("ziglang is not installed (pip install -c constraints.txt ziglang): no manylinux build here")
    out = tmp_path_factory.mktemp("wheel")
    env = dict(os.environ, CARGO_TARGET_DIR=os.environ.get("CARGO_TARGET_DIR", str(REPO / "target")))
    subprocess.run([*maturin, "build", "--compatibility", "manylinux_2_28", "--zig", "-i", sys.executable, "-o", str(out)],
                   cwd=REPO, env=env, check=True, capture_output=True, text=True)
    (path,) = out.glob("comirec-*.whl")
    return path


def test_wheel_is_abi3_manylinux(wheel: Path) -> None:
    # One wheel for every CPython >= 3.10 on glibc >= 2.28.
    name = wheel.name
    assert "-cp310-abi3-" in name, name
    assert "manylinux_2_28_x86_64" in name or "manylinux_2_28_aarch64" in name, name
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert any(n.startswith("comirec/_core") and n.endswith(".abi3.so") for n in names), names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
    assert not any(n == "LICENSE" for n in names), names  # not into site-packages itself
    assert "License-Expression: MIT" in meta


def test_auditwheel_accepts_the_wheel(wheel: Path) -> None:
    exe = shutil.which("auditwheel")
    if exe is None:
        pytest.skip("auditwheel is not installed (pip install -c constraints.txt auditwheel)")
    got = subprocess.run([exe, "show", str(wheel)], capture_output=True, text=True)
    assert got.returncode == 0, got.stderr
    text = " ".join(got.stdout.split())
    assert 'consistent with the following platform tag: "manylinux_2_28_' in text, got.stdout


def test_wheel_installs_and_runs_without_a_rust_toolchain(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bin_dir = venv / "bin"
    # Only the venv on PATH: no cargo, rustc or rustup to fall back on.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CARGO", "RUSTUP", "PYTHON", "VIRTUAL_ENV"))}
    env.update(PATH=str(bin_dir), CARGO_HOME=str(tmp_path / "no-cargo"), RUSTUP_HOME=str(tmp_path / "no-rustup"),
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    assert shutil.which("cargo", path=env["PATH"]) is None and shutil.which("rustc", path=env["PATH"]) is None
    pip = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "--only-binary=:all:", str(wheel)],
                         env=env, capture_output=True, text=True, cwd=tmp_path)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    script = r"""
import numpy as np, comirec, comirec._core, comirec.reference as ref
assert comirec._core.__file__.startswith(PREFIX), comirec._core.__file__
rng = np.random.default_rng(0)
items = rng.integers(1, 40, size=(16, 3, 10))
scores = np.sort(rng.random((16, 3, 10), dtype=np.float32), axis=2)[:, :, ::-1]
cats = np.concatenate([[-1], rng.integers(0, 5, size=40)])
for lam in (0.0, 0.3):
    got, want = comirec.aggregate((items, scores), cats, lam=lam, n=8), ref.aggregate((items, scores), cats, lam=lam, n=8)
    assert (got.items == want.items).all() and (got.scores == want.scores).all(), (lam, got, want)
print("ok", comirec.__version__)
""".replace("PREFIX", repr(str(venv)))
    run = subprocess.run([str(bin_dir / "python"), "-c", script], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("ok")


def test_sdist_is_complete(tmp_path: Path) -> None:
    maturin = _need_build_tools()
    subprocess.run([*maturin, "sdist", "-o", str(tmp_path)], cwd=REPO, check=True, capture_output=True, text=True)
    (sdist,) = tmp_path.glob("comirec-*.tar.gz")
    with tarfile.open(sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    tracked = subprocess.run(["git", "ls-files", "tests", "benches", "rust/src"], cwd=REPO, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout: cannot list the tracked files")
    expected = {f for f in tracked.stdout.split() if f.endswith((".py", ".rs", ".md"))}
    expected |= {"LICENSE", "README.md", "pyproject.toml", "constraints.txt", "Cargo.lock"}
    assert expected <= names, sorted(expected - names)
