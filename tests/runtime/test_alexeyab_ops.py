"""The packed format's AlexeyAB pieces, each on hand-computed values: the channel slice (AlexeyAB's route
groups/group_id), the yolo head's scale_x_y and new_coords decoding, the NMS kinds (greedynms, diounms with
beta_nms) of AlexeyAB's detector test, and the stretch-resize preprocess. Every file goes through
encode/decode, so the reader's op table checks the new op and attributes."""
import math

import numpy as np
import pytest

from tritnet_rt import _tnrt
from tritnet_rt.detect import from_uint8
from tritnet_rt.format import FormatError, PackedModel, decode_packed, encode_packed
from tritnet_rt.heads import activate, detect
from tritnet_rt.net import Net

F = np.float32


def _roundtrip(pm):
    return decode_packed(encode_packed(pm), "t.tnp")


def _graph(shape, nodes, outputs, **model):
    return PackedModel({"input": {"shape": list(shape)}, **model}, {"kind": "graph"},
                       {"inputs": ["input"], "outputs": outputs, "nodes": nodes})


def _node(name, op, inputs, **attrs):
    return {"name": name, "op": op, "inputs": inputs, "attrs": attrs, "tensors": {}}


# ---------------------------------------------------------------------------------------------- channel slice
def test_slice_takes_a_channel_range_and_routes_concatenate_them():
    """route groups=2 group_id=1 of a 6-channel map is channels 3..5; of two sources, each one's half in order."""
    x = np.arange(2 * 6 * 2 * 3, dtype=F).reshape(2, 6, 2, 3)           # batch 2, C=6, 2x3
    pm = _roundtrip(_graph((6, 2, 3), [
        _node("half", "slice", ["input"], start=3, channels=3),
        _node("mid", "slice", ["input"], start=1, channels=2),
        _node("both", "concat", ["half", "mid"])], ["half", "both"]))
    half, both = Net(pm)(x)
    assert half.shape == (2, 3, 2, 3) and np.array_equal(half, x[:, 3:6])
    assert np.array_equal(both, np.concatenate([x[:, 3:6], x[:, 1:3]], 1))
    assert both[1, 3, 1, 2].item() == 36 + 1 * 6 + 1 * 3 + 2           # image 1, input channel 1, row 1, col 2


def test_a_slice_outside_its_input_is_refused_by_the_reader_and_by_c():
    pm = _graph((6, 2, 3), [_node("s", "slice", ["input"], start=4, channels=3)], ["s"])
    with pytest.raises(FormatError, match=r"t.tnp: node 0 \('s'\): channels \[4, 7\) are not inside the input's 6"):
        _roundtrip(pm)
    x, out = np.zeros((1, 2, 3, 6), F), np.zeros((1, 2, 3, 3), F)

    def op(**f):
        return [("slice", {**dict(batch=1, pixels=6, channels=6, start=3, out_channels=3), **f}, (), dict(x=x, out=out))]
    _tnrt.Plan(op())                                                     # fits
    with pytest.raises(ValueError, match=r"op 0 \(slice\): fields fail"):
        _tnrt.Plan(op(start=4))                                          # reads channel 6 of 6
    with pytest.raises(ValueError, match=r"op 0 \(slice\): buffer out holds 72 bytes, needs 96"):
        _tnrt.Plan(op(start=0, out_channels=4))                          # 4 channels into a 3-channel buffer
    with pytest.raises(ValueError, match=r"op 0 \(slice\): buffer x holds 144 bytes, needs 288"):
        _tnrt.Plan(op(batch=2, out_channels=1))                          # a batch of 2 over buffers for 1


# ---------------------------------------------------------------------------------------------- yolo decoding
def _yolo(shape, **attrs):
    c, h, w = shape
    a = dict(num=2, classes=1, mask=[1], anchors=[10.0, 10.0, 20.0, 40.0], shape=list(shape), **attrs)
    pm = _roundtrip(_graph(shape, [_node("y", "yolo", ["input"], **a)], ["y"], dialect="alexeyab"))
    return pm.graph["nodes"][0]


def test_scale_x_y_maps_x_y_about_the_cell_centre():
    """x = (col + 1.05·σ(t) − 0.025)/W: t = ln 3 gives σ = .75 and .7625; t = −ln 3 gives .25 and .2375."""
    node = _yolo((6, 1, 4), scale_x_y=1.05)
    raw = np.zeros((6, 1, 4), F)
    raw[0, 0, 2], raw[1, 0, 2] = math.log(3), -math.log(3)              # x, y at column 2
    raw[2, 0, 2], raw[3, 0, 2] = math.log(2), 0.0                       # w = 2·20/net_w, h = 1·40/net_h
    raw[4, 0, 2] = raw[5, 0, 2] = 10.0                                  # objectness and class ≈ 1
    y = activate(node, raw)
    assert y[0, 0, 0, 2] == pytest.approx(.7625, abs=1e-6) and y[0, 1, 0, 2] == pytest.approx(.2375, abs=1e-6)
    assert y[0, 0, 0, 0] == pytest.approx(1.05 * .5 - .025, abs=1e-7)  # t = 0: the centre stays
    dets = detect([node], [raw], 80, 40, 80, 40, thresh=.5, nms=.45, dialect="alexeyab", letter=False)
    assert len(dets) == 1
    d = dets[0]
    assert d.x == pytest.approx((2 + .7625) / 4, abs=1e-6) and d.y == pytest.approx(.2375, abs=1e-6)
    assert d.w == pytest.approx(2 * 20 / 80, rel=1e-6) and d.h == pytest.approx(40 / 40, rel=1e-6)
    assert (d.left, d.top, d.right, d.bottom) == (int((.690625 - .25) * 80), 0, int((.690625 + .25) * 80), int((.2375 + .5) * 40))


def test_new_coords_takes_the_conv_logistic_as_is_and_squares_w_h():
    """new_coords: no logistic in the head; x = (col + e0)/W, w = (2·e2)²·anchor_w/net_w, prob = e4·e5."""
    node = _yolo((6, 2, 2), new_coords=True)
    raw = np.full((6, 2, 2), .1, F)
    raw[:, 1, 0] = [.25, .5, .3, .75, .9, .8]                            # row 1, column 0
    y = activate(node, raw)
    assert np.array_equal(y.reshape(-1), raw.reshape(-1))                # no activation at all
    dets = detect([node], [raw], 100, 50, 100, 50, thresh=.5, nms=.45, dialect="alexeyab", letter=False)
    assert len(dets) == 1
    d = dets[0]
    assert (d.x, d.y) == (F(.25 / 2), F(1.5 / 2))
    assert d.w == pytest.approx(.6 * .6 * 20 / 100, rel=1e-6) and d.h == pytest.approx(1.5 * 1.5 * 40 / 50, rel=1e-6)
    assert d.prob == pytest.approx(.72, rel=1e-6) and d.objectness == pytest.approx(.9, rel=1e-6)
    with pytest.raises(ValueError, match="new_coords yolo heads are AlexeyAB's"):
        detect([node], [raw], 100, 50, 100, 50, thresh=.5, nms=.45)     # pjreddie's decoding would be wrong


# ---------------------------------------------------------------------------------------------- NMS kinds
# Two boxes of one class, 0.2 x 0.2 with centres 0.1 apart (x .5 and .6): IoU = .02/.06 = 1/3; the enclosing box is
# .3 x .2, so d²/c² = .01/.13 = .0769. At NMS threshold .3:
#   default (IoU 1/3 > .3)                               suppresses the weaker box
#   greedynms: DIoU = 1/3 − .0769^0.6 = 1/3 − .2146 = .119  keeps it
#   diounms, beta_nms 1: 1/3 − .0769 = .256                 keeps it
#   diounms, beta_nms 3: 1/3 − .0769³ = .3329 > .3          suppresses it
@pytest.mark.parametrize("kind,beta,kept", [("default", .6, False), ("greedynms", .6, True), ("diounms", 1.0, True),
                                            ("diounms", 3.0, False)])
def test_nms_kind_of_the_last_head_decides(kind, beta, kept):
    node = _yolo((6, 1, 10), new_coords=True, nms_kind=kind, beta_nms=beta)
    node["attrs"]["anchors"] = [10.0, 10.0, 20.0, 20.0]                   # anchor 1: 20 x 20 px
    raw = np.zeros((6, 1, 10), F)
    raw[:, 0, 5] = [0, .5, .5, .5, .9, 1]                                # x = .5, y = .5, w = h = (2·.5)²·20/100
    raw[:, 0, 6] = [0, .5, .5, .5, .8, 1]                                # x = .6
    dets = detect([node], [raw], 100, 100, 100, 100, thresh=.5, nms=.3, dialect="alexeyab", letter=False)
    assert [(d.index, round(d.prob, 6)) for d in dets] == [(0, .9)] + [(1, .8)] * kept
    assert dets[0].w == pytest.approx(.2) and dets[0].x == pytest.approx(.5)


def test_the_nms_kind_and_beta_are_checked_by_the_reader():
    with pytest.raises(FormatError, match=r"attrs.nms_kind = 'soft' is not one of default, greedynms, diounms"):
        _yolo((6, 1, 1), nms_kind="soft")
    with pytest.raises(FormatError, match=r"attrs.new_coords must be true or false"):
        _yolo((6, 1, 1), new_coords=1)
    with pytest.raises(FormatError, match=r"model.dialect = 'darknet' is not one of pjreddie, alexeyab"):
        _roundtrip(_graph((3, 2, 2), [_node("i", "identity", ["input"])], ["i"], dialect="darknet"))


# ---------------------------------------------------------------------------------------------- resize preprocess
def test_resize_preprocess_stretches_as_darknets_resize_image():
    """4x2 image → 2x2 network input: darknet's resize_image with scale (4−1)/(2−1) = 3 takes columns 0 and 3
    (the last output column copies the last input column), rows as they are; values u8/255."""
    u8 = np.zeros((2, 4, 3), np.uint8)
    u8[..., 0] = [[0, 10, 20, 30], [40, 50, 60, 70]]
    pm = _roundtrip(_graph((3, 2, 2), [_node("i", "identity", ["input"])], ["i"]))
    pm.model["input"]["preprocess"] = "resize"
    x, im_w, im_h = Net(_roundtrip(pm)).preprocess(u8)
    assert (im_w, im_h) == (4, 2)
    assert np.allclose(x[0, 0], np.array([[0, 30], [40, 70]]) / 255, rtol=1e-7, atol=0)
    assert np.array_equal(x[0, 1:], np.zeros((2, 2, 2), F))
    assert np.array_equal(from_uint8(u8)[:, :, [0, 3]], x[0])            # bit for bit the u8/255 floats


# ---------------------------------------------------------------------------------------------- AlexeyAB's shortcut
# Input channel ch of pixel p holds ch + 10·p; prev = channels 0-2, from_1 = channels 3-4 (2 channels: adds to the
# first 2), from_2 = channels 5-8 (4 channels: its first 3 are added). Pixel 0: prev (0, 1, 2), from_1 (3, 4),
# from_2 (5, 6, 7, 8). Weights per input and channel (rows prev, from_1, from_2):
#   (1, 2, 3), (.5, .5, .5), (10, 20, 30) → 1·0 + .5·3 + 10·5 = 51.5, 2·1 + .5·4 + 20·6 = 124, 3·2 + 30·7 = 216
#   none → 0 + 3 + 5 = 8, 1 + 4 + 6 = 11, 2 + 7 = 9
@pytest.mark.parametrize("weights,want", [(None, [8, 11, 9]), ([[1, 2, 3], [.5, .5, .5], [10, 20, 30]], [51.5, 124, 216])])
def test_shortcut_of_several_sources_with_per_channel_weights(weights, want):
    x = (np.arange(9, dtype=F)[:, None, None] + 10 * np.arange(2, dtype=F)[None, None, :])[None]     # (1, 9, 1, 2)
    pm = _graph((9, 1, 2), [_node("prev", "slice", ["input"], start=0, channels=3),
                            _node("f1", "slice", ["input"], start=3, channels=2),
                            _node("f2", "slice", ["input"], start=5, channels=4),
                            _node("s", "shortcut", ["prev", "f1", "f2"], activation="linear")], ["s"])
    if weights is not None:
        pm.graph["nodes"][-1]["tensors"]["weights"] = pm.add("w", np.array(weights, F), "f32")
    y = Net(_roundtrip(pm))(x)[0]
    assert y[0, :, 0, 0].tolist() == want
    p1 = x[0, :, 0, 1]                                                  # pixel 1: every value + 10
    w = np.ones((3, 3)) if weights is None else np.array(weights)
    assert np.allclose(y[0, :, 0, 1], w[0] * p1[0:3] + np.r_[w[1, :2] * p1[3:5], 0] + w[2] * p1[5:8], rtol=1e-6)


def test_shortcut_refusals():
    pm = _graph((9, 1, 2), [_node("a", "slice", ["input"], start=0, channels=3),
                            _node("s", "shortcut", ["a", "input"], activation="linear")], ["s"])
    pm.graph["nodes"][-1]["tensors"]["weights"] = pm.add("w", np.ones((2, 9), F), "f32")
    with pytest.raises(FormatError, match=r"tensor weights \('w'\) has shape \(2, 9\), want \(2, 3\)"):
        _roundtrip(pm)
    x, w, o = np.zeros((1, 2, 3), F), np.ones((2, 3), F), np.zeros((1, 2, 3), F)

    def op(**f):
        fields = dict(batch=1, pixels=2, channels=3, inputs=1, activation=0, weighted=1, input_channels=[3])
        return [("shortcut", {**fields, **f}, (), dict(out=o, x=x, weights=w, in0=x))]
    _tnrt.Plan(op())
    with pytest.raises(ValueError, match=r"op 0 \(shortcut\): buffer in0 holds 24 bytes, needs 32"):
        _tnrt.Plan(op(input_channels=[4]))
    with pytest.raises(ValueError, match=r"op 0 \(shortcut\): buffer weights holds 24 bytes, needs 36"):
        _tnrt.Plan([("shortcut", {**op()[0][1], "inputs": 2, "input_channels": [3, 3]}, (),
                     dict(out=o, x=x, weights=w, in0=x, in1=x))])            # 3 inputs need 3 rows of weights


SHORTCUT_CFG = """
[net]
width=4
height=4
channels=3

[convolutional]
filters=6
size=1
activation=linear

[convolutional]
filters=2
size=1
activation=linear

[convolutional]
filters=6
size=1
activation=linear

[shortcut]
from=-2,-3
weights_type=per_feature
weights_normalization=relu
activation=linear

[yolo]
mask=0
anchors=10,10
classes=1
num=1
"""


def test_an_alexeyab_weighted_shortcut_exports_with_its_inference_weights():
    """per_feature weights (.5, −1, 2) under relu normalisation at inference (AlexeyAB's fuse: max(w, .001)):
    w_i = max(w_i, .001) / (.0001 + .5 + .001 + 2) = (.19984, .00040, .79936); out = w0·prev + w1·L1 + w2·L0, L1 (2
    channels) adding to the first 2 of 6."""
    import torch
    from tritnet.darknet import build_darknet, parse_cfg_string
    from tritnet.export import to_packed
    torch.manual_seed(0)
    net = build_darknet(parse_cfg_string(SHORTCUT_CFG, "s.cfg", dialect="alexeyab"), None, method=None)
    with torch.no_grad():
        net.layers[3].weight.copy_(torch.tensor([.5, -1, 2]))
    pm = to_packed(net)
    assert [n["op"] for n in pm.graph["nodes"]] == ["conv", "conv", "conv", "shortcut", "yolo"]
    x = torch.rand(1, 3, 4, 4)
    with torch.no_grad():
        l0, l1, l2 = (o.numpy()[0] for o in net.forward_all(x)[:3])
    s = .0001 + .5 + .001 + 2
    want = .5 / s * l2 + 2 / s * l0
    want[:2] += .001 / s * l1
    got = Net(_roundtrip(pm))(x.numpy())[0][0]
    assert np.allclose(got, want, rtol=1e-5, atol=1e-6)
