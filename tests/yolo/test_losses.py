"""darknet's [region] and [yolo] deltas on small hand-made cases; every expected number is worked out by hand
in the comments (IoUs, targets, scales), not computed by the code under test."""
import math

import numpy as np
import pytest
import torch

from tritnet.yolo import RegionSettings, YoloSettings, region_loss, yolo_loss
from tritnet.yolo.loss import DetectionLoss, HeadInputs

# ---------------------------------------------------------------------------------------------- region
# one image, 2x2 grid, anchors (1,1) and (2,2) grid cells, 2 classes; every output: x=.3, y=.5 (after the
# logistic), tw=th=0, objectness .2, class probabilities (.7, .3). One truth: x=.3 y=.6 w=h=.5, class 1.
REGION = RegionSettings(classes=2, num=2, anchors=(1, 1, 2, 2), thresh=.6, coord_scale=1, object_scale=5,
                        noobject_scale=1, class_scale=1, rescore=True, bias_match=True, softmax=True)


def region_out():
    out = np.zeros((1, 2, 7, 2, 2), np.float32)
    out[:, :, 0], out[:, :, 1], out[:, :, 4], out[:, :, 5], out[:, :, 6] = .3, .5, .2, .7, .3
    return out


TRUTH = np.array([[[.3, .6, .5, .5, 1], [0, 0, 0, 0, 0]]], np.float32)


def test_region_deltas_by_hand():
    r = region_loss(region_out(), TRUTH, REGION, seen=20000)
    d = r.delta[0]
    # cell i = int(.3·2) = 0, j = int(.6·2) = 1. Shapes: anchor 0 is .5x.5 (IoU 1 with the truth), anchor 1 is
    # 1x1 (IoU .25): anchor 0. Its box: x = (0+.3)/2 = .15, y = (1+.5)/2 = .75, w = h = .5; with the truth
    # the overlap is .35 (x from .05 to .40) by .35 (y from .50 to .85): IoU = .1225/(.25+.25-.1225) = .324503
    iou = .1225 / (.5 - .1225)
    scale = 1 * (2 - .25)                                  # coord_scale·(2 − w·h)
    assert d[0, 0, 1, 0] == pytest.approx(scale * (.6 - .3))           # tx = .3·2 − 0
    assert d[0, 1, 1, 0] == pytest.approx(scale * (.2 - .5))           # ty = .6·2 − 1
    assert d[0, 2, 1, 0] == pytest.approx(0, abs=1e-6)                 # tw = log(.5·2/1) = 0
    assert d[0, 4, 1, 0] == pytest.approx(5 * (iou - .2), rel=1e-5)    # rescore: object_scale·(IoU − o)
    assert d[0, 5:, 1, 0] == pytest.approx([-.7, .7])                  # class_scale·(onehot − p)
    # every other anchor: no predicted box overlaps the truth by more than .6 → noobject_scale·(0 − .2)
    obj = d[:, 4].ravel().tolist()                                    # (anchor, row, col) flattened
    assert obj.pop(2) == pytest.approx(5 * (iou - .2), rel=1e-5) and obj == pytest.approx([-.2] * 7)
    assert (d[1, :4] == 0).all() and (d[1, 5:] == 0).all()             # anchor 1 gets no box/class delta
    expected_cost = 7 * .2 ** 2 + (scale * .3) ** 2 + (scale * .3) ** 2 + (5 * (iou - .2)) ** 2 + 2 * .7 ** 2
    assert r.cost == pytest.approx(expected_cost, rel=1e-5)
    assert r.stats["count"] == 1 and r.stats["avg_iou"] == pytest.approx(iou, rel=1e-5)
    assert r.stats["recall"] == 0 and r.stats["class"] == pytest.approx(.3)
    # the backward multiplies x, y and objectness by the logistic's slope o(1 − o); classes, w, h unchanged
    g = r.grad[0]
    assert g[0, 0, 1, 0] == pytest.approx(scale * .3 * .3 * .7)
    assert g[0, 4, 1, 0] == pytest.approx(5 * (iou - .2) * .2 * .8, rel=1e-5)
    assert g[0, 5:, 1, 0] == pytest.approx([-.7, .7])


def test_region_logistic_classes_with_softmax_0():
    """softmax=0: each class has its own logistic; darknet's class delta is the same onehot − p, and its
    backward leaves the class delta as it is (logistic + cross-entropy), so the grad equals the delta."""
    import dataclasses
    out = region_out()
    out[:, :, 5], out[:, :, 6] = .6, .9                      # independent probabilities, not summing to 1
    r = region_loss(out, TRUTH, dataclasses.replace(REGION, softmax=False), seen=20000)
    assert r.delta[0, 0, 5:, 1, 0] == pytest.approx([0 - .6, 1 - .9])
    assert r.grad[0, 0, 5:, 1, 0] == pytest.approx([-.6, .1])
    assert r.stats["class"] == pytest.approx(.9)
    assert (r.delta[0, 1, 5:] == 0).all() and (r.delta[0, 0, 5:, 0] == 0).all()


def test_region_prior_matching_phase_and_thresh():
    early = region_loss(region_out(), TRUTH, REGION, seen=100).delta[0]
    # seen < 12800: every anchor is pulled, with scale .01, to its own box centred in the cell: tx = .5
    assert early[0, 0, 0, 0] == pytest.approx(.01 * (.5 - .3)) and early[1, 0, 1, 1] == pytest.approx(.002)
    assert early[0, 1, 0, 0] == pytest.approx(0) and early[0, 2, 0, 0] == pytest.approx(0, abs=1e-8)
    assert early[0, 0, 1, 0] == pytest.approx(1.75 * .3)                # the truth's anchor overwrites it
    # anchor 1 at (0, 1) predicts (.15, .75, 1, 1): IoU with the truth .5·.5/(1 + .25 − .25) = .25.
    # Below thresh=.6 it is told "no object" (0 − .2); with thresh=.2 it is left alone.
    assert region_loss(region_out(), TRUTH, REGION, 20000).delta[0, 1, 4, 1, 0] == pytest.approx(-.2)
    loose = RegionSettings(**{**REGION.__dict__, "thresh": .2})
    assert region_loss(region_out(), TRUTH, loose, 20000).delta[0, 1, 4, 1, 0] == 0
    # a truth listed twice gives the same deltas (the second overwrites the first); with x = .6 the box of
    # anchor 0 is (.3, .75, .5, .5): overlap .5 by .35, IoU .175/.325
    out = region_out()
    out[0, 0, 0, 1, 0] = .6
    twice = np.array([[[.3, .6, .5, .5, 1], [.3, .6, .5, .5, 1]]], np.float32)
    d = region_loss(out, twice, REGION, 20000)
    assert d.delta[0, 0, 4, 1, 0] == pytest.approx(5 * (.175 / .325 - .2), rel=1e-5)
    assert d.stats["count"] == 2


# ---------------------------------------------------------------------------------------------- yolo
# 2x2 grid, net 40x40, anchors 10x10 and 20x20 px, this layer owns anchor 1 only (mask=1); all outputs
# x=y=.5, tw=th=0, objectness .3, classes (.6, .4).
YOLO = YoloSettings(classes=2, mask=(1,), anchors=(10, 10, 20, 20), ignore_thresh=.5)


def yolo_out():
    out = np.zeros((1, 1, 7, 2, 2), np.float32)
    out[:, :, 0], out[:, :, 1], out[:, :, 4], out[:, :, 5], out[:, :, 6] = .5, .5, .3, .6, .4
    return out


def test_yolo_deltas_by_hand():
    truth = np.array([[[.3, .3, .5, .5, 0],            # shape IoU: anchor 0 (.25²) .25, anchor 1 (.5²) 1 → mine
                       [.2, .2, .15, .15, 1],          # anchor 0 (.36) beats anchor 1 (.09) → another layer's
                       [.35, .4, .45, .45, 1],         # anchor 1 (.81), same cell (0, 0): overwrites the box
                       [0, 0, 0, 0, 0]]], np.float32)
    r = yolo_loss(yolo_out(), truth, YOLO, 40, 40)
    d = r.delta[0, 0]
    s3 = 2 - .45 * .45
    assert d[0, 0, 0] == pytest.approx(s3 * (.35 * 2 - .5))           # the third truth's box
    assert d[1, 0, 0] == pytest.approx(s3 * (.4 * 2 - .5))
    assert d[2, 0, 0] == pytest.approx(s3 * math.log(.45 * 40 / 20), rel=1e-5)
    assert d[4, 0, 0] == pytest.approx(.7)                               # 1 − .3
    # delta_yolo_class: the first truth set (1 − .6, 0 − .4); the second finds a delta there already and only
    # sets its own class: 1 − .4
    assert d[5:, 0, 0] == pytest.approx([.4, .6])
    # other cells: predicted 20px boxes at (.75,.25), (.25,.75), (.75,.75) overlap no truth by > .5 → 0 − .3
    assert [d[4, 0, 1], d[4, 1, 0], d[4, 1, 1]] == pytest.approx([-.3] * 3)
    cost = 3 * .09 + (s3 * .2) ** 2 + (s3 * .3) ** 2 + 2 * (s3 * math.log(.9)) ** 2 + .49 + .16 + .36
    assert r.cost == pytest.approx(cost, rel=1e-5)
    assert r.stats["count"] == 2
    # IoUs of the two counted truths with the (unchanged) predicted box (.25, .25, .5, .5):
    iou1 = .45 * .45 / (.5 - .45 * .45)
    iou3 = (.5 - .125) * (.5 - .175) / (.25 + .2025 - .375 * .325)
    assert r.stats["avg_iou"] == pytest.approx((iou1 + iou3) / 2, rel=1e-5)
    assert (r.grad == r.delta).all()                                     # no logistic factor for [yolo]


def test_yolo_ignore_thresh_silences_overlapping_predictions():
    truth = np.array([[[.75, .75, .5, .5, 0]]], np.float32)             # cell (1, 1), fits anchor 1
    out = yolo_out()
    r = yolo_loss(out, truth, YOLO, 40, 40).delta[0, 0]
    assert r[4, 1, 1] == pytest.approx(.7) and r[4, 0, 0] == pytest.approx(-.3)
    # a truth only anchor 0 fits (another layer's): cell (1, 1) predicts (.75,.75,.5,.5), IoU with the truth
    # (.75,.75,.3,.3) is .09/.25 = .36; with ignore_thresh .3 it is silenced, with .5 it gets 0 − .3
    small = np.array([[[.75, .75, .3, .3, 0]]], np.float32)
    low = YoloSettings(classes=2, mask=(1,), anchors=(10, 10, 20, 20), ignore_thresh=.3)
    assert yolo_loss(out, small, low, 40, 40).delta[0, 0, 4, 1, 1] == 0
    assert yolo_loss(out, small, YOLO, 40, 40).delta[0, 0, 4, 1, 1] == pytest.approx(-.3)


def test_surrogate_gradient_is_darknets_delta_over_batch():
    """Through the PyTorch graph, ∂L/∂(head input) = −grad/batch for every head (region here)."""
    from tritnet.darknet import parse_cfg_string
    from tritnet.darknet.network import DarknetNet
    from tests.yolo.detector_helpers import REGION_CFG
    text = REGION_CFG.format(max_batches=4, ternary="", random=0, size=64, subdivisions=2)
    net = DarknetNet(parse_cfg_string(text)).train()
    x = torch.rand(2, 3, 64, 64)
    outs = []

    def keep(module, args, out):
        out.retain_grad()
        outs.append(out)
    handle = net.layers[net.head_indices[0] - 1].register_forward_hook(keep)
    pairs = HeadInputs(net)(x)
    handle.remove()
    truth = torch.tensor([[[.5, .5, .3, .3, 1]] + [[0] * 5] * 29] * 2)
    loss_fn = DetectionLoss(net)
    surrogate, cost, stats = loss_fn(pairs, truth, 50000, 64, 64, batch=8)
    surrogate.backward()
    act = pairs[0][1].detach().numpy().reshape(2, 2, 7, 8, 8)
    expected = region_loss(act, truth.numpy(), loss_fn.heads[0][2], 50000)
    np.testing.assert_allclose(outs[0].grad.numpy(), -expected.grad.reshape(2, 14, 8, 8) / 8, atol=1e-7)
    assert cost == pytest.approx(expected.cost)
