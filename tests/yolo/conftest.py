"""Fixtures for the detector tests (helpers in detector_helpers.py): a tiny synthetic dataset, and the shared
real data (BCCD, darknet cfgs and weights), skipped when absent."""
from pathlib import Path

import pytest

from detector_helpers import SHARED, make_dataset


@pytest.fixture
def shapes(tmp_path) -> Path:
    return make_dataset(tmp_path / "shapes")


@pytest.fixture
def shared() -> Path:
    if not (SHARED / "bccd").is_dir():
        pytest.skip(f"shared data not found at {SHARED}")
    return SHARED


@pytest.fixture(autouse=True)
def _runs_in_tmp(tmp_path, monkeypatch):
    """Training writes its run folder under ./runs/detect: each test runs in its own temporary folder."""
    monkeypatch.chdir(tmp_path)
