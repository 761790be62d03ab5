"""AlexeyAB darknet's box measures and the IoU-loss gradients its ``[yolo]`` layer trains with (``src/box.c`` @
59596d7: ``box_iou``, ``box_giou``, ``box_diou``, ``box_ciou``, ``dx_box_iou``), for one box pair at a time.

Boxes are (x, y, w, h), centre and size, in fractions of the image. The measures:

* IoU; GIoU = IoU − (C − U)/C with C the area of the smallest enclosing box (Rezatofighi et al. 2019);
* DIoU: darknet's ``box_diou`` returns IoU − (ρ²/c²)^0.6 (ρ the centre distance, c the enclosing box's diagonal),
  not the paper's IoU − ρ²/c² (Zheng et al. 2020); darknet uses it for ``iou_thresh_kind=diou`` only, while the
  DIoU *loss* gradient below follows the paper's ρ²/c²;
* CIoU = IoU − ρ²/c² − α·v, v = 4/π²·(atan(w_gt/h_gt) − atan(w/h))², α = v/(1 − IoU + v + 1e-6).

:func:`iou_gradient` is darknet's ``dx_box_iou``: the direction that *raises* the measure, by the predicted box's
(x, y, w, h), as darknet computes it (the ``[yolo]`` delta is this times exp(t_w) for w, h and ``iou_normalizer``).
It departs from the exact derivative of the published measures in three ways, reproduced here on purpose:

* w, h of the IoU/GIoU part: (∂/∂right − ∂/∂left) without the 1/2 (darknet's comment: "we do not divided by 2"),
  i.e. twice ∂/∂w;
* DIoU/CIoU x, y: (2(x_gt − x)·c² − S·∂c²/∂x)/c⁴, where the exact derivative of −ρ²/c² has +S·∂c²/∂x (the
  enclosing-diagonal term has the opposite sign); the w, h part S·∂c²/∂w/c⁴ is exact;
* CIoU's aspect term: α·8/π²·(atan(w_gt/h_gt) − atan(w/h))·h for w (and −…·w for h), the paper's gradient with its
  1/(w² + h²) factor dropped, as the paper recommends; α is held constant;
* the intersection in the gradient is not clamped: for boxes apart along one axis it is Iw·Ih < 0 and the union
  is the areas' sum minus that, and ∂I by an edge counts the other axis' overlap whether or not the boxes meet.

Where the boxes do not overlap (an intersection side ≤ 0) GIoU keeps only the enclosing-box term and DIoU/CIoU
only the distance (and aspect) terms. Non-finite results are left to the caller (darknet zeroes them).
"""
from __future__ import annotations

import math
from typing import NamedTuple

__all__ = ["Box", "box_iou", "box_giou", "box_diou", "box_ciou", "box_iou_kind", "iou_gradient", "IOU_KINDS"]

IOU_KINDS = ("iou", "giou", "diou", "ciou")
_AR = 4 / (math.pi * math.pi)          # the v term's 4/π²


class Box(NamedTuple):
    x: float
    y: float
    w: float
    h: float


def _div(a: float, b: float) -> float:
    """a / b with IEEE results (inf, nan) instead of Python's ZeroDivisionError, as darknet's C division."""
    if b == 0:
        return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a)
    return a / b


def _overlap(x1, w1, x2, w2) -> float:
    return min(x1 + w1 / 2, x2 + w2 / 2) - max(x1 - w1 / 2, x2 - w2 / 2)


def box_iou(a: Box, b: Box) -> float:
    w, h = _overlap(a.x, a.w, b.x, b.w), _overlap(a.y, a.h, b.y, b.h)
    inter = 0.0 if w < 0 or h < 0 else w * h
    union = a.w * a.h + b.w * b.h - inter
    return 0.0 if inter == 0 or union == 0 else inter / union


def _enclosing(a: Box, b: Box) -> tuple[float, float]:
    """Width and height of the smallest box holding both."""
    w = max(a.x + a.w / 2, b.x + b.w / 2) - min(a.x - a.w / 2, b.x - b.w / 2)
    h = max(a.y + a.h / 2, b.y + b.h / 2) - min(a.y - a.h / 2, b.y - b.h / 2)
    return w, h


def box_giou(a: Box, b: Box) -> float:
    cw, ch = _enclosing(a, b)
    iou, c = box_iou(a, b), cw * ch
    if c == 0:
        return iou
    w, h = _overlap(a.x, a.w, b.x, b.w), _overlap(a.y, a.h, b.y, b.h)
    union = a.w * a.h + b.w * b.h - (0.0 if w < 0 or h < 0 else w * h)
    return iou - (c - union) / c


def _distance(a: Box, b: Box) -> float:
    return (a.x - b.x) ** 2 + (a.y - b.y) ** 2


def box_diou(a: Box, b: Box) -> float:
    """darknet's: IoU − (ρ²/c²)^0.6."""
    cw, ch = _enclosing(a, b)
    c, iou = cw * cw + ch * ch, box_iou(a, b)
    return iou if c == 0 else iou - (_distance(a, b) / c) ** 0.6


def _aspect(pred: Box, truth: Box) -> float:
    """atan(w_gt/h_gt) − atan(w/h)."""
    return math.atan(_div(truth.w, truth.h)) - math.atan(_div(pred.w, pred.h))


def box_ciou(a: Box, b: Box) -> float:
    """``a`` predicted, ``b`` the truth (the aspect term is not symmetric in darknet either)."""
    cw, ch = _enclosing(a, b)
    c, iou = cw * cw + ch * ch, box_iou(a, b)
    if c == 0:
        return iou
    v = _AR * _aspect(a, b) ** 2
    alpha = v / (1 - iou + v + 0.000001)
    return iou - (_distance(a, b) / c + alpha * v)


def box_iou_kind(a: Box, b: Box, kind: str) -> float:
    return {"iou": box_iou, "giou": box_giou, "diou": box_diou, "ciou": box_ciou}.get(kind, box_iou)(a, b)


def iou_gradient(pred: Box, truth: Box, kind: str) -> tuple[float, float, float, float]:
    """darknet's ``dx_box_iou``: (dx, dy, dw, dh) that raise the ``kind`` measure ("iou", "giou", "diou" or
    "ciou") of ``pred`` against ``truth``; see the module notes for where it departs from the exact derivative."""
    # the predicted box's edges (in order even for a negative size), the truth's as they are
    t0, b0, l0, r0 = pred.y - pred.h / 2, pred.y + pred.h / 2, pred.x - pred.w / 2, pred.x + pred.w / 2
    pt, pb, pl, pr = min(t0, b0), max(t0, b0), min(l0, r0), max(l0, r0)
    tt, tb, tl, tr = truth.y - truth.h / 2, truth.y + truth.h / 2, truth.x - truth.w / 2, truth.x + truth.w / 2
    area = (pb - pt) * (pr - pl)
    ih, iw = min(pb, tb) - max(pt, tt), min(pr, tr) - max(pl, tl)
    inter = iw * ih
    union = area + (tb - tt) * (tr - tl) - inter
    apart = iw <= 0 or ih <= 0
    # per edge (top, bottom, left, right) of the prediction: d(area), d(intersection), d(union), d(enclosing area)
    d_area = (-(pr - pl), pr - pl, -(pb - pt), pb - pt)
    d_inter = (-iw if pt > tt else 0.0, iw if pb < tb else 0.0, -ih if pl > tl else 0.0, ih if pr < tr else 0.0)
    d_union = tuple(a - i for a, i in zip(d_area, d_inter))
    enc_w, enc_h = max(pr, tr) - min(pl, tl), max(pb, tb) - min(pt, tt)
    enc = enc_w * enc_h
    d_enc = (-enc_w if pt < tt else 0.0, enc_w if pb > tb else 0.0, -enc_h if pl < tl else 0.0,
             enc_h if pr > tr else 0.0)
    # IoU = I/U by each edge
    p = [(union * di - inter * du) / (union * union) if union > 0 else 0.0 for di, du in zip(d_inter, d_union)]
    if not t0 < b0:                    # darknet's corner selection for a flipped box (both take the other edge's)
        p[0] = p[1]
    if not l0 < r0:
        p[2] = p[3]
    if kind == "giou":
        enclosing = [_div(enc * du - union * dc, enc * enc) for du, dc in zip(d_union, d_enc)]
        if enc > 0:
            p = [a + e for a, e in zip(p, enclosing)]
        if apart:
            p = enclosing
    dt, db, dl, dr = p
    dx, dy, dw, dh = dl + dr, dt + db, dr - dl, db - dt
    if kind in ("diou", "ciou"):
        s = _distance(pred, truth)
        cw = max(pred.x + pred.w / 2, tr) - min(pred.x - pred.w / 2, tl)
        ch = max(pred.y + pred.h / 2, tb) - min(pred.y - pred.h / 2, tt)
        c = cw * cw + ch * ch
        # how the enclosing box's width/height move with x (w) and y (h): its left edge is the prediction's when
        # pl < tl (then d/dx = 1, d/dw = −1/2), its right edge when pr > tr (d/dx = 1, d/dw = 1/2); same for y, h
        dcw_dx = (1.0 if pr > tr else 0.0) - (1.0 if pl < tl else 0.0)
        dcw_dw = (0.5 if pr > tr else 0.0) + (0.5 if pl < tl else 0.0)
        dch_dy = (1.0 if pb > tb else 0.0) - (1.0 if pt < tt else 0.0)
        dch_dh = (0.5 if pb > tb else 0.0) + (0.5 if pt < tt else 0.0)
        cc = c * c
        ex = _div(2 * (truth.x - pred.x) * c - 2 * cw * dcw_dx * s, cc)
        ey = _div(2 * (truth.y - pred.y) * c - 2 * ch * dch_dy * s, cc)
        ew, eh = _div(2 * cw * dcw_dw * s, cc), _div(2 * ch * dch_dh * s, cc)
        if kind == "ciou":
            v = _AR * _aspect(pred, truth) ** 2
            alpha = v / (1 - _div(inter, union) + v + 0.000001)
            ew += alpha * 2 * _AR * _aspect(pred, truth) * pred.h
            eh -= alpha * 2 * _AR * _aspect(pred, truth) * pred.w
        if c > 0:
            dx, dy, dw, dh = dx + ex, dy + ey, dw + ew, dh + eh
        if apart:
            dx, dy, dw, dh = ex, ey, ew, eh
    return dx, dy, dw, dh
