"""YOLOv2's ``[region]`` loss, as pjreddie darknet's ``forward_region_layer`` computes it.

For the layer's activated output (x, y and objectness through the logistic, classes through the softmax)
and each image's truth boxes (relative x, y, w, h, class), darknet fills ``delta`` = target − output:

* every anchor of every cell: objectness → 0 with ``noobject_scale``, unless its predicted box overlaps
  some truth by more than ``thresh`` (then no objectness loss at all);
* while fewer than 12,800 images have been seen: every anchor's box is pulled, with scale .01, towards
  the anchor itself centred in its cell (tx = ty = .5, tw = th = 0): the early prior-matching phase;
* each truth, in the cell holding its centre, picks the anchor whose shape fits it best (IoU of the
  shapes alone: anchors with ``bias_match=1``, else the predicted sizes); that anchor gets
  - box: coord_scale·(2 − w·h)·(t − output), tx = x·W − i, ty = y·H − j, tw = log(w·W/anchor_w), ...
  - objectness: object_scale·(1 − output), or with ``rescore`` object_scale·(IoU − output),
  - classes: class_scale·(onehot − p).
  A later truth in the same cell and anchor overwrites an earlier one, as in darknet's loop.

The cost darknet prints is Σ delta². On the backward pass darknet's GPU code (the one the published
models trained with) multiplies the x, y and objectness deltas by the logistic's derivative o·(1 − o);
the class delta goes straight to the softmax input (softmax + cross-entropy) and w, h are linear.
pjreddie's CPU backward for this layer is commented out, so CPU darknet cannot train a region layer at
all; tritnet follows the GPU rule on every device.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .boxmath import HeadLoss, best_index, iou_matrix, iou_one, truth_count

__all__ = ["RegionSettings", "region_loss"]

_F = np.float32
PRIOR_MATCH_IMAGES = 12800


@dataclass(frozen=True)
class RegionSettings:
    classes: int
    num: int
    anchors: tuple            # grid units, (w0, h0, w1, h1, ...)
    thresh: float = 0.5
    coord_scale: float = 1.0
    object_scale: float = 1.0
    noobject_scale: float = 1.0
    class_scale: float = 1.0
    rescore: bool = False
    bias_match: bool = False
    background: bool = False
    softmax: bool = False
    max_boxes: int = 30

    @classmethod
    def from_info(cls, info) -> "RegionSettings":
        p, a = info.section.param, info.attrs
        anchors = a["anchors"] if a["anchors"] is not None else [0.5] * (2 * a["num"])
        return cls(a["classes"], a["num"], tuple(anchors), p("thresh"), p("coord_scale"), p("object_scale"),
                   p("noobject_scale"), p("class_scale"), bool(p("rescore")), bool(p("bias_match")),
                   bool(a["background"]), bool(a["softmax"]), p("max"))


def region_loss(out: np.ndarray, truth: np.ndarray, s: RegionSettings, seen: int) -> HeadLoss:
    """``out``: the layer's activated output (B, num, 5 + classes, H, W); ``truth``: (B, T, 5) rows x, y, w, h,
    class (a row with x = 0 ends an image's list); ``seen``: images seen including this batch."""
    out = np.asarray(out, _F)
    B, n, _, H, W = out.shape
    delta = np.zeros_like(out)
    anchors = np.asarray(s.anchors, _F).reshape(-1, 2)[:n]
    aw, ah = anchors[:, 0], anchors[:, 1]
    col = np.arange(W, dtype=_F)[None, None, :]
    row = np.arange(H, dtype=_F)[None, :, None]
    px = (col + out[:, :, 0]) / _F(W)                                   # (B, n, H, W), get_region_box
    py = (row + out[:, :, 1]) / _F(H)
    pw = np.exp(out[:, :, 2]) * aw[None, :, None, None] / _F(W)
    ph = np.exp(out[:, :, 3]) * ah[None, :, None, None] / _F(H)
    st = dict(iou=0.0, cls=0.0, obj=0.0, anyobj=0.0, recall=0.0, count=0)
    for b in range(B):
        t_n = min(truth_count(truth[b]), len(truth[b]))
        tb = np.asarray(truth[b, :t_n], _F)
        obj = out[b, :, 4]
        st["anyobj"] += float(obj.sum())
        delta[b, :, 4] = _F(s.noobject_scale) * ((_F(1) if s.background else _F(0)) - obj)
        if t_n:
            pred = np.stack([px[b], py[b], pw[b], ph[b]], -1).reshape(-1, 4)
            best = iou_matrix(pred, tb[:, :4]).max(1).reshape(n, H, W)
            delta[b, :, 4][best > _F(s.thresh)] = 0
        if seen < PRIOR_MATCH_IMAGES:
            tw = np.log((aw / _F(W)) * _F(W) / aw)[:, None, None]        # the anchor's own size: ~0
            th = np.log((ah / _F(H)) * _F(H) / ah)[:, None, None]
            delta[b, :, 0] = _F(.01) * (_F(.5) - out[b, :, 0])
            delta[b, :, 1] = _F(.01) * (_F(.5) - out[b, :, 1])
            delta[b, :, 2] = _F(.01) * (tw - out[b, :, 2])
            delta[b, :, 3] = _F(.01) * (th - out[b, :, 3])
        for x, y, w, h, c in tb:
            i, j = min(int(x * _F(W)), W - 1), min(int(y * _F(H)), H - 1)
            if s.bias_match:
                shapes = np.stack([aw / _F(W), ah / _F(H)], 1)
            else:
                shapes = np.stack([pw[b, :, j, i], ph[b, :, j, i]], 1)
            zeros = np.zeros((n, 2), _F)
            k, _ = best_index(iou_matrix(np.concatenate([zeros, shapes], 1), [[0, 0, w, h]])[:, 0])
            iou = iou_one([px[b, k, j, i], py[b, k, j, i], pw[b, k, j, i], ph[b, k, j, i]], [x, y, w, h])
            scale = _F(s.coord_scale) * (_F(2) - w * h)
            o = out[b, k, :, j, i]
            delta[b, k, 0, j, i] = scale * ((x * _F(W) - _F(i)) - o[0])
            delta[b, k, 1, j, i] = scale * ((y * _F(H) - _F(j)) - o[1])
            delta[b, k, 2, j, i] = scale * (np.log(w * _F(W) / aw[k]) - o[2])
            delta[b, k, 3, j, i] = scale * (np.log(h * _F(H) / ah[k]) - o[3])
            target = _F(0) if s.background else (_F(iou) if s.rescore else _F(1))
            delta[b, k, 4, j, i] = _F(s.object_scale) * (target - o[4])
            onehot = (np.arange(s.classes) == int(c)).astype(_F)
            delta[b, k, 5:, j, i] = _F(s.class_scale) * (onehot - o[5:])
            st["iou"] += iou
            st["recall"] += iou > .5
            st["obj"] += float(o[4])
            st["cls"] += float(o[5 + int(c)])
            st["count"] += 1
    grad = delta.copy()
    sig = out[:, :, 0:2]
    grad[:, :, 0:2] *= sig * (1 - sig)
    if not s.background:
        grad[:, :, 4] *= out[:, :, 4] * (1 - out[:, :, 4])
    count = max(st["count"], 1)
    stats = {"avg_iou": st["iou"] / count, "class": st["cls"] / count, "obj": st["obj"] / count,
             "no_obj": st["anyobj"] / (B * n * H * W), "recall": st["recall"] / count, "count": st["count"]}
    return HeadLoss(delta, grad, float(np.square(delta, dtype=np.float64).sum()), stats)
