from pathlib import Path

import pytest

# The shared, read-only data sits beside the project root (never copied into it).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


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
