"""What AlexeyAB's ``detector test`` does after the network ran, where it differs from pjreddie's (numpy only).

pjreddie's pipeline is the rest of ``tritnet_rt.detect``; AlexeyAB's (src/detector.c ``test_detector``,
yolo_layer.c, box.c, image.c) reuses its pieces and differs in four places:

* **Input.** ``resize_image`` to the network size (stretching) unless ``-letter_box`` or ``[net] letter_box=1``;
  then ``correct_yolo_boxes`` with letter=0 leaves the relative boxes as they are.
* **Boxes.** ``get_yolo_box`` with ``new_coords=1`` takes w = (2·t)²·anchor_w/net_w from the logistic outputs
  (``Head.new_coords``, decoded by ``yolo_candidates``); ``correct_yolo_boxes`` scales w by ``1/ratio``.
* **NMS.** The ``nms_kind`` of the last ``[yolo]`` layer: ``default`` is pjreddie's ``do_nms_sort``; ``greedynms``
  and ``diounms`` run ``diounms_sort``, which suppresses when ``box_diou`` (IoU − (d²/c²)^0.6) or ``box_diounms``
  (exponent ``beta_nms``) passes the threshold, in float32 as box.c computes them.
* **Print order** (``draw_detections_v3``): the candidates with some class above the threshold, sorted by their
  left edge x − w/2 (glibc's stable qsort), each with its best class (the first strict maximum) first, then its
  other classes above the threshold in index order.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from .boxes import Candidates, Head, yolo_candidates
from .image import letterbox_size
from .nms import _objectness_first, do_nms_sort
from .results import select_detections

__all__ = ["correct_yolo_boxes", "get_network_boxes_alexeyab", "box_diou", "diounms_sort", "nms_alexeyab",
           "select_detections_v3", "format_detection_v3"]

_F, _D = np.float32, np.float64


def correct_yolo_boxes(boxes: np.ndarray, im_w: int, im_h: int, net_w: int, net_h: int,
                       letter: bool) -> np.ndarray:
    """AlexeyAB's ``correct_yolo_boxes`` (relative boxes): undo the letterbox, or nothing after a plain resize."""
    new_w, new_h = letterbox_size(im_w, im_h, net_w, net_h) if letter else (net_w, net_h)
    ratio_w, ratio_h = _F(new_w) / _F(net_w), _F(new_h) / _F(net_h)
    b = boxes.astype(_F).copy()
    b[:, 0] = ((b[:, 0].astype(_D) - _D(_F(net_w - new_w)) / 2. / net_w) / _D(ratio_w)).astype(_F)
    b[:, 1] = ((b[:, 1].astype(_D) - _D(_F(net_h - new_h)) / 2. / net_h) / _D(ratio_h)).astype(_F)
    b[:, 2] *= _F(1) / ratio_w
    b[:, 3] *= _F(1) / ratio_h
    return b


def get_network_boxes_alexeyab(heads: Sequence[Head], im_w: int, im_h: int, net_w: int, net_h: int,
                               thresh: float, letter: bool) -> Candidates:
    """Candidates of every ``[yolo]`` head, in net order, boxes relative to the image."""
    parts = []
    for h in heads:
        if h.type != "yolo":
            raise ValueError(f"AlexeyAB's [{h.type}] boxes are not decoded by tritnet")
        c = yolo_candidates(h, net_w, net_h, thresh)
        c.boxes = correct_yolo_boxes(c.boxes, im_w, im_h, net_w, net_h, letter)
        parts.append(c)
    c = Candidates.concat(parts, heads[-1].classes if heads else 0)
    return Candidates(c.boxes, c.objectness, c.prob)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """box.c ``box_iou``: 0 when the intersection or the union is 0."""
    two = _F(2)

    def overlap(x1, w1, x2, w2):
        return np.minimum(x1 + w1 / two, x2 + w2 / two) - np.maximum(x1 - w1 / two, x2 - w2 / two)

    w, h = overlap(a[0], a[2], b[:, 0], b[:, 2]), overlap(a[1], a[3], b[:, 1], b[:, 3])
    inter = np.where((w < 0) | (h < 0), _F(0), w * h)
    union = a[2] * a[3] + b[:, 2] * b[:, 3] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((inter == 0) | (union == 0), _F(0), inter / union)


def box_diou(a: np.ndarray, b: np.ndarray, beta: float = 0.6) -> np.ndarray:
    """box.c ``box_diou`` (beta 0.6) / ``box_diounms`` (beta ``beta_nms``) of box ``a`` with each row of ``b``:
    IoU − (d²/c²)^beta, d the distance of the centres, c the diagonal of the enclosing box (float32)."""
    a, b = np.asarray(a, _F), np.asarray(b, _F)
    two = _F(2)
    top = np.minimum(a[1] - a[3] / two, b[:, 1] - b[:, 3] / two)
    bot = np.maximum(a[1] + a[3] / two, b[:, 1] + b[:, 3] / two)
    left = np.minimum(a[0] - a[2] / two, b[:, 0] - b[:, 2] / two)
    right = np.maximum(a[0] + a[2] / two, b[:, 0] + b[:, 2] / two)
    w, h = right - left, bot - top
    c = w * w + h * h
    iou = _iou(a, b)
    d = (a[0] - b[:, 0]) * (a[0] - b[:, 0]) + (a[1] - b[:, 1]) * (a[1] - b[:, 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.power((d / c).astype(_D), _D(beta)).astype(_F)         # pow() in double, stored as float
    return np.where(c == 0, iou, iou - u)


def diounms_sort(cands: Candidates, thresh: float, kind: str, beta_nms: float) -> Candidates:
    """box.c ``diounms_sort`` for ``greedynms`` (DIoU, exponent 0.6) and ``diounms`` (exponent ``beta_nms``)."""
    c, total = _objectness_first(cands.copy())
    head, tail = c.take(np.arange(total)), c.take(np.arange(total, len(c)))
    beta = 0.6 if kind == "greedynms" else float(_F(beta_nms))
    t = _F(thresh)
    for k in range(head.prob.shape[1]):
        head = head.take(np.argsort(-head.prob[:, k], kind="stable"))
        prob = head.prob[:, k]                        # a view: zeroing it suppresses in head
        alive = np.flatnonzero(prob)                  # entries at 0 neither suppress nor change when suppressed
        for n, i in enumerate(alive):
            if prob[i] == 0:
                continue
            later = alive[n + 1:]
            later = later[prob[later] != 0]
            if later.size:
                prob[later[box_diou(head.boxes[i], head.boxes[later], beta) > t]] = 0
    return Candidates.concat([head, tail], c.prob.shape[1])


def nms_alexeyab(cands: Candidates, thresh: float, kind: str = "default", beta_nms: float = 0.6) -> Candidates:
    """``detector test``'s NMS for the last yolo layer's ``nms_kind``."""
    if kind == "default":
        return do_nms_sort(cands, thresh)
    return diounms_sort(cands, thresh, kind, beta_nms)


def select_detections_v3(cands: Candidates, thresh: float, im_w: int, im_h: int,
                         names: Optional[Sequence[str]] = None) -> list:
    """The detections ``draw_detections_v3`` prints, in its order (module docstring)."""
    t = _F(thresh)
    above = cands.prob > t
    rows = np.flatnonzero(above.any(1))
    left = cands.boxes[rows, 0] - cands.boxes[rows, 2] / _F(2)
    rows = rows[np.argsort(left, kind="stable")]
    dets = select_detections(cands.take(rows), thresh, im_w, im_h, names)
    best = {int(cands.index[r]): int(np.argmax(cands.prob[r])) for r in rows}   # argmax: the first maximum
    out, i = [], 0
    while i < len(dets):                   # one candidate's detections are contiguous: its best class first
        j = i
        while j < len(dets) and dets[j].index == dets[i].index:
            j += 1
        group = dets[i:j]
        out += sorted(group, key=lambda d: d.class_id != best[d.index])
        i = j
    return out


def _c_round(v: float) -> float:
    """C's round(): halves away from zero."""
    return math.copysign(math.floor(abs(v) + 0.5), v)


def format_detection_v3(d, im_w: int, im_h: int) -> str:
    """One line as AlexeyAB's ``detector test -ext_output`` prints it (the box rounded, not clamped)."""
    pct = float(_F(d.prob) * _F(100))
    x, y, w, h = (_F(v) for v in (d.x, d.y, d.w, d.h))
    two = _F(2)
    left, top = float((x - w / two) * _F(im_w)), float((y - h / two) * _F(im_h))   # float arithmetic, as in C
    return (f"{d.name}: {pct:.0f}%\t(left_x: {_c_round(left):4.0f}   top_y: {_c_round(top):4.0f}   "
            f"width: {_c_round(float(w * _F(im_w))):4.0f}   height: {_c_round(float(h * _F(im_h))):4.0f})")
