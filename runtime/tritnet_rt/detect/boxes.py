"""Darknet's ``get_network_boxes``: region/yolo layer outputs → candidate boxes (numpy only).

Every candidate has a box (x, y, w, h, relative to the original image after the letterbox correction),
an objectness and one probability per class, as darknet's ``detection`` array:

* ``[region]`` (``get_region_detections``): all H·W·n cells, index ``anchor·H·W + row·W + col``;
  objectness kept if > thresh else 0; prob[c] = obj·P(c) if > thresh else 0 (all 0 when obj ≤ thresh);
  anchors in grid units, w = exp(tw)·anchor_w / W.
* ``[yolo]`` (``get_yolo_detections``): only cells with objectness > thresh, location first (row-major)
  then anchor; prob[c] = obj·sigmoid(c) if > thresh else 0; anchors in pixels, w = exp(tw)·anchor_w / net_w,
  or with AlexeyAB's ``new_coords`` (tw already a logistic output) w = tw·tw·4·anchor_w / net_w.

Then ``correct_*_boxes`` undo the letterbox. Arithmetic mirrors darknet's C types (float32, with the
``exp`` and the letterbox correction in double). Fed darknet's own layer outputs, objectness and
probabilities come out bit for bit and boxes within 2 ulps (see :func:`correct_boxes`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .image import letterbox_size

__all__ = ["Candidates", "Head", "region_candidates", "yolo_candidates", "correct_boxes", "get_network_boxes"]

_F, _D = np.float32, np.float64


@dataclass
class Candidates:
    """darknet's ``detection`` array: boxes (N, 4) x, y, w, h; objectness (N,); prob (N, classes).

    ``index`` is each row's position in ``get_network_boxes``' order (NMS permutes rows, as darknet does).
    """
    boxes: np.ndarray
    objectness: np.ndarray
    prob: np.ndarray
    index: np.ndarray = field(default=None)

    def __post_init__(self):
        if self.index is None:
            self.index = np.arange(len(self.boxes))

    def __len__(self) -> int:
        return len(self.boxes)

    def take(self, order) -> "Candidates":
        return Candidates(self.boxes[order], self.objectness[order], self.prob[order], self.index[order])

    def copy(self) -> "Candidates":
        return self.take(np.arange(len(self)))

    @classmethod
    def concat(cls, parts, classes: int) -> "Candidates":
        if not parts:
            return cls(np.zeros((0, 4), _F), np.zeros(0, _F), np.zeros((0, classes), _F))
        return cls(*(np.concatenate([getattr(p, k) for p in parts])
                     for k in ("boxes", "objectness", "prob", "index")))


@dataclass
class Head:
    """What decoding needs from one region/yolo layer: its type, settings and output (any shape, darknet order)."""
    type: str                 # "region" | "yolo"
    output: np.ndarray        # n·(classes+5)·H·W floats, [anchor][entry][row][col]
    h: int
    w: int
    classes: int
    anchors: list             # flat anchor list (region: grid units; yolo: pixels)
    mask: list = None         # yolo: which anchors this layer uses
    background: bool = False  # region
    new_coords: bool = False  # yolo (AlexeyAB): w, h from logistic outputs, (2·t)²·anchor

    @classmethod
    def from_layer(cls, info, output) -> "Head":
        """From a :class:`~tritnet.darknet.LayerInfo` and that layer's output (tensor or array)."""
        if hasattr(output, "detach"):
            output = output.detach().cpu().numpy()
        a = info.attrs
        c, h, w = info.out_shape
        arr = np.asarray(output, _F).reshape(-1)
        if arr.size != c * h * w:
            raise ValueError(f"layer {info.index}: output has {arr.size} values, expected {c * h * w} "
                             f"(one image, {w}x{h}x{c})")
        n = a["num"] if info.type == "region" else len(a["mask"])
        anchors = a["anchors"] if a["anchors"] is not None else [0.5] * (2 * a["num"])
        return cls(info.type, arr.reshape(n, -1, h, w), h, w, a["classes"], list(anchors),
                   a.get("mask"), bool(a.get("background", False)), bool(a.get("new_coords", False)))


def _cells(h: int, w: int):
    row, col = np.divmod(np.arange(h * w), w)
    return row.astype(_F), col.astype(_F)


def region_candidates(head: Head, thresh: float) -> Candidates:
    out = head.output.reshape(-1, head.classes + 5, head.h * head.w)     # (n, entries, cells)
    n, t = out.shape[0], _F(thresh)
    row, col = _cells(head.h, head.w)
    anchors = np.asarray(head.anchors, _F).reshape(-1, 2)[:n]
    x = (col + out[:, 0]) / _F(head.w)
    y = (row + out[:, 1]) / _F(head.h)
    bw = (np.exp(out[:, 2].astype(_D)) * anchors[:, 0:1].astype(_D) / head.w).astype(_F)
    bh = (np.exp(out[:, 3].astype(_D)) * anchors[:, 1:2].astype(_D) / head.h).astype(_F)
    scale = np.ones_like(out[:, 4]) if head.background else out[:, 4]
    obj = np.where(scale > t, scale, _F(0))
    prob = scale[:, None, :] * out[:, 5:]                                # (n, classes, cells), float32
    prob = np.where((prob > t) & (obj[:, None, :] != 0), prob, _F(0))
    boxes = np.stack([x, y, bw, bh], -1).reshape(-1, 4)
    return Candidates(boxes, obj.reshape(-1), prob.transpose(0, 2, 1).reshape(-1, head.classes))


def yolo_candidates(head: Head, net_w: int, net_h: int, thresh: float) -> Candidates:
    out = head.output.reshape(len(head.mask), head.classes + 5, head.h * head.w)
    t = _F(thresh)
    obj = out[:, 4]                                                      # (n, cells)
    cell, a = np.nonzero(obj.T > t)                                      # location first, then anchor
    row, col = np.divmod(cell, head.w)
    anchors = np.asarray(head.anchors, _F).reshape(-1, 2)[np.asarray(head.mask)[a]]
    v = out[a, :, cell]                                                  # (k, entries)
    x = (col.astype(_F) + v[:, 0]) / _F(head.w)
    y = (row.astype(_F) + v[:, 1]) / _F(head.h)
    if head.new_coords:          # AlexeyAB's get_yolo_box: x[..]*x[..]*4*biases[..]/w, float32 left to right
        bw = v[:, 2] * v[:, 2] * _F(4) * anchors[:, 0] / _F(net_w)
        bh = v[:, 3] * v[:, 3] * _F(4) * anchors[:, 1] / _F(net_h)
    else:
        bw = (np.exp(v[:, 2].astype(_D)) * anchors[:, 0].astype(_D) / net_w).astype(_F)
        bh = (np.exp(v[:, 3].astype(_D)) * anchors[:, 1].astype(_D) / net_h).astype(_F)
    o = v[:, 4]
    prob = o[:, None] * v[:, 5:]
    prob = np.where(prob > t, prob, _F(0))
    return Candidates(np.stack([x, y, bw, bh], -1).astype(_F), o.copy(), prob)


def correct_boxes(boxes: np.ndarray, im_w: int, im_h: int, net_w: int, net_h: int,
                  relative: bool = True) -> np.ndarray:
    """``correct_region_boxes``/``correct_yolo_boxes``: from letterboxed-network to image coordinates.

    The arithmetic is the C source's (the ratios ``(float)a/b`` in float32, the shift in double). The
    reference build (pjreddie's Makefile: ``-Ofast``) lets the compiler replace those divisions by a
    reciprocal estimate, so its boxes can differ from these by 1–2 ulps on letterboxed axes; on the
    references every printed and drawn box (the integer ``left, top, right, bottom``) is still identical.
    """
    new_w, new_h = letterbox_size(im_w, im_h, net_w, net_h)
    b = boxes.astype(_F).copy()
    b[:, 0] = ((b[:, 0].astype(_D) - (net_w - new_w) / 2. / net_w) / _D(_F(new_w) / _F(net_w))).astype(_F)
    b[:, 1] = ((b[:, 1].astype(_D) - (net_h - new_h) / 2. / net_h) / _D(_F(new_h) / _F(net_h))).astype(_F)
    b[:, 2] *= _F(net_w) / _F(new_w)
    b[:, 3] *= _F(net_h) / _F(new_h)
    if not relative:
        b *= np.array([im_w, im_h, im_w, im_h], _F)
    return b


def get_network_boxes(heads, im_w: int, im_h: int, net_w: int, net_h: int, thresh: float,
                      relative: bool = True) -> Candidates:
    """All candidates of the network's region/yolo heads (in net order), boxes relative to the image."""
    parts = []
    for h in heads:
        if h.type == "region":
            c = region_candidates(h, thresh)
        elif h.type == "yolo":
            c = yolo_candidates(h, net_w, net_h, thresh)
        else:
            raise ValueError(f"cannot decode a [{h.type}] layer into boxes")
        c.boxes = correct_boxes(c.boxes, im_w, im_h, net_w, net_h, relative)
        parts.append(c)
    c = Candidates.concat(parts, heads[-1].classes if heads else 0)
    return Candidates(c.boxes, c.objectness, c.prob)       # index = position in this array
