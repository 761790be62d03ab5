"""AlexeyAB's detector test after the network, hand-computed cases: new_coords boxes, the box correction with and
without letterbox, DIoU and DIoU-NMS (greedynms, diounms with beta_nms), draw_detections_v3's order, -ext_output."""
import math

import numpy as np
import pytest

from tritnet.darknet import detect_alexeyab as aab
from tritnet.darknet import infer_layers, parse_cfg_string
from tritnet_rt.detect import Candidates, Detection, correct_boxes, do_nms_sort

F = np.float32


def _yolo_info(new_coords):
    cfg = parse_cfg_string("[net]\nwidth=64\nheight=32\nchannels=12\n[yolo]\nclasses=1\nnum=2\nmask=1,0\n"
                           f"anchors=8,4,16,8\nnew_coords={new_coords}\n", dialect="alexeyab")
    return infer_layers(cfg)[0]


@pytest.mark.parametrize("new_coords", [0, 1])
def test_yolo_boxes_with_and_without_new_coords(new_coords):
    """x = (col + e0)/W; w = exp(e2)·anchor/net_w, or with new_coords (2·e2)²·anchor/net_w; letter=0: no change."""
    info = _yolo_info(new_coords)
    out = np.zeros((2, 6, 32, 64), F)
    out[:, 4] = .1                                            # objectness below the threshold everywhere...
    out[0, :, 3, 5] = [.25, .5, .5, .25, .9, .8]            # ...but here: anchor mask[0] = 1 (16x8 px)
    cands = aab.get_network_boxes([(info, out)], 640, 480, 64, 32, .5, letter=False)
    assert len(cands) == 1 and cands.objectness[0] == F(.9) and cands.prob[0, 0] == F(.9) * F(.8)
    x, y, w, h = cands.boxes[0]
    assert (x, y) == (F((5 + .25) / 64), F((3 + .5) / 32))
    if new_coords:
        assert (w, h) == (F(.5 * .5 * 4 * 16 / 64), F(.25 * .25 * 4 * 8 / 32))
    else:
        assert w == F(math.exp(.5) * 16 / 64) and h == F(math.exp(.25) * 8 / 32)


def test_correct_yolo_boxes_letterbox_or_not():
    boxes = np.array([[.5, .3, .2, .4], [.1, .9, .05, .5]], F)
    assert np.array_equal(aab.correct_yolo_boxes(boxes, 640, 480, 416, 416, letter=False), boxes)
    mine = aab.correct_yolo_boxes(boxes, 640, 480, 416, 416, letter=True)
    assert np.allclose(mine, correct_boxes(boxes, 640, 480, 416, 416), rtol=2e-7, atol=0)   # pjreddie's, ±1 ulp
    assert mine[0, 1] == F((float(F(.3)) - (416 - 312) / 2. / 416) / float(F(312) / F(416)))   # double, as C


def _diou64(a, b, beta):
    def edges(r):
        return r[0] - r[2] / 2, r[0] + r[2] / 2, r[1] - r[3] / 2, r[1] + r[3] / 2
    (al, ar, at, ab_), (bl, br, bt, bb) = edges(a), edges(b)
    inter = max(0, min(ar, br) - max(al, bl)) * max(0, min(ab_, bb) - max(at, bt))
    iou = inter / (a[2] * a[3] + b[2] * b[3] - inter)
    c = (max(ar, br) - min(al, bl)) ** 2 + (max(ab_, bb) - min(at, bt)) ** 2
    d = (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2
    return iou - (d / c) ** beta


def test_box_diou_is_iou_minus_the_centre_distance_term():
    a = np.array([.5, .5, .2, .2], F)
    b = np.array([[.6, .5, .2, .2], [.5, .5, .2, .2], [.9, .9, .1, .1]], F)
    got = aab.box_diou(a, b)
    assert got[0] == pytest.approx(1 / 3 - (.01 / .13) ** .6, abs=1e-6)
    assert got[1] == pytest.approx(1.0, abs=1e-6)                        # same box: d = 0
    assert got[2] == pytest.approx(_diou64(a, b[2], .6), abs=1e-6)       # disjoint: IoU 0, minus the term
    assert aab.box_diou(a, b[:1], beta=1.0)[0] == pytest.approx(1 / 3 - .01 / .13, abs=1e-6)


def _two_boxes():
    """B overlaps A with IoU .5385 (> .45) but DIoU .408 (< .45) at exponent 0.6, .505 at exponent 1."""
    boxes = np.array([[.5, .5, .4, .4], [.62, .5, .4, .4]], F)
    return Candidates(boxes, np.array([.9, .8], F), np.array([[.9], [.7]], F))


def test_greedynms_suppresses_by_diou_and_diounms_by_its_beta():
    c = _two_boxes()
    assert _diou64(c.boxes[0], c.boxes[1], .6) == pytest.approx(.408, abs=1e-3)
    assert do_nms_sort(c, .45).prob[:, 0].tolist() == [F(.9), 0]              # IoU .54 > .45: suppressed
    assert aab.nms_alexeyab(c, .45, "default").prob[:, 0].tolist() == [F(.9), 0]
    assert aab.nms_alexeyab(c, .45, "greedynms", .6).prob[:, 0].tolist() == [F(.9), F(.7)]   # DIoU .41: kept
    assert aab.nms_alexeyab(c, .45, "diounms", .6).prob[:, 0].tolist() == [F(.9), F(.7)]
    assert aab.nms_alexeyab(c, .45, "diounms", 1.0).prob[:, 0].tolist() == [F(.9), 0]     # .505 > .45
    # the lower box first in the array: the sort puts A first all the same, and zero objectness goes last
    rev = Candidates(c.boxes[::-1].copy(), np.array([.8, 0], F), c.prob[::-1].copy())
    out = aab.diounms_sort(rev, .45, "greedynms", .6)
    assert out.index.tolist() == [0, 1] and out.prob[:, 0].tolist() == [F(.7), F(.9)]


def test_draw_detections_v3_order_and_ext_output():
    """Candidates with a class above the threshold, sorted by left edge (stable), best class first, then the
    other classes above it in index order; the -ext_output box is rounded half away from zero, not clamped."""
    boxes = np.array([[.5, .5, .2, .2], [.3, .5, .2, .2], [.5, .5, .2, .2], [0, .5, 1 / 128, .2]], F)
    prob = np.array([[.3, .6, .5], [0, .2, 0], [.7, 0, 0], [.4, 0, .4]], F)
    c = Candidates(boxes, np.ones(4, F), prob)
    dets = aab.select_detections_v3(c, .25, 640, 480, ["a", "b", "c"])
    assert [(d.index, d.class_id) for d in dets] == [(3, 0), (3, 2), (0, 1), (0, 0), (0, 2), (2, 0)]
    line = aab.format_detection_v3(dets[0], 640, 480)
    assert line == "a: 40%\t(left_x:   -3   top_y:  192   width:    5   height:   96)"   # -2.5 → -3, 4.999 → 5
    assert (dets[0].left, dets[0].right) == (0, 2)          # the drawn box: (int) and clamped
    d = Detection(0, 0, "x", .5, 1., .5, .5, .25, .5, 0, 0, 0, 0)
    assert aab.format_detection_v3(d, 640, 480) == "x: 50%\t(left_x:  240   top_y:  120   width:  160   height:  240)"
