"""YOLOv4's ``[yolo]`` loss, as AlexeyAB darknet's ``forward_yolo_layer`` computes it (src/yolo_layer.c @ 59596d7,
``process_batch``, ``delta_yolo_box``, ``delta_yolo_class``, ``averages_yolo_deltas``). Cfgs read in the
``alexeyab`` dialect train with it; pjreddie's loss (``yolo_loss.py``) is unchanged for the others.

The output is the layer's (logistic x, y, objectness, classes; x, y then scaled by ``scale_x_y`` about the cell
centre; with ``new_coords=1`` no logistic here: the conv before has it). For each image darknet fills ``delta``:

* every anchor of every cell: objectness → ``obj_normalizer``·(0 − o), left alone (0) when its predicted box
  overlaps some truth by more than ``ignore_thresh`` *and* some class output of that anchor is above .25;
  above ``truth_thresh`` (1: never) it is treated as the best truth's positive;
* each truth (of a class below ``classes``) picks, among all ``num`` anchors, the one whose shape fits it best
  (IoU of the shapes); when that anchor is in this layer's mask, the anchor in the truth's cell gets
  - box, **added** to what is there (two truths in one cell sum):
    ``iou_loss=mse``: (2 − w·h)·(t − output)·``iou_normalizer`` with tx = x·W − i, tw = log(w·net_w/anchor_w)
    (``new_coords``: tw = sqrt(w·net_w/(4·anchor_w))), never clipped;
    ``iou``/``giou``/``diou``/``ciou``: darknet's IoU gradient (``iou_kinds.iou_gradient``) for the
    predicted box, w, h times exp(t_w) (not with ``new_coords``), times ``iou_normalizer``, non-finite values
    zeroed, then clipped to ±``max_delta``;
  - objectness: m·``obj_normalizer``·(1 − o), with m the class multiplier (below, else 1);
  - classes: y − p with y = 1 for the truth's class, 0 for the others, smoothed to y·(1 − ε) + ε/2 by
    ``label_smooth_eps``; when the cell's delta at the truth's class is already set (another truth), only that
    class is reset. ``counters_per_class`` gives class c the multiplier m_c = max(counts)/count_c (counts
    below 1 read as 1, m capped at ``max_delta``): it scales the box normalizer, the objectness delta and the
    true class's delta, the last also by ``cls_normalizer`` (which does nothing without ``counters_per_class``,
    as in darknet);
* ``iou_thresh`` < 1: every other anchor of this layer whose shape matches the truth's by more than
  ``iou_thresh`` (measured with ``iou_thresh_kind``) gets the same three deltas in the truth's cell; afterwards
  each anchor whose objectness delta is not 0 has its box delta divided by the number of its classes with a
  positive delta.

The backward sends delta to the layer's input unchanged: neither the logistic's slope nor ``scale_x_y`` enters
(darknet's ``backward_yolo_layer`` is an axpy of delta; the GPU build multiplies it by ``delta_normalizer``, which
tritnet applies). The cost (``show_details=1``, darknet's default) is Σ delta² for ``mse``; for the IoU losses it
is ``iou_normalizer``·mean(1 − GIoU) (``giou``) or ·mean(1 − IoU) (the others) over the assigned truths, plus
``obj_normalizer``·Σ delta² over every entry but the boxes; with ``show_details=0`` it is Σ delta².

Not implemented (refused with file:line when a cfg asks for them): ``focal_loss``, ``objectness_smooth``, ``map``,
and the [net] bad-label filters (``equidistant_point``, ``badlabels_rejection_percentage``,
``num_sigmas_reject_badlabels``).
"""
from __future__ import annotations

import math

import numpy as np

from .boxmath import HeadLoss, best_index, iou_matrix, truth_count
from .iou_kinds import Box, box_ciou, box_diou, box_giou, box_iou, box_iou_kind, iou_gradient

__all__ = ["alexeyab_yolo_loss", "class_multipliers", "FLT_MAX"]

_F = np.float32
FLT_MAX = 3.4028234663852886e38


def class_multipliers(counts, classes: int, max_delta: float) -> tuple:
    """darknet's get_classes_multipliers: max(counts)/count per class (a count below 1 reads as 1), capped at
    ``max_delta``."""
    if len(counts) != classes:
        raise ValueError(f"counters_per_class has {len(counts)} values but classes={classes}")
    counts = [max(int(c), 1) for c in counts]
    top = float(max(counts))
    return tuple(min(float(_F(top / c)), float(_F(max_delta))) for c in counts)


def _box(out, b, k, j, i, anchor, W, H, net_w, net_h, new_coords) -> Box:
    """get_yolo_box: the predicted box of anchor ``k`` in cell (j, i)."""
    o = out[b, k, :4, j, i].astype(np.float64)
    if new_coords:
        w, h = o[2] * o[2] * 4 * anchor[0] / net_w, o[3] * o[3] * 4 * anchor[1] / net_h
    else:
        w, h = math.exp(o[2]) * anchor[0] / net_w, math.exp(o[3]) * anchor[1] / net_h
    return Box(float((i + o[0]) / W), float((j + o[1]) / H), float(w), float(h))


def _finite(v: float) -> float:
    return v if math.isfinite(v) else 0.0


def box_delta(delta, out, b, k, j, i, truth, anchor, W, H, net_w, net_h, s, normalizer) -> dict:
    """delta_yolo_box (accumulating): adds the box delta of anchor ``k`` in cell (j, i) for ``truth`` (x, y, w,
    h); returns the IoU measures of the predicted box against it."""
    t = Box(*(float(v) for v in truth[:4]))
    pred = _box(out, b, k, j, i, anchor, W, H, net_w, net_h, s.new_coords)
    measures = {"iou": box_iou(pred, t), "giou": box_giou(pred, t), "diou": box_diou(pred, t),
                "ciou": box_ciou(pred, t)}
    pred = pred._replace(w=pred.w or 1.0, h=pred.h or 1.0)       # darknet: avoid nan in dx_box_iou
    o = out[b, k, :4, j, i].astype(np.float64)
    if s.iou_loss == "mse":
        scale = 2 - t.w * t.h
        if s.new_coords:
            tw, th = math.sqrt(t.w * net_w / (4 * anchor[0])), math.sqrt(t.h * net_h / (4 * anchor[1]))
        else:
            tw, th = math.log(t.w * net_w / anchor[0]), math.log(t.h * net_h / anchor[1])
        target = (t.x * W - i, t.y * H - j, tw, th)
        d = [scale * (target[c] - o[c]) * normalizer for c in range(4)]
    else:
        dx, dy, dw, dh = iou_gradient(pred, t, s.iou_loss)
        if not s.new_coords:
            dw, dh = dw * math.exp(o[2]), dh * math.exp(o[3])
        d = [_finite(v * normalizer) for v in (dx, dy, dw, dh)]
        if _F(s.max_delta) != _F(FLT_MAX):
            d = [min(max(v, -s.max_delta), s.max_delta) for v in d]
    delta[b, k, :4, j, i] += np.asarray(d, _F)
    return measures


def class_delta(delta, out, b, k, j, i, c, s) -> float:
    """delta_yolo_class (focal_loss=0); returns the output at the true class (darknet's 'Class' average)."""
    eps, mult = s.label_smooth_eps, s.classes_multipliers

    def target(y):
        return y * (1 - eps) + 0.5 * eps if eps else float(y)

    p = out[b, k, 5:, j, i].astype(np.float64)
    if delta[b, k, 5 + c, j, i]:
        r = target(1) - p[c]
        if math.isfinite(r):
            delta[b, k, 5 + c, j, i] = r
        if mult:
            delta[b, k, 5 + c, j, i] *= _F(mult[c])
        return float(p[c])
    for n in range(s.classes):
        r = target(1 if n == c else 0) - p[n]
        if math.isfinite(r):
            delta[b, k, 5 + n, j, i] = r
        if mult and n == c:
            delta[b, k, 5 + c, j, i] *= _F(mult[c] * s.cls_normalizer)
    return float(p[c])


def alexeyab_yolo_loss(out: np.ndarray, truth: np.ndarray, s, net_w: int, net_h: int) -> HeadLoss:
    """``out``: the layer's output (B, len(mask), 5 + classes, H, W); ``truth``: (B, T, 5); ``s``: a
    ``YoloSettings`` of the alexeyab dialect; ``net_w``/``net_h``: this batch's network input size."""
    out = np.asarray(out, _F)
    B, n, _, H, W = out.shape
    delta = np.zeros_like(out)
    anchors = np.asarray(s.anchors, np.float64).reshape(-1, 2)
    mask = list(s.mask)
    mine = anchors[mask].astype(_F)
    col = np.arange(W, dtype=_F)[None, None, :]
    row = np.arange(H, dtype=_F)[None, :, None]
    if s.new_coords:
        ww, hh = out[:, :, 2] * out[:, :, 2] * _F(4), out[:, :, 3] * out[:, :, 3] * _F(4)
    else:
        ww, hh = np.exp(out[:, :, 2]), np.exp(out[:, :, 3])
    pred = np.stack([(col + out[:, :, 0]) / _F(W), (row + out[:, :, 1]) / _F(H),
                     ww * mine[None, :, 0, None, None] / _F(net_w), hh * mine[None, :, 1, None, None] / _F(net_h)],
                    2)                                                         # (B, n, 4, H, W)
    mult = s.classes_multipliers
    st = dict(iou=0.0, giou_loss=0.0, iou_loss=0.0, cls=0.0, obj=0.0, anyobj=0.0, r50=0.0, r75=0.0, count=0)

    def positive(b, k, j, i, t, anchor):
        """One truth's box, objectness and class deltas at anchor ``k`` of cell (j, i), and its statistics."""
        c = int(t[4])
        m = mult[c] if mult else 1.0
        ious = box_delta(delta, out, b, k, j, i, t, anchor, W, H, net_w, net_h, s, s.iou_normalizer * m)
        st["iou"] += ious["iou"]
        st["iou_loss"] += 1 - ious["iou"]
        st["giou_loss"] += 1 - ious["giou"]
        st["obj"] += float(out[b, k, 4, j, i])
        delta[b, k, 4, j, i] = _F(m * s.obj_normalizer) * (_F(1) - out[b, k, 4, j, i])
        st["cls"] += class_delta(delta, out, b, k, j, i, c, s)
        st["count"] += 1
        st["r50"] += ious["iou"] > .5
        st["r75"] += ious["iou"] > .75

    for b in range(B):
        tb = np.asarray(truth[b, :truth_count(truth[b])], np.float64)
        tb = tb[(tb[:, 4] >= 0) & (tb[:, 4] < s.classes)] if len(tb) else tb   # darknet skips other class ids
        obj = out[b, :, 4]
        st["anyobj"] += float(obj.sum())
        delta[b, :, 4] = _F(s.obj_normalizer) * (_F(0) - obj)
        if len(tb):
            ious = iou_matrix(pred[b].transpose(0, 2, 3, 1).reshape(-1, 4), tb[:, :4]).reshape(n, H, W, len(tb))
            best = ious.max(-1)
            class_match = (out[b, :, 5:] > _F(.25)).any(1)                     # compare_yolo_class
            delta[b, :, 4][np.where(class_match, best, 0) > _F(s.ignore_thresh)] = 0
            for k, j, i in zip(*np.nonzero(best > _F(s.truth_thresh))):
                t = tb[best_index(ious[k, j, i])[0]]
                c = int(t[4])
                m = mult[c] if mult else 1.0
                delta[b, k, 4, j, i] = _F(s.obj_normalizer) * (_F(1) - obj[k, j, i])
                class_delta(delta, out, b, k, j, i, c, s)
                box_delta(delta, out, b, k, j, i, t, mine[k], W, H, net_w, net_h, s, s.iou_normalizer * m)
        for t in tb:
            shape = Box(0.0, 0.0, float(t[2]), float(t[3]))
            best_n, _ = best_index([box_iou(Box(0.0, 0.0, a[0] / net_w, a[1] / net_h), shape) for a in anchors])
            i, j = min(int(t[0] * W), W - 1), min(int(t[1] * H), H - 1)
            if best_n in mask:
                positive(b, mask.index(best_n), j, i, t, anchors[best_n])
            if s.iou_thresh < 1:
                for a_n, a in enumerate(anchors):
                    if a_n == best_n or a_n not in mask:
                        continue
                    if box_iou_kind(Box(0.0, 0.0, a[0] / net_w, a[1] / net_h), shape, s.iou_thresh_kind) \
                            > s.iou_thresh:
                        positive(b, mask.index(a_n), j, i, t, a)
        if s.iou_thresh < 1:                                                  # averages_yolo_deltas
            d = delta[b]
            classes_set = (d[:, 5:] > 0).sum(1)                               # (n, H, W)
            share = (d[:, 4] != 0) & (classes_set > 0)
            d[:, :4] = np.where(share[:, None], d[:, :4] / np.maximum(classes_set, 1)[:, None].astype(_F), d[:, :4])
    total = float(np.square(delta, dtype=np.float64).sum())
    if s.iou_loss == "mse" or not s.show_details:
        cost = total
    else:
        count = max(st["count"], 1)
        classification = s.obj_normalizer * float(np.square(delta[:, :, 4:], dtype=np.float64).sum())
        iou_part = st["giou_loss"] if s.iou_loss == "giou" else st["iou_loss"]
        cost = s.iou_normalizer * iou_part / count + classification
    count = max(st["count"], 1)
    stats = {"avg_iou": st["iou"] / count, "class": st["cls"] / count, "obj": st["obj"] / count,
             "no_obj": st["anyobj"] / (B * n * H * W), "recall": st["r50"] / count, "recall75": st["r75"] / count,
             "count": st["count"]}
    grad = delta * _F(s.delta_normalizer) if s.delta_normalizer != 1 else delta.copy()
    return HeadLoss(delta, grad, cost, stats)
