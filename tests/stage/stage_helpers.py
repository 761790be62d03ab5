"""Helpers of the staged-ternarization tests: a tiny region detector cfg and a synthetic detection set."""
from pathlib import Path

import numpy as np
from PIL import Image

TINY_REGION_CFG = """[net]
batch=4
subdivisions=1
width=64
height=64
channels=3
momentum=0.9
decay=0.0005
learning_rate=0.001
burn_in=1
max_batches=3
policy=constant

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=4
stride=4

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=leaky

[convolutional]
size=1
stride=1
pad=1
filters=14
activation=linear

[region]
anchors=1.5,1.5,3,3
bias_match=1
classes=2
coords=4
num=2
softmax=1
jitter=.2
rescore=1
object_scale=5
noobject_scale=1
class_scale=1
coord_scale=1
thresh=.6
random=0
"""


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
