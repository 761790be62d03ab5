"""Helpers of the staged-ternarization tests: a tiny region detector cfg and a synthetic detection set."""
from pathlib import Path

import numpy as np
from PIL import Image

TINY_REGION_CFG = (Path(__file__).resolve().parents[1] / "fixtures" / "cfg" / "tiny_region.cfg").read_text()


def make_shapes(root: Path, n_train: int = 8, n_valid: int = 4, seed: int = 0) -> Path:
    """Red and green rectangles on grey, darknet layout (images/, labels/, lists, .data). Returns the .data."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(exist_ok=True)
    w, h = 80, 60
    for split, n in (("train", n_train), ("valid", n_valid)):
        paths = []
        for k in range(n):
            im = np.full((h, w, 3), 128, np.uint8)
            lines = []
            for c in range(2):
                bw, bh = int(rng.integers(14, 30)), int(rng.integers(12, 24))
                x0, y0 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
                im[y0:y0 + bh, x0:x0 + bw] = (220, 30, 30) if c == 0 else (30, 200, 30)
                lines.append(f"{c} {(x0 + bw / 2) / w:.6f} {(y0 + bh / 2) / h:.6f} {bw / w:.6f} {bh / h:.6f}")
            name = f"{split}_{k:03d}"
            Image.fromarray(im).save(root / "images" / f"{name}.png")
            (root / "labels" / f"{name}.txt").write_text("\n".join(lines) + "\n")
            paths.append(str(root / "images" / f"{name}.png"))
        (root / f"{split}.txt").write_text("\n".join(paths) + "\n")
    (root / "shapes.names").write_text("red\ngreen\n")
    data = root / "shapes.data"
    data.write_text(f"classes = 2\ntrain = {root / 'train.txt'}\nvalid = {root / 'valid.txt'}\n"
                    f"names = {root / 'shapes.names'}\nbackup = {root / 'backup'}\n")
    return data
