"""From candidates after NMS to the detections darknet reports (``draw_detections``), numpy only.

Darknet walks its detection array in order and, for each class whose probability is > thresh, prints
``name: NN%`` (the float32 ``prob*100`` printed with ``%.0f``). The box it draws is
``left = (int)((x − w/2)·im_w)`` and so on, clamped to the image.
"""
from __future__ import annotations

import warnings

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .boxes import Candidates

__all__ = ["Detection", "select_detections", "format_detection"]

_F = np.float32


@dataclass
class Detection:
    index: int          # candidate index (get_network_boxes order)
    class_id: int
    name: str
    prob: float         # float32 value, as darknet holds it
    objectness: float
    x: float            # box centre and size, relative to the image
    y: float
    w: float
    h: float
    left: int           # pixels, as draw_detections computes them
    top: int
    right: int
    bottom: int

    def to_dict(self) -> dict:
        """JSON-ready: class, probability, the box in pixels (as drawn) and relative (centre, size)."""
        return {"class": self.name, "class_id": self.class_id, "probability": self.prob,
                "objectness": self.objectness,
                "box": {"left": self.left, "top": self.top, "right": self.right, "bottom": self.bottom,
                        "width": self.right - self.left, "height": self.bottom - self.top},
                "relative": {"x": self.x, "y": self.y, "w": self.w, "h": self.h}, "candidate": self.index}


def _ltrb(box, im_w: int, im_h: int) -> tuple[int, int, int, int]:
    x, y, w, h = (float(v) for v in box)        # C promotes the float box to double here

    def pixel(v):                               # darknet's (int) cast, on values an int holds
        return int(min(max(v, -2.0 ** 31), 2.0 ** 31 - 1))

    left, right = pixel((x - w / 2.) * im_w), pixel((x + w / 2.) * im_w)
    top, bot = pixel((y - h / 2.) * im_h), pixel((y + h / 2.) * im_h)
    return max(left, 0), max(top, 0), min(right, im_w - 1), min(bot, im_h - 1)


def select_detections(cands: Candidates, thresh: float, im_w: int, im_h: int,
                      names: Optional[Sequence[str]] = None) -> list[Detection]:
    """Every (candidate, class) with prob > thresh, in darknet's print order."""
    t = _F(thresh)
    out = []
    rows, classes = np.nonzero(cands.prob > t)                 # row-major: candidate order, then class
    finite = np.isfinite(cands.boxes).all(1)
    if not finite[rows].all():
        warnings.warn(f"{int((~finite[rows]).sum())} detections with non-finite boxes dropped: the network's "
                      "outputs overflow float32", RuntimeWarning, stacklevel=2)
    for r, k in zip(rows.tolist(), classes.tolist()):
        box = cands.boxes[r]
        if not finite[r]:
            continue
        name = names[k] if names is not None and k < len(names) else str(k)
        out.append(Detection(int(cands.index[r]), k, name, float(cands.prob[r, k]), float(cands.objectness[r]),
                             *(float(v) for v in box), *_ltrb(box, im_w, im_h)))
    return out


def format_detection(d: Detection, boxes: bool = True) -> str:
    """``name: NN%`` as darknet prints it, plus (with ``boxes``) AlexeyAB's ``-ext_output`` box."""
    pct = float(_F(d.prob) * _F(100))                          # float*int is float in C
    line = f"{d.name}: {pct:.0f}%"
    if boxes:
        line += (f"\t(left_x: {d.left:4d}   top_y: {d.top:4d}   width: {d.right - d.left:4d}   "
                 f"height: {d.bottom - d.top:4d})")
    return line
