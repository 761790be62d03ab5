"""Fixtures for the detector tests (helpers in detector_helpers.py; ``shapes``, the tiny synthetic set, is in
tests/conftest.py): the shared real data (BCCD, darknet cfgs and weights), skipped when absent."""
from pathlib import Path

import pytest

from tests.yolo.detector_helpers import SHARED


@pytest.fixture
def shared() -> Path:
    if not (SHARED / "bccd").is_dir():
        pytest.skip(f"shared data not found at {SHARED}")
    return SHARED


@pytest.fixture(autouse=True)
def _runs_in_tmp(tmp_path, monkeypatch):
    """Training writes its run folder under ./runs/detect: each test runs in its own temporary folder."""
    monkeypatch.chdir(tmp_path)
