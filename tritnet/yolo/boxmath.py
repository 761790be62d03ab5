"""Box arithmetic the losses share, in float32 with darknet's formulas (``box.c``)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["iou_matrix", "iou_one", "HeadLoss", "truth_count", "best_index"]

_F = np.float32


def _overlap(x1, w1, x2, w2):
    two = _F(2)
    return np.minimum(x1 + w1 / two, x2 + w2 / two) - np.maximum(x1 - w1 / two, x2 - w2 / two)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (N, 4) with every box of ``b`` (M, 4), boxes as (x, y, w, h): (N, M)."""
    a, b = np.asarray(a, _F)[:, None, :], np.asarray(b, _F)[None, :, :]
    w = _overlap(a[..., 0], a[..., 2], b[..., 0], b[..., 2])
    h = _overlap(a[..., 1], a[..., 3], b[..., 1], b[..., 3])
    inter = np.where((w < 0) | (h < 0), _F(0), w * h)
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / union
    return np.nan_to_num(iou, nan=0.0).astype(_F)


def iou_one(a, b) -> float:
    return float(iou_matrix(np.asarray(a, _F)[None], np.asarray(b, _F)[None])[0, 0])


def best_index(values) -> tuple[int, float]:
    """Darknet's ``if (v > best) {best = v; k = i}`` from best = 0, k = 0: the first strict maximum above 0."""
    best, k = 0.0, 0
    for i, v in enumerate(values):
        if v > best:
            best, k = float(v), i
    return k, best


def truth_count(truth: np.ndarray) -> int:
    """Rows before the first with x == 0 (darknet's ``if(!truth.x) break;``)."""
    zero = np.flatnonzero(truth[:, 0] == 0)
    return int(zero[0]) if zero.size else len(truth)


@dataclass
class HeadLoss:
    """One head's result on a batch: darknet's ``l.delta`` (target − output, before the backward's logistic
    factor), the gradient darknet sends back (``grad``: −∂loss/∂input), ``cost`` = Σ delta², and the
    numbers darknet prints for the layer."""
    delta: np.ndarray
    grad: np.ndarray
    cost: float
    stats: dict = field(default_factory=dict)
