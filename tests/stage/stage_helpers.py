"""Helpers of the staged-ternarization tests: a tiny region detector cfg and a synthetic detection set."""
from pathlib import Path

from tests.yolo.detector_helpers import make_dataset

TINY_REGION_CFG = (Path(__file__).resolve().parents[1] / "fixtures" / "cfg" / "tiny_region.cfg").read_text()


def make_shapes(root: Path, n_train: int = 8, n_valid: int = 4, seed: int = 0) -> Path:
    """Red and green rectangles on grey, darknet layout (the detector tests' synthetic set). Returns the .data."""
    return make_dataset(root, n_train, n_valid, seed=seed)
