"""`comirec demo`: the README's main job runs and shows the λ trade-off."""

from __future__ import annotations

import pytest

from comirec.cli import main


def test_demo_prints_one_row_per_lambda(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--users", "300", "--items", "5000", "--categories", "50", "--lams", "0,0.25,inf"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[1].split()
    rows = {line.split()[0]: dict(zip(header, line.split())) for line in lines[3:]}
    assert list(rows) == ["0", "0.25", "inf"]
    div = [float(rows[lam]["diversity@50"]) for lam in rows]
    assert div[0] < div[1] < div[2]  # more λ, more category diversity
    assert float(rows["0"]["recall@50"]) > float(rows["inf"]["recall@50"])


def test_demo_rejects_bad_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--users", "0"]) == 2
    assert "users: expected a positive integer" in capsys.readouterr().err
