"""The darknet references for the detection tests (skipped when the shared data is absent)."""
from pathlib import Path

import pytest

from tests.paths import SHARED_DATA

REF = SHARED_DATA / "darknet" / "reference"


@pytest.fixture
def ref() -> Path:
    if not REF.is_dir():
        pytest.skip(f"darknet references not found at {REF}")
    return REF
