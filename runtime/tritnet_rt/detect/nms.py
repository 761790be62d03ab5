"""Darknet's IoU and non-maximum suppression (``box.c``), numpy only, order included.

Darknet suppresses *in place* in its detection array, and the order it prints is that array's order
afterwards, so both functions return the permuted :class:`Candidates`:

1. entries with objectness 0 are swapped to the end, one by one (``dets[i] <-> dets[k--]``);
2. ``do_nms_sort``: for each class k, the kept entries are sorted by prob[k], descending (glibc's qsort
   is a stable merge sort), then each entry with prob[k] > 0 zeroes prob[k] of every later entry whose
   IoU with it is > nms. Objectness is left alone.
   ``do_nms_obj``: one sort by objectness; a suppressed entry loses its objectness and every prob.

``box_iou`` uses darknet's float32 formula, so borderline overlaps are decided as darknet decides them.
"""
from __future__ import annotations

import numpy as np

from .boxes import Candidates

__all__ = ["box_iou", "do_nms_sort", "do_nms_obj"]

_F = np.float32


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box ``a`` (x, y, w, h) with each row of ``b`` (float32, darknet's ``box_iou``)."""
    a, b = np.asarray(a, _F), np.asarray(b, _F)
    two = _F(2)

    def overlap(x1, w1, x2, w2):
        left = np.maximum(x1 - w1 / two, x2 - w2 / two)
        right = np.minimum(x1 + w1 / two, x2 + w2 / two)
        return right - left

    w = overlap(a[0], a[2], b[:, 0], b[:, 2])
    h = overlap(a[1], a[3], b[:, 1], b[:, 3])
    inter = np.where((w < 0) | (h < 0), _F(0), w * h)
    union = a[2] * a[3] + b[:, 2] * b[:, 3] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / union


def _objectness_first(c: Candidates) -> tuple[Candidates, int]:
    """Darknet's swap loop: move zero-objectness entries to the end; returns (permuted, kept count)."""
    order = list(range(len(c)))
    zero = c.objectness == 0
    k = len(order) - 1
    i = 0
    while i <= k:
        if zero[order[i]]:
            order[i], order[k] = order[k], order[i]
            k -= 1
        else:
            i += 1
    return c.take(np.asarray(order, dtype=np.int64)), k + 1


def _suppress(boxes: np.ndarray, score: np.ndarray, nms: float) -> np.ndarray:
    """Greedy pass over entries already sorted by score: mask of the ones a better entry suppresses."""
    alive = score != 0
    killed = np.zeros(len(boxes), bool)
    t = _F(nms)
    for i in np.flatnonzero(alive):
        if killed[i]:
            continue
        later = np.arange(i + 1, len(boxes))
        later = later[alive[later] & ~killed[later]]
        if later.size:
            killed[later[box_iou(boxes[i], boxes[later]) > t]] = True
    return killed


def do_nms_sort(cands: Candidates, nms: float) -> Candidates:
    """Per-class NMS as ``detector test`` runs it; returns the candidates in darknet's final order."""
    c, total = _objectness_first(cands.copy())
    head, tail = c.take(np.arange(total)), c.take(np.arange(total, len(c)))
    for k in range(head.prob.shape[1]):
        head = head.take(np.argsort(-head.prob[:, k], kind="stable"))
        # entries whose prob is already 0 do not suppress; the ones they would "suppress" are unaffected
        head.prob[_suppress(head.boxes, head.prob[:, k], nms), k] = 0
    return Candidates.concat([head, tail], c.prob.shape[1])


def do_nms_obj(cands: Candidates, nms: float) -> Candidates:
    """NMS over whole boxes by objectness (python/darknet.py's ``detect``)."""
    c, total = _objectness_first(cands.copy())
    head, tail = c.take(np.arange(total)), c.take(np.arange(total, len(c)))
    head = head.take(np.argsort(-head.objectness, kind="stable"))
    killed = _suppress(head.boxes, head.objectness, nms)
    head.objectness[killed] = 0
    head.prob[killed] = 0
    return Candidates.concat([head, tail], c.prob.shape[1])
