"""Boxes on the image, as ``draw_detections`` draws them (Pillow).

Colours are darknet's ``get_color``: class ``k`` of ``n`` picks ``offset = k·123457 % n`` on a ramp
through magenta, blue, cyan, green, yellow, red. The box is ``max(1, ⌊0.006·im_h⌋)`` pixels wide
(darknet draws nothing for images under 167 pixels high) and carries the class names of the detection,
joined by ", ", on a filled label.
"""
from __future__ import annotations

import math
from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

from .results import Detection

__all__ = ["get_color", "draw_detections"]

_COLORS = ((1, 0, 1), (0, 0, 1), (0, 1, 1), (0, 1, 0), (1, 1, 0), (1, 0, 0))


def get_color(c: int, x: int, max_: int) -> float:
    """Darknet's ``get_color(c, x, max)``: channel c (2 = red, 1 = green, 0 = blue) in [0, 1]."""
    ratio = x / max_ * 5
    i, j = math.floor(ratio), math.ceil(ratio)
    ratio -= i
    return (1 - ratio) * _COLORS[i][c] + ratio * _COLORS[j][c]


def class_rgb(class_id: int, classes: int) -> tuple[int, int, int]:
    offset = class_id * 123457 % classes
    return tuple(int(round(255 * get_color(c, offset, classes))) for c in (2, 1, 0))


def draw_detections(image, detections: Sequence[Detection], classes: int) -> Image.Image:
    """A copy of ``image`` (path or PIL image) with one box per detected candidate, darknet's colours."""
    im = Image.open(image) if not isinstance(image, Image.Image) else image
    im = im.convert("RGB")
    draw = ImageDraw.Draw(im)
    width = max(1, int(im.height * .006))
    try:                                          # darknet's label height is about 3% of the image
        font = ImageFont.load_default(size=max(10, int(im.height * .03)))
    except TypeError:                             # Pillow < 10.1: one fixed-size bitmap font
        font = ImageFont.load_default()
    grouped: dict = {}
    for d in detections:                          # one box per candidate, named by all its classes
        grouped.setdefault(d.index, []).append(d)
    for dets in grouped.values():
        first = dets[0]
        if first.right < first.left or first.bottom < first.top:
            continue                              # nothing of it lies inside the image
        rgb = class_rgb(first.class_id, max(classes, 1))
        for i in range(width):                    # draw_box_width: nested 1-pixel boxes, inwards
            box = [first.left + i, first.top + i, first.right - i, first.bottom - i]
            if box[2] >= box[0] and box[3] >= box[1]:
                draw.rectangle(box, outline=rgb)
        label = ", ".join(d.name for d in dets)
        l, t, r, b = draw.textbbox((0, 0), label, font=font)
        top = max(first.top - (b - t) - 2 * width, 0)
        draw.rectangle([first.left, top, first.left + (r - l) + 2 * width, top + (b - t) + 2 * width], fill=rgb)
        draw.text((first.left + width, top + width - t), label, fill=(0, 0, 0), font=font)
    return im
