"""`comirec prepare` and `comirec synth` through the command line entry point."""

from __future__ import annotations

import subprocess
import sys

from comirec.cli import main
from comirec.data import load_prepared


def test_prepare_command(tmp_path, capsys):
    f = tmp_path / "UserBehavior.csv"
    f.write_text("".join(f"{u},{i},{i % 4},pv,{k}\n" for k, (u, i) in enumerate((k % 30, k % 17) for k in range(900))))
    out = tmp_path / "tb"
    code = main(["prepare", "--format", "taobao", "--input", str(f), "--out", str(out), "--seed", "7", "--kcore"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "UserBehavior: 30 users, 17 items, 4 categories, 900 interactions" in printed
    for name in ("train", "valid", "test"):
        assert name in printed
    ds = load_prepared(out)
    assert ds.header["protocol"]["kcore"] is True and ds.header["protocol"]["split"]["seed"] == 7
    # Bad input: one clear line on stderr, exit status 2, no traceback.
    code = main(["prepare", "--format", "taobao", "--input", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and "comirec prepare: error: input:" in err and "Traceback" not in err


def test_synth_command(tmp_path, capsys):
    out = tmp_path / "syn"
    code = main(["synth", "--users", "500", "--items", "300", "--categories", "6", "--out", str(out),
                 "--interests-per-user", "1,2", "--seed", "3"])  # fmt: skip
    assert code == 0
    assert "SYNTHETIC" in capsys.readouterr().out
    ds = load_prepared(out)
    assert ds.synthetic and ds.n_users == 500 and ds.header["source"]["generator"]["interests_per_user"] == [1, 2]
    assert main(["synth", "--users", "5", "--items", "3", "--categories", "6", "--out", str(tmp_path / "bad")]) == 2


def test_unknown_format_is_rejected_by_the_parser(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "comirec.cli", "prepare", "--format", "orc", "--input", "x", "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 2 and "invalid choice: 'orc'" in r.stderr


def test_import_stays_light():
    code = "import sys, comirec, comirec.data; print(sorted(m for m in ('torch', 'pyarrow', 'faiss') if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert r.stdout.strip() == "[]"
