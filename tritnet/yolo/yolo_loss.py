"""YOLOv3's ``[yolo]`` loss, as pjreddie darknet's ``forward_yolo_layer`` computes it.

The layer owns the anchors listed in ``mask`` (of ``num`` anchors in pixels); its output is activated
with the logistic on x, y, objectness and every class. For each image darknet fills ``delta``:

* every anchor of every cell: objectness → 0, unless its predicted box overlaps some truth by more than
  ``ignore_thresh`` (no objectness loss); above ``truth_thresh`` (1 by default, i.e. never) the cell is
  treated as that truth's positive;
* each truth picks, among *all* ``num`` anchors, the one whose shape fits it best (IoU of the shapes,
  anchors divided by the network size); only if that anchor is in this layer's mask, the anchor in the
  truth's cell gets
  - box: (2 − w·h)·(t − output), tx = x·W − i, tw = log(w·net_w/anchor_w), ...,
  - objectness: 1 − output,
  - classes: onehot − output; if the cell already had a class delta (another truth), only this truth's
    class is set, so a cell can learn two labels (darknet's ``delta_yolo_class``).

The backward sends delta unchanged to the layer's input (the logistic and the loss cancel: it is binary
cross-entropy on x, y, objectness and classes, squared error on w, h). The cost is Σ delta².

This is the loss of the ``pjreddie`` dialect (the loss keys darknetTWN borrowed from AlexeyAB, such as
``iou_loss``, are read there but not applied). Cfgs of the ``alexeyab`` dialect train with AlexeyAB's loss
(``yolo_loss_alexeyab.py``: ``iou_loss``, the normalizers, ``max_delta``, ``iou_thresh``, label smoothing, ...).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .boxmath import HeadLoss, best_index, iou_matrix, iou_one, truth_count

__all__ = ["YoloSettings", "yolo_loss"]

_F = np.float32


@dataclass(frozen=True)
class YoloSettings:
    classes: int
    mask: tuple
    anchors: tuple            # pixels, all ``num`` anchors
    ignore_thresh: float = 0.5
    truth_thresh: float = 1.0
    max_boxes: int = 90
    # the dialect whose darknet computes the loss; the fields below are AlexeyAB's loss keys
    # (yolo_loss_alexeyab.py), read from the cfg in the alexeyab dialect only
    dialect: str = "pjreddie"
    iou_loss: str = "mse"
    iou_normalizer: float = 0.75
    obj_normalizer: float = 1.0
    cls_normalizer: float = 1.0
    delta_normalizer: float = 1.0
    max_delta: float = 3.4028234663852886e38      # FLT_MAX: no clipping
    new_coords: bool = False
    iou_thresh: float = 1.0
    iou_thresh_kind: str = "iou"
    label_smooth_eps: float = 0.0
    classes_multipliers: Optional[tuple] = None   # from counters_per_class
    show_details: bool = True

    @classmethod
    def from_info(cls, info) -> "YoloSettings":
        p, a = info.section.param, info.attrs
        anchors = a["anchors"] if a["anchors"] is not None else [0.5] * (2 * a["num"])
        base = cls(a["classes"], tuple(a["mask"]), tuple(anchors), p("ignore_thresh"), p("truth_thresh"), p("max"))
        if info.section.dialect != "alexeyab":
            return base
        sec = info.section
        for key, what in (("focal_loss", "focal loss"), ("objectness_smooth", "objectness smoothing")):
            if p(key):
                raise sec.error(f"{key}={p(key)} ({what} in AlexeyAB's yolo loss) is not supported in training; "
                                f"remove it or set {key}=0", key)
        if p("map") is not None:
            raise sec.error("map= (a class-id map file for the yolo loss) is not supported in training", "map")
        multipliers = None
        if p("counters_per_class") is not None:
            from .yolo_loss_alexeyab import class_multipliers
            try:
                multipliers = class_multipliers(p("counters_per_class"), a["classes"], p("max_delta"))
            except ValueError as e:
                raise sec.error(str(e), "counters_per_class") from None
        return dataclasses.replace(
            base, dialect="alexeyab", iou_loss=p("iou_loss"), iou_normalizer=p("iou_normalizer"),
            obj_normalizer=p("obj_normalizer"), cls_normalizer=p("cls_normalizer"),
            delta_normalizer=p("delta_normalizer"), max_delta=p("max_delta"), new_coords=bool(p("new_coords")),
            iou_thresh=p("iou_thresh"), iou_thresh_kind=p("iou_thresh_kind"), label_smooth_eps=p("label_smooth_eps"),
            classes_multipliers=multipliers, show_details=bool(p("show_details")))


def _class_delta(delta, out, b, k, j, i, c, classes):
    """darknet's delta_yolo_class: returns the output at the true class (for the 'Class' average)."""
    if delta[b, k, 5, j, i]:
        delta[b, k, 5 + c, j, i] = 1 - out[b, k, 5 + c, j, i]
    else:
        delta[b, k, 5:, j, i] = (np.arange(classes) == c).astype(_F) - out[b, k, 5:, j, i]
    return float(out[b, k, 5 + c, j, i])


def _box_delta(delta, pred, b, k, j, i, t, anchor, W, H, net_w, net_h, out):
    x, y, w, h = t[:4]
    scale = _F(2) - w * h
    delta[b, k, 0, j, i] = scale * ((x * _F(W) - _F(i)) - out[b, k, 0, j, i])
    delta[b, k, 1, j, i] = scale * ((y * _F(H) - _F(j)) - out[b, k, 1, j, i])
    delta[b, k, 2, j, i] = scale * (np.log(w * _F(net_w) / anchor[0]) - out[b, k, 2, j, i])
    delta[b, k, 3, j, i] = scale * (np.log(h * _F(net_h) / anchor[1]) - out[b, k, 3, j, i])
    return iou_one(pred[b, k, :, j, i], t[:4])


def yolo_loss(out: np.ndarray, truth: np.ndarray, s: YoloSettings, net_w: int, net_h: int) -> HeadLoss:
    """``out``: activated output (B, len(mask), 5 + classes, H, W); ``truth``: (B, T, 5); ``net_w``/``net_h``:
    the network input size of this batch (anchors are in its pixels). Settings of the alexeyab dialect train
    with AlexeyAB's loss (``yolo_loss_alexeyab.py``)."""
    if s.dialect == "alexeyab":
        from .yolo_loss_alexeyab import alexeyab_yolo_loss
        return alexeyab_yolo_loss(out, truth, s, net_w, net_h)
    out = np.asarray(out, _F)
    B, n, _, H, W = out.shape
    delta = np.zeros_like(out)
    anchors = np.asarray(s.anchors, _F).reshape(-1, 2)
    mine = anchors[list(s.mask)]
    col = np.arange(W, dtype=_F)[None, None, :]
    row = np.arange(H, dtype=_F)[None, :, None]
    pred = np.stack([(col + out[:, :, 0]) / _F(W), (row + out[:, :, 1]) / _F(H),          # get_yolo_box
                     np.exp(out[:, :, 2]) * mine[None, :, 0, None, None] / _F(net_w),
                     np.exp(out[:, :, 3]) * mine[None, :, 1, None, None] / _F(net_h)], 2)   # (B, n, 4, H, W)
    shapes = np.concatenate([np.zeros_like(anchors), anchors / np.array([net_w, net_h], _F)], 1)
    st = dict(iou=0.0, cls=0.0, obj=0.0, anyobj=0.0, r50=0.0, r75=0.0, count=0)
    for b in range(B):
        t_n = truth_count(truth[b])
        tb = np.asarray(truth[b, :t_n], _F)
        obj = out[b, :, 4]
        st["anyobj"] += float(obj.sum())
        delta[b, :, 4] = -obj
        if t_n:
            ious = iou_matrix(pred[b].transpose(0, 2, 3, 1).reshape(-1, 4), tb[:, :4]).reshape(n, H, W, t_n)
            best = ious.max(-1)
            delta[b, :, 4][best > _F(s.ignore_thresh)] = 0
            for k, j, i in zip(*np.nonzero(best > _F(s.truth_thresh))):
                t = tb[best_index(ious[k, j, i])[0]]
                delta[b, k, 4, j, i] = 1 - obj[k, j, i]
                _class_delta(delta, out, b, k, j, i, int(t[4]), s.classes)
                _box_delta(delta, pred, b, k, j, i, t, mine[k], W, H, net_w, net_h, out)
        for t in tb:
            best_n, _ = best_index(iou_matrix(shapes, [[0, 0, t[2], t[3]]])[:, 0])
            if best_n not in s.mask:
                continue
            k = list(s.mask).index(best_n)
            i, j = min(int(t[0] * _F(W)), W - 1), min(int(t[1] * _F(H)), H - 1)
            iou = _box_delta(delta, pred, b, k, j, i, t, anchors[best_n], W, H, net_w, net_h, out)
            st["obj"] += float(out[b, k, 4, j, i])
            delta[b, k, 4, j, i] = 1 - out[b, k, 4, j, i]
            st["cls"] += _class_delta(delta, out, b, k, j, i, int(t[4]), s.classes)
            st["count"] += 1
            st["r50"] += iou > .5
            st["r75"] += iou > .75
            st["iou"] += iou
    count = max(st["count"], 1)
    stats = {"avg_iou": st["iou"] / count, "class": st["cls"] / count, "obj": st["obj"] / count,
             "no_obj": st["anyobj"] / (B * n * H * W), "recall": st["r50"] / count, "recall75": st["r75"] / count,
             "count": st["count"]}
    return HeadLoss(delta, delta.copy(), float(np.square(delta, dtype=np.float64).sum()), stats)
