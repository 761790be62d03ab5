"""Helpers of the staged-ternarization tests: a tiny region detector cfg and a synthetic detection set."""
from pathlib import Path

from tests.yolo.detector_helpers import make_dataset

TINY_REGION_CFG = (Path(__file__).resolve().parents[1] / "fixtures" / "cfg" / "tiny_region.cfg").read_text()


def make_shapes(root: Path, n_train: int = 8, n_valid: int = 4, seed: int = 0) -> Path:
    """Red and green rectangles on grey, darknet layout (the detector tests' synthetic set). Returns the .data."""
    return make_dataset(root, n_train, n_valid, seed=seed)


def tiny_detector(root: Path) -> tuple:
    """(the synthetic set's .data, the tiny region cfg, a float .weights of it from seed 0) under ``root``."""
    import torch
    from tritnet.darknet import DarknetNet
    data = make_shapes(root / "shapes")
    cfg = root / "tiny.cfg"
    cfg.write_text(TINY_REGION_CFG)
    start = root / "float.weights"
    torch.manual_seed(0)
    DarknetNet(str(cfg), None).save_weights(start)
    return data, cfg, start
