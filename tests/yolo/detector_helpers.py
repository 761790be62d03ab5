"""Helpers for the detector tests: tiny synthetic datasets in darknet's and VOC's layouts, and tiny cfgs
(templates in tests/fixtures/cfg). Imported as ``tests.yolo.detector_helpers`` from every folder (a module of
its own, not conftest.py: test folders each have a conftest, and ``import conftest`` would find whichever came
first)."""
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image
from tests.paths import SHARED_DATA

SHARED = SHARED_DATA
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cfg"

# tiny detectors: templates whose {fields} write_cfg fills
REGION_CFG = (FIXTURES / "region_template.cfg").read_text()
YOLO_CFG = (FIXTURES / "yolo_template.cfg").read_text()


def write_cfg(path: Path, template: str = REGION_CFG, max_batches: int = 4, ternary: bool = False, random: int = 0,
              size: int = 32, subdivisions: int = 2):
    text = template.format(max_batches=max_batches, ternary="ternary=1" if ternary else "", random=random, size=size,
                           subdivisions=subdivisions)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def make_dataset(root: Path, n_train: int = 6, n_valid: int = 3, size=(80, 60), seed: int = 0) -> Path:
    """Coloured rectangles on grey: class 0 red, class 1 green. Darknet layout: images/ + labels/, lists and a
    .data file. Returns the .data path; ``root/boxes.npy`` keeps nothing, the labels are the truth."""
    rng = np.random.default_rng(seed)
    w, h = size
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(exist_ok=True)
    lists = {"train": [], "valid": []}
    for split, n in (("train", n_train), ("valid", n_valid)):
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
            lists[split].append(str(root / "images" / f"{name}.png"))
    for split, paths in lists.items():
        (root / f"{split}.txt").write_text("\n".join(paths) + "\n")
    (root / "shapes.names").write_text("red\ngreen\n")
    data = root / "shapes.data"
    data.write_text(f"classes = 2\ntrain = {root / 'train.txt'}\nvalid = {root / 'valid.txt'}\n"
                    f"names = {root / 'shapes.names'}\nbackup = {root / 'backup'}\n")
    return data


XML = """<annotation><filename>{id}.jpg</filename><size><width>100</width><height>50</height><depth>3</depth></size>
{objects}</annotation>"""
OBJ = ("<object><name>{name}</name><difficult>{d}</difficult><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
       "<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>")


def make_voc(root, objects_by_id, sets):
    for d in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for image_id, objs in objects_by_id.items():
        body = "".join(OBJ.format(name=n, d=d, x0=a, y0=b, x1=c, y1=e) for n, d, a, b, c, e in objs)
        (root / "Annotations" / f"{image_id}.xml").write_text(XML.format(id=image_id, objects=body))
        Image.new("RGB", (100, 50), (90, 90, 90)).save(root / "JPEGImages" / f"{image_id}.jpg")
    for name, ids in sets.items():
        (root / "ImageSets" / "Main" / f"{name}.txt").write_text("\n".join(ids) + "\n")
