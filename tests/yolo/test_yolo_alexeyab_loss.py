"""AlexeyAB darknet's [yolo] loss (iou_loss, normalizers, max_delta, scale_x_y, new_coords, iou_thresh, label
smoothing, counters_per_class) on small cases worked by hand.

The two boxes of the IoU cases: the prediction P = (x .5, y .5, w .4, h .2), edges l .3, r .7, t .4, b .6; the truth
T = (x .6, y .55, w .4, h .4), edges l .4, r .8, t .35, b .75.
  intersection: width min(.7,.8) − max(.3,.4) = .3, height min(.6,.75) − max(.4,.35) = .2, I = .06;
  areas .08 and .16, union U = .18, IoU = 1/3;
  enclosing box: l .3, r .8, t .35, b .75: 0.5 x 0.4, area .2 (GIoU), squared diagonal c² = .25 + .16 = .41;
  centre distance ρ² = .1² + .05² = .0125.
Published measures: GIoU = IoU − (C − U)/C = 1/3 − .02/.2 (Rezatofighi et al. 2019); DIoU = IoU − ρ²/c²;
CIoU = IoU − ρ²/c² − α·v, v = 4/π²·(atan(.4/.4) − atan(.4/.2))², α = v/(1 − IoU + v) (Zheng et al. 2020).

Derivatives of IoU = I/U by the prediction's edges, (U·∂I − I·∂U)/U² with U² = .0324:
  ∂I: left 0 (.3 < .4: the truth's edge bounds it), right +.2 (height of I), top −.3 (width of I), bottom +.3;
  ∂area: left −.2, right +.2, top −.4, bottom +.4; ∂U = ∂area − ∂I: left −.2, right 0, top −.1, bottom +.1;
  → left .012/.0324, right .036/.0324, top −.048/.0324, bottom .048/.0324.
  ∂/∂x = left + right = .048/.0324, ∂/∂y = top + bottom = 0, ∂/∂w = (right − left)/2 = .012/.0324,
  ∂/∂h = (bottom − top)/2 = .048/.0324.
GIoU adds ∂(U/C) = (C·∂U − U·∂C)/C²; only the enclosing box's left edge is the prediction's: ∂C left = −.4 (its
height), so left gets (.2·(−.2) + .18·.4)/.04 = .8, top (.2·(−.1))/.04 = −.5, bottom +.5, right 0.
DIoU's −ρ²/c² by x: exactly (2(x_T − x_P)·c² + ρ²·∂c²/∂x)/c⁴ with ∂c²/∂x = 2·.5·(−1) (the enclosing width
shrinks as P moves right): (.082 − .0125)/.1681; by w: ρ²·∂c²/∂w/c⁴ = .0125·(2·.5·.5)/.1681; by y, h: the
enclosing height does not move with P, so (2·.05·.41)/.1681 and 0.
"""
import math

import numpy as np
import pytest
import torch

from tritnet.darknet import CfgError, parse_cfg_string
from tritnet.darknet.network import DarknetNet
from tritnet.yolo import YoloSettings, yolo_loss
from tritnet.yolo.iou_kinds import Box, box_ciou, box_diou, box_giou, box_iou, iou_gradient
from tritnet.yolo.loss import DetectionLoss, HeadInputs

P, T = Box(.5, .5, .4, .2), Box(.6, .55, .4, .4)
U2 = .0324
IOU_GRAD = (.048 / U2, 0.0, .012 / U2, .048 / U2)                 # exact ∂IoU/∂(x, y, w, h), from the edges above
V = 4 / math.pi ** 2 * (math.atan(1) - math.atan(2)) ** 2
ALPHA = V / (1 - 1 / 3 + V)


def published(kind, x, y, w, h):
    """The published measures, written out in torch for autograd (an independent check of the hand sums)."""
    tx, ty, tw, th = (torch.tensor(c, dtype=torch.float64) for c in T)
    iw = torch.minimum(x + w / 2, (tx + tw / 2)) - torch.maximum(x - w / 2, (tx - tw / 2))
    ih = torch.minimum(y + h / 2, (ty + th / 2)) - torch.maximum(y - h / 2, (ty - th / 2))
    inter = iw * ih
    union = w * h + tw * th - inter
    iou = inter / union
    cw = torch.maximum(x + w / 2, (tx + tw / 2)) - torch.minimum(x - w / 2, (tx - tw / 2))
    ch = torch.maximum(y + h / 2, (ty + th / 2)) - torch.minimum(y - h / 2, (ty - th / 2))
    if kind == "iou":
        return iou
    if kind == "giou":
        return iou - (cw * ch - union) / (cw * ch)
    rho = (x - tx) ** 2 + (y - ty) ** 2
    return iou - rho / (cw ** 2 + ch ** 2)                            # DIoU (CIoU's aspect term: see its test)


def exact_gradient(kind):
    v = [torch.tensor(float(c), dtype=torch.float64, requires_grad=True) for c in P]
    published(kind, *v).backward()
    return [float(c.grad) for c in v]


def test_measures_by_hand():
    assert box_iou(P, T) == pytest.approx(1 / 3)
    assert box_giou(P, T) == pytest.approx(1 / 3 - .02 / .2)                           # .2333
    assert box_ciou(P, T) == pytest.approx(1 / 3 - .0125 / .41 - V * V / (1 - 1 / 3 + V + 1e-6))     # .30036
    # darknet's box_diou raises the distance ratio to the power .6 (the paper's DIoU is 1/3 − .0125/.41 = .3028):
    # .030488^.6 = .12316, so .21017; it only serves iou_thresh_kind=diou, the loss follows the paper
    assert box_diou(P, T) == pytest.approx(1 / 3 - (.0125 / .41) ** .6)
    assert box_diou(P, T) == pytest.approx(.21017, abs=1e-5)
    # disjoint boxes: IoU 0, GIoU below 0 (enclosing 1 x .2, union .16 → −.84)
    assert box_iou(Box(.2, .5, .2, .2), Box(.8, .5, .6, .2)) == 0
    assert box_giou(Box(.2, .5, .4, .2), Box(.8, .5, .4, .2)) == pytest.approx(0 - (.2 - .16) / .2)


def test_iou_and_giou_gradients_by_hand():
    # the published derivative, by hand and by autograd of the formula
    assert exact_gradient("iou") == pytest.approx(IOU_GRAD)
    giou_edges = dict(l=.012 / U2 + .8, r=.036 / U2, t=-.048 / U2 - .5, b=.048 / U2 + .5)
    giou_exact = (giou_edges["l"] + giou_edges["r"], 0, (giou_edges["r"] - giou_edges["l"]) / 2,
                  (giou_edges["b"] - giou_edges["t"]) / 2)                      # (2.2815, 0, −.0296, 1.9815)
    assert exact_gradient("giou") == pytest.approx(giou_exact)
    # darknet's: x, y exact; w, h are (right − left) and (bottom − top) without the 1/2, twice the derivative
    for kind, exact in (("iou", IOU_GRAD), ("giou", giou_exact)):
        dx, dy, dw, dh = iou_gradient(P, T, kind)
        assert (dx, dy, dw, dh) == pytest.approx((exact[0], exact[1], 2 * exact[2], 2 * exact[3]), abs=1e-9)
    assert iou_gradient(P, T, "giou") == pytest.approx((2.281481, 0, -.059259, 3.962963), abs=1e-6)


def test_diou_and_ciou_gradients_by_hand():
    diou_exact = (.048 / U2 + (.082 - .0125) / .1681, .041 / .1681, .012 / U2 + .0125 * .5 / .1681, .048 / U2)
    assert exact_gradient("diou") == pytest.approx(diou_exact)                       # (1.8949, .2439, .4076, 1.4815)
    # darknet: the IoU part as above (w, h doubled); the distance part with −ρ²·∂c²/∂x where the derivative has
    # +ρ²·∂c²/∂x: (.082 + .0125)/.1681 = .5622 instead of .4134; w, h and y exact
    dark = (.048 / U2 + (.082 + .0125) / .1681, .041 / .1681, .024 / U2 + .0125 * .5 / .1681, .096 / U2)
    assert iou_gradient(P, T, "diou") == pytest.approx(dark, abs=1e-9)
    assert dark == pytest.approx((2.043646, .243903, .777921, 2.962963), abs=1e-6)
    # CIoU adds −α·∂v/∂(w, h) with α held constant (Zheng et al. eq. 12) and the 1/(w² + h²) factor dropped:
    # ∂v/∂w = −8/π²·(atan(1) − atan(2))·h/(w² + h²), so the term is α·8/π²·(atan 1 − atan 2)·h = α·(−.0521),
    # and for h −α·8/π²·(atan 1 − atan 2)·w = α·(.1043)
    w = torch.tensor(.4, dtype=torch.float64, requires_grad=True)
    h = torch.tensor(.2, dtype=torch.float64, requires_grad=True)
    (4 / math.pi ** 2 * (math.atan(1) - torch.atan(w / h)) ** 2).backward()
    alpha = V / (1 - 1 / 3 + V + 1e-6)
    ar_w, ar_h = -alpha * float(w.grad) * (.4 ** 2 + .2 ** 2), -alpha * float(h.grad) * (.4 ** 2 + .2 ** 2)
    d = 8 / math.pi ** 2 * (math.atan(1) - math.atan(2))
    assert (ar_w, ar_h) == pytest.approx((alpha * d * .2, -alpha * d * .4))
    assert iou_gradient(P, T, "ciou") == pytest.approx((dark[0], dark[1], dark[2] + ar_w, dark[3] + ar_h), abs=1e-9)


def test_disjoint_boxes_keep_only_the_penalty_terms():
    # P' = (.2, .5, .2, .2) and T' = (.8, .5, .2, .2) side by side: edges l .1, r .3 and l .7, r .9, both t .4,
    # b .6. GIoU's gradient is the enclosing-box term alone, (C·∂U − U·∂C)/C², but darknet's U there uses the
    # unclamped "intersection" I = Iw·Ih = (.3 − .7)·.2 = −.08: U = .04 + .04 + .08 = .16, and ∂I by the right
    # edge is Ih = .2 (.3 < .9), so ∂U: left −.2, right .2 − .2 = 0, top −.2, bottom .2. Enclosing: .8 x .2,
    # C = .16, ∂C: left −.2 (P' holds the enclosing left edge), others 0.
    # left (.16·(−.2) − .16·(−.2))/.0256 = 0, right 0, top −.2·.16/.0256 = −1.25, bottom 1.25
    # (the exact derivative of U/C − 1 by x would be .08·.2/.0256 = .625: darknet's U makes U/C constant here)
    a, b = Box(.2, .5, .2, .2), Box(.8, .5, .2, .2)
    assert iou_gradient(a, b, "giou") == pytest.approx((0, 0, 0, 2.5))
    # iou_loss=iou keeps (U·∂I − I·∂U)/U² with the same I = −.08, ∂I right .2 (others 0), U = .16:
    # top −.08·.2/.0256 = −.625, bottom .625, left −.625, right (.16·.2)/.0256 = 1.25
    assert iou_gradient(a, b, "iou") == pytest.approx((.625, 0, 1.875, 1.25))
    # DIoU: distance part alone. c² = .8² + .2² = .68, ρ² = .36; ∂c²/∂x = 2·.8·(−1); ∂c²/∂w = 2·.8·.5
    assert iou_gradient(a, b, "diou") == pytest.approx(((2 * .6 * .68 - 2 * .8 * -1 * .36) / .68 ** 2, 0,
                                                        2 * .8 * .5 * .36 / .68 ** 2, 0))


# ---------------------------------------------------------------------------------------------- the layer
# a 2x2 grid, net 40x40, anchors 10x10 and 20x20 px, the layer owns anchor 1 (mask=1). The anchor in cell (1, 1)
# predicts P: x = (1 + 0)/2 = .5 (output 0), w = exp(log .8)·20/40 = .4, h = exp(log .4)·20/40 = .2. The truth
# T is in cell (int(.6·2), int(.55·2)) = (1, 1); its shape .4x.4 matches anchor 1 (.5x.5: IoU .16/.25) better
# than anchor 0 (.25x.25: .0625/.16).
TRUTH = np.array([[[.6, .55, .4, .4, 0], [0, 0, 0, 0, 0]]], np.float32)
BASE = dict(classes=2, mask=(1,), anchors=(10, 10, 20, 20), ignore_thresh=.7, dialect="alexeyab")


def layer_out(obj=.3, cls=(.2, .1)):
    out = np.zeros((1, 1, 7, 2, 2), np.float32)
    out[..., 2, :, :], out[..., 3, :, :] = math.log(.8), math.log(.4)
    out[..., 4, :, :], out[..., 5, :, :], out[..., 6, :, :] = obj, *cls
    return out


def settings(**kw):
    return YoloSettings(**{**BASE, **kw})


@pytest.mark.parametrize("kind", ["iou", "giou", "diou", "ciou"])
def test_iou_loss_box_delta_is_the_gradient_times_exp_and_normalizer(kind):
    r = yolo_loss(layer_out(), TRUTH, settings(iou_loss=kind, iou_normalizer=.07), 40, 40)
    dx, dy, dw, dh = iou_gradient(P, T, kind)
    # w, h times exp(t_w) = .8 and exp(t_h) = .4; no (2 − w·h) scale for the IoU losses
    assert r.delta[0, 0, :4, 1, 1] == pytest.approx([.07 * dx, .07 * dy, .07 * dw * .8, .07 * dh * .4], rel=1e-5)
    assert (r.delta[0, 0, :4, :, :].reshape(4, -1)[:, :3] == 0).all()       # other cells: no box delta
    assert r.delta[0, 0, 4, 1, 1] == pytest.approx(.7)                        # 1 − .3
    assert r.delta[0, 0, 5:, 1, 1] == pytest.approx([.8, -.1])                # onehot − p
    assert (r.grad == r.delta).all()
    assert r.stats["avg_iou"] == pytest.approx(1 / 3, rel=1e-5) and r.stats["count"] == 1
    # darknet's cost with show_details=1: iou_normalizer·(1 − IoU) (1 − GIoU for giou) per truth, plus Σ delta²
    # over objectness and classes: three other cells at (0 − .3)², and .7², .8², .1²
    iou_part = 1 - (1 / 3 - .1 if kind == "giou" else 1 / 3)
    assert r.cost == pytest.approx(.07 * iou_part + 3 * .09 + .49 + .64 + .01, rel=1e-5)


def test_mse_box_delta_has_the_iou_normalizer_and_is_never_clipped():
    r = yolo_loss(layer_out(), TRUTH, settings(iou_loss="mse", iou_normalizer=.5, max_delta=.01), 40, 40)
    # tx = .6·2 − 1 = .2, ty = .55·2 − 1 = .1, tw = log(.4·40/20) = log .8, th = log .8; scale 2 − .16 = 1.84
    s = 1.84 * .5
    assert r.delta[0, 0, :4, 1, 1] == pytest.approx([s * .2, s * .1, 0, s * math.log(2)], abs=1e-6)
    cost = sum(v * v for v in (s * .2, s * .1, s * math.log(2))) + 3 * .09 + .49 + .64 + .01
    assert r.cost == pytest.approx(cost, rel=1e-5)                            # mse: Σ delta²


def test_max_delta_clips_each_iou_box_delta():
    dx, dy, dw, dh = (v * 5 for v in iou_gradient(P, T, "ciou"))             # iou_normalizer 5: (10.2, 1.22, ...)
    r = yolo_loss(layer_out(), TRUTH, settings(iou_loss="ciou", iou_normalizer=5, max_delta=1.5), 40, 40)
    expected = [min(max(v, -1.5), 1.5) for v in (dx, dy, dw * .8, dh * .4)]
    assert expected == pytest.approx([1.5, 1.2195, 1.5, 1.5], abs=1e-4)      # dy stays under the cap
    assert r.delta[0, 0, :4, 1, 1] == pytest.approx(expected, rel=1e-5)
    assert r.delta[0, 0, 5:, 1, 1] == pytest.approx([.8, -.1])                # classes are not clipped


def test_normalizers_scale_their_own_terms():
    plain = yolo_loss(layer_out(), TRUTH, settings(iou_loss="giou"), 40, 40).delta
    r = yolo_loss(layer_out(), TRUTH, settings(iou_loss="giou", iou_normalizer=.2, obj_normalizer=3,
                                               cls_normalizer=7), 40, 40)
    d = r.delta[0, 0]
    assert d[:4, 1, 1] == pytest.approx(plain[0, 0, :4, 1, 1] * .2 / .75, rel=1e-5)   # default iou_normalizer .75
    assert d[4, 1, 1] == pytest.approx(3 * .7) and d[4, 0, 0] == pytest.approx(3 * -.3)   # positive and negative
    # cls_normalizer multiplies only together with counters_per_class (darknet's delta_yolo_class)
    assert d[5:, 1, 1] == pytest.approx([.8, -.1])
    # counters_per_class 10,40: class 0's multiplier 40/10 = 4 scales its box normalizer, its objectness delta
    # and its class delta (that one also by cls_normalizer); the other class's delta stays
    c = yolo_loss(layer_out(), TRUTH, settings(iou_loss="giou", iou_normalizer=.2, obj_normalizer=3,
                                               cls_normalizer=7, classes_multipliers=(4.0, 1.0)), 40, 40).delta[0, 0]
    assert c[:4, 1, 1] == pytest.approx(4 * d[:4, 1, 1], rel=1e-5)
    assert c[4, 1, 1] == pytest.approx(4 * 3 * .7) and c[4, 0, 0] == pytest.approx(3 * -.3)
    assert c[5:, 1, 1] == pytest.approx([4 * 7 * .8, -.1])


def test_counters_per_class_and_the_refused_keys_from_the_cfg():
    text = CFG.format(extra="counters_per_class=100, 25\nmax_delta=3\n", dialect_key="")
    s = DetectionLoss(DarknetNet(parse_cfg_string(text, dialect="alexeyab"))).heads[0][2]
    assert s.classes_multipliers == (1.0, 3.0)                                   # 100/25 = 4, capped at max_delta 3
    for extra, key in (("focal_loss=1\n", "focal_loss"), ("objectness_smooth=1\n", "objectness_smooth")):
        text = CFG.format(extra=extra, dialect_key="")
        with pytest.raises(CfgError, match=rf"cfg:\d+: \[yolo\]: {key}=1"):
            DetectionLoss(DarknetNet(parse_cfg_string(text, path="t.cfg", dialect="alexeyab")))
    text = CFG.format(extra="", dialect_key="equidistant_point=1000\n")
    with pytest.raises(CfgError, match=r"t.cfg:\d+: \[net\]: equidistant_point"):
        DetectionLoss(DarknetNet(parse_cfg_string(text, path="t.cfg", dialect="alexeyab")))
    with pytest.raises(CfgError, match="counters_per_class has 1 values but classes=2"):
        DetectionLoss(DarknetNet(parse_cfg_string(CFG.format(extra="counters_per_class=5\n", dialect_key=""),
                                                  path="t.cfg", dialect="alexeyab")))


def test_label_smoothing():
    r = yolo_loss(layer_out(), TRUTH, settings(label_smooth_eps=.1), 40, 40)
    # targets 1·.9 + .05 = .95 and .05
    assert r.delta[0, 0, 5:, 1, 1] == pytest.approx([.95 - .2, .05 - .1])


def test_ignore_needs_a_class_above_a_quarter():
    # cell (1, 1) predicts P, IoU 1/3 with T; with ignore_thresh .3 darknet leaves the objectness of anchors that
    # overlap a truth alone only when one of their class outputs is above .25. Another layer's truth (shape .2x.2
    # fits anchor 0) overlapping P by > .3: (.5,.5,.2,.2) lies inside P: IoU .04/.08 = .5
    other = np.array([[[.5, .5, .2, .2, 1]]], np.float32)
    low = settings(ignore_thresh=.3)
    assert yolo_loss(layer_out(cls=(.2, .1)), other, low, 40, 40).delta[0, 0, 4, 1, 1] == pytest.approx(-.3)
    assert yolo_loss(layer_out(cls=(.2, .3)), other, low, 40, 40).delta[0, 0, 4, 1, 1] == 0
    # pjreddie's loss ignores it whatever the classes
    pj = YoloSettings(classes=2, mask=(1,), anchors=(10, 10, 20, 20), ignore_thresh=.3)
    assert yolo_loss(layer_out(cls=(.2, .1)), other, pj, 40, 40).delta[0, 0, 4, 1, 1] == 0


def test_two_truths_in_one_cell_add_their_box_deltas():
    # T and T2 = (.6, .55, .4, .4) of class 1, same cell and anchor: the box deltas add up (darknet accumulates;
    # pjreddie overwrites); the class delta of the second resets only its own class: 1 − .1
    two = np.array([[[.6, .55, .4, .4, 0], [.6, .55, .4, .4, 1]]], np.float32)
    one = yolo_loss(layer_out(), TRUTH, settings(iou_loss="mse"), 40, 40).delta[0, 0, :, 1, 1]
    r = yolo_loss(layer_out(), two, settings(iou_loss="mse"), 40, 40)
    assert r.delta[0, 0, :4, 1, 1] == pytest.approx(2 * one[:4], rel=1e-6)
    assert r.delta[0, 0, 5:, 1, 1] == pytest.approx([.8, .9])
    # with iou_thresh < 1, a cell's box delta is divided by its classes with a positive delta (2 here)
    r = yolo_loss(layer_out(), two, settings(iou_loss="mse", iou_thresh=.99), 40, 40)
    assert r.delta[0, 0, :4, 1, 1] == pytest.approx(one[:4], rel=1e-6)


def test_iou_thresh_assigns_every_anchor_of_the_layer_above_it():
    # the layer owns both anchors (mask 0,1); T's shape matches anchor 1 best (.64) and anchor 0 by .390625
    both = settings(mask=(0, 1), iou_loss="mse")
    out = np.concatenate([layer_out(), layer_out()], 1)
    single = yolo_loss(out, TRUTH, both, 40, 40).delta[0]
    assert single[1, 4, 1, 1] == pytest.approx(.7) and single[0, 4, 1, 1] == pytest.approx(-.3)
    for thresh, extra in ((.39, True), (.4, False)):
        r = yolo_loss(out, TRUTH, settings(mask=(0, 1), iou_loss="mse", iou_thresh=thresh), 40, 40)
        d = r.delta[0]
        assert d[1, :, 1, 1] == pytest.approx(single[1, :, 1, 1], rel=1e-6)
        if extra:
            # anchor 0 (10x10 px) in the same cell: tw = log(.4·40/10) = log 1.6, predicted log .8: log 2
            s = .75 * 1.84
            assert d[0, :4, 1, 1] == pytest.approx([s * .2, s * .1, s * math.log(2), s * math.log(4)], rel=1e-5)
            assert d[0, 4, 1, 1] == pytest.approx(.7) and r.stats["count"] == 2
        else:
            assert d[0, 4, 1, 1] == pytest.approx(-.3) and r.stats["count"] == 1
    # iou_thresh_kind=giou measures the shapes by GIoU (.390625 as well: one box holds the other)
    r = yolo_loss(out, TRUTH, settings(mask=(0, 1), iou_loss="mse", iou_thresh=.39, iou_thresh_kind="giou"), 40, 40)
    assert r.stats["count"] == 2


def test_new_coords_targets_and_gradient():
    # new_coords: w = (2·o)²·anchor/net_w; o = sqrt(.4·40/(4·20)) = .4472 gives w = .4, h: o = sqrt(.2·40/80)
    out = layer_out()
    out[..., 2, :, :], out[..., 3, :, :] = math.sqrt(.2), math.sqrt(.1)
    s = settings(new_coords=True, iou_loss="mse", iou_normalizer=1)
    d = yolo_loss(out, TRUTH, s, 40, 40).delta[0, 0, :4, 1, 1]
    # targets sqrt(.4·40/(4·20)) = sqrt(.2) for both w and h
    assert d == pytest.approx([1.84 * .2, 1.84 * .1, 0, 1.84 * (math.sqrt(.2) - math.sqrt(.1))], abs=1e-6)
    # IoU losses: the gradient of the same box P, with no exp factor
    r = yolo_loss(out, TRUTH, settings(new_coords=True, iou_loss="giou", iou_normalizer=1), 40, 40)
    assert r.delta[0, 0, :4, 1, 1] == pytest.approx(iou_gradient(P, T, "giou"), rel=1e-5)


def test_delta_normalizer_scales_the_gradient_not_the_delta():
    r = yolo_loss(layer_out(), TRUTH, settings(delta_normalizer=.5), 40, 40)
    assert r.delta[0, 0, 4, 1, 1] == pytest.approx(.7) and (r.grad == r.delta * np.float32(.5)).all()


# ---------------------------------------------------------------------------------------------- through the net
CFG = """
[net]
batch=2
subdivisions=1
width=32
height=32
channels=3
{dialect_key}
[convolutional]
batch_normalize=1
filters=8
size=3
stride=4
pad=1
activation=leaky

[convolutional]
size=1
stride=1
pad=1
filters=14
activation=linear

[yolo]
mask=0,1
anchors=8,8, 16,16
classes=2
num=2
scale_x_y=1.05
iou_loss=ciou
iou_normalizer=0.07
{extra}
"""


def test_scale_x_y_enters_the_decode_and_the_gradient_is_darknets_delta():
    """The loss sees the scaled x, y (1.05·σ(z) − .025) and sends delta to the head input z unchanged: no σ'
    and no 1.05 factor (backward_yolo_layer is an axpy); ∂L/∂z = −delta/batch."""
    net = DarknetNet(parse_cfg_string(CFG.format(extra="", dialect_key=""), dialect="alexeyab")).train()
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    kept = []

    def keep(module, args, out):
        out.retain_grad()
        kept.append(out)
    handle = net.layers[net.head_indices[0] - 1].register_forward_hook(keep)
    pairs = HeadInputs(net)(x)
    handle.remove()
    z = kept[0].detach().reshape(2, 2, 7, 8, 8)
    act = pairs[0][1].detach().reshape(2, 2, 7, 8, 8)
    np.testing.assert_allclose(act[:, :, :2], 1.05 * torch.sigmoid(z[:, :, :2]) - .025, atol=1e-6)
    truth = torch.tensor([[[.5, .5, .3, .3, 1]] + [[0] * 5] * 199] * 2)
    loss_fn = DetectionLoss(net)
    s = loss_fn.heads[0][2]
    assert (s.dialect, s.iou_loss, s.iou_normalizer) == ("alexeyab", "ciou", np.float32(.07))
    surrogate, cost, stats = loss_fn(pairs, truth, 0, 32, 32, batch=8)
    surrogate.backward()
    expected = yolo_loss(act.numpy(), truth.numpy(), s, 32, 32)
    np.testing.assert_allclose(kept[0].grad.numpy(), -expected.delta.reshape(2, 14, 8, 8) / 8, atol=1e-8)
    assert cost == pytest.approx(expected.cost) and stats[0]["count"] == 2
    # the truth (.5, .5) in cell (4, 4): its box delta is the CIoU gradient at the decoded box
    k = 0                                 # .3 x .3: anchor 8x8 (.25², IoU .0625/.09) beats 16x16 (.09/.25)
    o = act[0, k, :, 4, 4].numpy().astype(float)
    pred = Box((4 + o[0]) / 8, (4 + o[1]) / 8, math.exp(o[2]) * 8 / 32, math.exp(o[3]) * 8 / 32)
    dx, dy, dw, dh = iou_gradient(pred, Box(.5, .5, .3, .3), "ciou")
    n = float(np.float32(.07))
    assert expected.delta[0, k, :4, 4, 4] == pytest.approx([n * dx, n * dy, n * dw * math.exp(o[2]),
                                                            n * dh * math.exp(o[3])], rel=1e-4)


def test_pjreddie_dialect_keeps_pjreddies_loss():
    """The same keys read in the pjreddie dialect (darknetTWN reads them too): pjreddie's loss, as before."""
    text = CFG.format(extra="", dialect_key="")
    s = DetectionLoss(DarknetNet(parse_cfg_string(text, dialect="pjreddie"))).heads[0][2]
    assert s.dialect == "pjreddie"
    out = np.random.default_rng(0).random((1, 2, 7, 8, 8)).astype(np.float32)
    truth = np.array([[[.5, .5, .3, .3, 1]]], np.float32)
    r = yolo_loss(out, truth, s, 32, 32)
    # pjreddie: box delta (2 − w·h)·(t − o) with no normalizer; cost Σ delta²
    assert r.delta[0, 0, 0, 4, 4] == pytest.approx((2 - .09) * (.5 * 8 - 4 - out[0, 0, 0, 4, 4]), rel=1e-5)
    assert r.cost == pytest.approx(float(np.square(r.delta.astype(np.float64)).sum()))
