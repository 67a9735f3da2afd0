"""Shared test fixtures: where the real data lives (never copied into the repository)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("COMIREC_SHARED_DATA", REPO.parent / "shared" / "data"))
BEAUTY_DIR = SHARED_DATA / "amazon-beauty"
# ml-100k is not redistributable; .ci/run (or scripts/get-ml100k.sh) extracts it from the recbole wheel.
ML100K_DIR = Path(os.environ.get("COMIREC_ML100K", Path.home() / ".cache" / "comirec" / "ml-100k"))


@pytest.fixture(scope="session")
def beauty_dir() -> Path:
    if not (BEAUTY_DIR / "Beauty.txt").exists():
        pytest.skip(f"real Amazon Beauty data not found at {BEAUTY_DIR} (set COMIREC_SHARED_DATA)")
    return BEAUTY_DIR


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    if not (ML100K_DIR / "ml-100k.inter").exists():
        pytest.skip(f"ml-100k not found at {ML100K_DIR}: run scripts/get-ml100k.sh (needs PyPI access)")
    return ML100K_DIR
