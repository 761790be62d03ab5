"""Ground truth for detection: one :class:`Record` per image, read from darknet's YOLO label files.

A darknet image list names images; each image's boxes live in a text file found by darknet's rule
(``fill_truth_detection``): the first ``images`` in the path becomes ``labels``, the first ``JPEGImages``
becomes ``labels``, and the image extension becomes ``.txt``. Each line is ``class cx cy w h`` with the box
centre and size relative to the image. (pjreddie's rule also turns the first ``raw`` into ``labels``; that
mangles paths such as ``drawings/``, so tritnet leaves it out.)

Darknet stops on a missing label file and trains on whatever a bad line or box holds. Here a bad entry
never stops a run: a missing label file (the image is skipped), an unreadable line, a class outside
``0..classes-1``, a zero-area box, a box whose centre lies outside the image: each is reported once, as a
:class:`DataWarning` naming the file (and line), and skipped. Boxes that only overhang an edge are clipped.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from tritnet_rt.files import TEXT_LIMIT, FileError, read_text

from ..data.errors import DataWarning, Issues

__all__ = ["Record", "DataWarning", "Issues", "label_path", "read_yolo_labels", "check_box", "read_image_list",
           "darknet_records"]

_SUFFIX_RE = re.compile(r"\.(jpe?g|png|bmp|ppm|pgm|tiff?|webp)$", re.IGNORECASE)


@dataclass
class Record:
    """One image and its boxes: (k, 4) float32 cx, cy, w, h relative to the image, classes (k,) int64, and
    ``difficult`` (k,) bool (VOC's difficult / COCO's crowd: ignored by the evaluation, not trained on)."""
    image: str
    boxes: np.ndarray
    classes: np.ndarray
    difficult: np.ndarray = None
    image_id: object = None        # COCO image id (results files), else None
    size: Optional[tuple] = None   # (w, h) when the annotation says it

    def __post_init__(self):
        self.boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
        self.classes = np.asarray(self.classes, np.int64).reshape(-1)
        if self.difficult is None:
            self.difficult = np.zeros(len(self.classes), bool)
        self.difficult = np.asarray(self.difficult, bool).reshape(-1)

    def trainable(self) -> "Record":
        """The same image without its difficult boxes (darknet's voc_label.py leaves them out of training)."""
        keep = ~self.difficult
        return Record(self.image, self.boxes[keep], self.classes[keep], None, self.image_id, self.size)


def label_path(image: str) -> str:
    """Darknet's label file for an image path (see the module docstring for the rule)."""
    p = str(image).replace("images", "labels", 1).replace("JPEGImages", "labels", 1)
    return _SUFFIX_RE.sub(".txt", p) if _SUFFIX_RE.search(p) else p + ".txt"


def check_box(cx, cy, w, h, cls, classes: int):
    """(box clipped to the image, None) for a usable box, else (None, the problem)."""
    if not all(map(math.isfinite, (cx, cy, w, h))):
        return None, "box with a non-finite value"
    if not (0 <= cls < classes):
        return None, f"class {cls} is not in 0..{classes - 1}"
    if w <= 0 or h <= 0:
        return None, f"zero-area box (w={w:g}, h={h:g})"
    if not (0 <= cx <= 1 and 0 <= cy <= 1):
        return None, f"box centre ({cx:g}, {cy:g}) outside the image"
    x1, x2 = max(cx - w / 2, 0.0), min(cx + w / 2, 1.0)
    y1, y2 = max(cy - h / 2, 0.0), min(cy + h / 2, 1.0)
    return ((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), None


def read_yolo_labels(path, classes: int, issues: Issues):
    """(boxes (k, 4), classes (k,)) of a YOLO label file; None if the file is missing or unreadable."""
    try:
        text = read_text(path, "label file", TEXT_LIMIT)
    except FileError as e:
        issues.report(path, e.reason)
        return None
    boxes, ids = [], []
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            if len(parts) < 5:
                raise ValueError
            value = float(parts[0])            # darknet reads "%d"; "2.0" is class 2, "2.5" is an error
            if not value.is_integer():
                raise ValueError
            cls = int(value)
            cx, cy, w, h = (float(v) for v in parts[1:5])
        except ValueError:
            issues.report(f"{path}:{lineno}", f"not 'class cx cy w h': {line.strip()!r}")
            continue
        box, problem = check_box(cx, cy, w, h, cls, classes)
        if problem:
            issues.report(f"{path}:{lineno}", problem)
            continue
        boxes.append(box)
        ids.append(cls)
    return np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(ids, np.int64)


def read_image_list(list_path, *bases) -> list[str]:
    """Image paths of a darknet list (one per line), resolved as given, else against ``bases`` (the list's and
    the .data file's folders), so a moved project keeps working."""
    list_path = Path(list_path)
    lines = read_text(list_path, "image list", TEXT_LIMIT).splitlines()     # a ValueError naming it
    out = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        p = Path(line)
        if not p.is_absolute() and not p.exists():
            for base in (list_path.parent, *bases):
                if (Path(base) / p).exists():
                    p = Path(base) / p
                    break
        out.append(str(p))
    return out


def darknet_records(list_path, classes: int, issues: Issues, difficult_list=None, bases=()) -> list[Record]:
    """Records of a darknet image list; ``difficult_list`` is AlexeyAB's ``difficult=`` list (parallel to the
    images; its label files hold the difficult boxes, evaluated as "ignore")."""
    images = read_image_list(list_path, *bases)
    hard = read_image_list(difficult_list, *bases) if difficult_list else None
    if hard is not None and len(hard) != len(images):
        raise ValueError(f"{difficult_list}: {len(hard)} lines, but {list_path} lists {len(images)} images "
                         f"(the difficult list must be parallel to it)")
    out = []
    for k, image in enumerate(images):
        if not Path(image).is_file():
            issues.report(image, f"image listed in {list_path} does not exist")
            continue
        labels = label_path(image)
        if not Path(labels).is_file():
            issues.report(image, f"no label file ({labels})")
            continue
        got = read_yolo_labels(labels, classes, issues)
        if got is None:
            continue
        boxes, ids = got
        diff = np.zeros(len(ids), bool)
        if hard is not None and Path(label_path(hard[k])).is_file():
            hb, hc = read_yolo_labels(label_path(hard[k]), classes, issues)
            boxes, ids = np.concatenate([boxes, hb]), np.concatenate([ids, hc])
            diff = np.concatenate([diff, np.ones(len(hc), bool)])
        out.append(Record(image, boxes, ids, diff))
    return out
