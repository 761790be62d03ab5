from pathlib import Path

import pytest

from tests.paths import SHARED_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def shapes(tmp_path) -> Path:
    """A tiny synthetic detection set (red and green rectangles, darknet layout); its .data file."""
    from tests.yolo.detector_helpers import make_dataset
    return make_dataset(tmp_path / "shapes")
