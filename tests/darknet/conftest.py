"""Fixtures for the darknet tests: the shared real data (skipped when absent) and tiny cfg fixtures."""
import textwrap
from pathlib import Path

import pytest

from tests.paths import SHARED_DATA

DARKNET = SHARED_DATA / "darknet"


@pytest.fixture
def darknet_data() -> Path:
    if not DARKNET.is_dir():
        pytest.skip(f"shared darknet data not found at {DARKNET}")
    return DARKNET


@pytest.fixture
def write_cfg(tmp_path):
    """write_cfg(text, name="t.cfg") -> Path of a dedented cfg file in tmp_path."""
    def _write(text: str, name: str = "t.cfg") -> Path:
        p = tmp_path / name
        p.write_text(textwrap.dedent(text).lstrip("\n"))
        return p
    return _write
