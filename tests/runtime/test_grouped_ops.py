"""The packed format's pieces for darknetTWN's efficientnet_b0 (and AlexeyAB's grouped convs), on hand-computed
values: grouped and depthwise convs (the serial reference kernel and the AVX2 one give the same bits), swish and
mish in the conv epilogue (every ISA's) and as elementwise ops, and [scale_channels]. Every file goes through
encode/decode, so the reader's op table checks the new attributes, and the C side refuses what does not fit."""
import math

import numpy as np
import pytest

import tritnet_rt
from tritnet_rt import _tnrt
from tritnet_rt.format import FormatError, PackedModel, decode_packed, encode_packed
from tritnet_rt.net import Net

F = np.float32


def _roundtrip(pm):
    return decode_packed(encode_packed(pm), "t.tnp")


def _conv_model(shape, codes, scale, bias, ternary=True, **attrs):
    """input (C, H, W) → one conv; ``codes`` (N, C/groups, kh, kw)."""
    n, cg, kh, kw = codes.shape
    pm = PackedModel({"input": {"shape": list(shape)}}, {"kind": "graph"},
                     {"inputs": ["input"], "outputs": ["c"], "nodes": []})
    t = {"weight": pm.add("w", codes.astype(np.int8) if ternary else codes.astype(F), "tern2" if ternary else "f32"),
         "bias": pm.add("b", np.asarray(bias, F), "f32")}
    if ternary:
        t["scale"] = pm.add("s", np.asarray(scale, F), "f32")
    a = {"in_channels": shape[0], "out_channels": n, "kernel": [kh, kw], "stride": 1, "pad": [kh // 2, kw // 2] * 2,
         "activation": "linear", **attrs}
    pm.graph["nodes"] = [{"name": "c", "op": "conv", "inputs": ["input"], "attrs": a, "tensors": t}]
    return _roundtrip(pm)


def _isas():
    return [i for i in ("serial", "avx2") if i in tritnet_rt.capabilities()["supported"]]


@pytest.fixture
def restore_isa():
    isa = tritnet_rt.get_isa()
    yield
    tritnet_rt.set_isa(isa)


def _run_each_isa(pm, x):
    outs = []
    for isa in _isas():
        tritnet_rt.set_isa(isa)
        outs.append(Net(pm)(x)[0])
    for o in outs[1:]:
        assert np.array_equal(o, outs[0])                # the SIMD kernel gives the serial kernel's bits
    return outs[0]


# ---------------------------------------------------------------------------------------------- grouped convs
def test_depthwise_conv_by_hand(restore_isa):
    """3x3 depthwise, pad 1: channel c sees only input channel c. 9 channels (8 a vector step, 1 left over)."""
    c = 9
    x = np.arange(c * 3 * 3, dtype=F).reshape(1, c, 3, 3) / 10
    codes = np.zeros((c, 1, 3, 3), np.int8)
    codes[:, 0, 1, 1] = 1                                  # the centre tap
    codes[:, 0, 0, 0] = -1                                 # minus the upper-left neighbour
    scale, bias = np.arange(1, c + 1, dtype=F), np.full(c, .5, F)
    y = _run_each_isa(_conv_model((c, 3, 3), codes, scale, bias, groups=c), x)
    assert y.shape == (1, c, 3, 3)
    for ch in (0, 4, 8):
        s, img = scale[ch], x[0, ch]
        assert y[0, ch, 0, 0] == pytest.approx(s * img[0, 0] + .5)                 # the neighbour is padding
        assert y[0, ch, 1, 1] == pytest.approx(s * (img[1, 1] - img[0, 0]) + .5)
        assert y[0, ch, 2, 2] == pytest.approx(s * (img[2, 2] - img[1, 1]) + .5)


def test_grouped_conv_by_hand(restore_isa):
    """groups=2, 4 input and 6 output channels: outputs 0-2 read inputs 0-1, outputs 3-5 inputs 2-3 (1x1 kernel)."""
    x = np.array([1, 2, 3, 4], F).reshape(1, 4, 1, 1) * np.ones((1, 1, 2, 2), F)
    codes = np.array([[1, 0], [0, 1], [1, -1], [1, 0], [0, 1], [-1, -1]], np.int8).reshape(6, 2, 1, 1)
    y = _run_each_isa(_conv_model((4, 2, 2), codes, np.ones(6, F), np.zeros(6, F), groups=2), x)
    assert y[0, :, 0, 0].tolist() == [1, 2, 1 - 2, 3, 4, -3 - 4]
    assert np.array_equal(y[0, :, 1, 1], y[0, :, 0, 0])


def test_float_depthwise_conv_with_stride_and_swish(restore_isa):
    """A float depthwise 3x3 conv, stride 2, pad 1 over 4x4: output (0, 0) sums taps (0..1, 0..1); then swish."""
    x = np.ones((1, 2, 4, 4), F)
    w = np.full((2, 1, 3, 3), .25, F)
    pm = _conv_model((2, 4, 4), w, None, np.array([0, -1], F), ternary=False, groups=2, activation="swish")
    pm.graph["nodes"][0]["attrs"]["stride"] = 2
    pm = _roundtrip(pm)
    y = _run_each_isa(pm, x)
    assert y.shape == (1, 2, 2, 2)
    sw = lambda v: v / (1 + math.exp(-v))                  # noqa: E731
    assert y[0, 0, 0, 0] == pytest.approx(sw(4 * .25), rel=1e-6)      # corner: 4 taps inside the input
    assert y[0, 0, 1, 1] == pytest.approx(sw(9 * .25), rel=1e-6)      # (1, 1): taps rows/cols 1..3, all inside
    assert y[0, 1, 0, 1] == pytest.approx(sw(6 * .25 - 1), rel=1e-6)  # (0, 1): rows 0..1, cols 1..3


def test_grouped_conv_refusals():
    codes = np.ones((4, 2, 3, 3), np.int8)
    with pytest.raises(FormatError, match=r"3 groups do not divide 4 input and 4 output channels"):
        _conv_model((4, 5, 5), codes, np.ones(4, F), np.zeros(4, F), groups=3)
    with pytest.raises(FormatError, match=r"tensor weight \('w'\) has shape \(4, 2, 3, 3\), want \(4, 1, 3, 3\)"):
        _conv_model((4, 5, 5), codes, np.ones(4, F), np.zeros(4, F), groups=4)
    with pytest.raises(FormatError, match=r"attrs.groups = 0 is outside"):
        _conv_model((4, 5, 5), codes, np.ones(4, F), np.zeros(4, F), groups=0)
    x, w, s, out = (np.zeros((1, 4, 4, 4), F), np.zeros((3, 3, 1, 4), F), np.ones(4, F), np.zeros((1, 4, 4, 4), F))

    def op(**f):
        fields = dict(batch=1, height=4, width=4, channels=4, out_height=4, out_width=4, out_channels=4, kernel_h=3,
                      kernel_w=3, stride=1, pad_top=1, pad_left=1, groups=4, activation=0)
        return [("conv_grouped", {**fields, **f}, (), dict(x=x, weights=w, scale=s, bias=s, out=out))]
    _tnrt.Plan(op())
    with pytest.raises(ValueError, match=r"op 0 \(conv_grouped\): fields fail"):
        _tnrt.Plan(op(groups=3))
    with pytest.raises(ValueError, match=r"op 0 \(conv_grouped\): buffer weights holds 144 bytes, needs 288"):
        _tnrt.Plan(op(groups=2))                          # 2 input channels a group: twice the weights
    with pytest.raises(ValueError, match=r"op 0 \(conv_grouped\): buffer out holds 256 bytes, needs 1296"):
        _tnrt.Plan(op(out_height=9, out_width=9))         # the kernel clips its taps, but writes every output
    with pytest.raises(ValueError, match=r"op 0 \(conv_grouped\): fields fail"):
        _tnrt.Plan(op(activation=3))                      # prelu has no tensor here


# ---------------------------------------------------------------------------------------------- activations
SWISH = {1.0: 0.7310585786, -1.0: -0.2689414214, -2.0: -0.2384058440, 0.0: 0.0}      # x / (1 + e^−x)
MISH = {1.0: 0.8650983883, -1.0: -0.3034014613, -2.0: -0.2525014953, 0.0: 0.0}      # x·tanh(ln(1 + e^x))


@pytest.mark.parametrize("act,table", [("swish", SWISH), ("mish", MISH)])
def test_swish_and_mish_in_the_conv_epilogue_of_every_isa(act, table, restore_isa):
    """A ternary 1x1 conv (int8 path) whose 16 outputs copy the inputs −2, −1, 0, 1 (exact in int8: 255 steps of
    3/255): each ISA's epilogue applies the activation (the SIMD ones hand swish and mish to the scalar one)."""
    xs = [-2.0, -1.0, 0.0, 1.0]
    x = np.array(xs, F).reshape(1, 4, 1, 1)
    codes = np.zeros((16, 4, 1, 1), np.int8)
    codes[np.arange(16), np.arange(16) % 4] = 1
    pm = _conv_model((4, 1, 1), codes, np.ones(16, F), np.zeros(16, F), activation=act)
    for isa in tritnet_rt.capabilities()["supported"]:
        tritnet_rt.set_isa(isa)
        y = Net(pm)(x)[0].reshape(-1)
        assert np.allclose(y, [table[xs[n % 4]] for n in range(16)], rtol=1e-5, atol=1e-6), isa


@pytest.mark.parametrize("act,table", [("swish", SWISH), ("mish", MISH)])
def test_swish_and_mish_as_elementwise_ops(act, table):
    x = np.array([1, -1, -2, 0, 30, -30], F).reshape(1, 6, 1, 1)
    pm = PackedModel({"input": {"shape": [6, 1, 1]}}, {"kind": "graph"},
                     {"inputs": ["input"], "outputs": ["a"],
                      "nodes": [{"name": "a", "op": "act", "inputs": ["input"], "attrs": {"activation": act},
                                 "tensors": {}}]})
    y = Net(_roundtrip(pm))(x)[0].reshape(-1)
    assert np.allclose(y[:4], [table[v] for v in (1.0, -1.0, -2.0, 0.0)], rtol=1e-6, atol=1e-7)
    assert y[4] == pytest.approx(30, rel=1e-6)            # both ≈ x for large x (mish: softplus threshold 20)
    assert abs(y[5]) < 1e-11


# ---------------------------------------------------------------------------------------------- scale_channels
def test_scale_channels_multiplies_each_channel_by_its_scale():
    """[scale_channels] from=map after a 1x1xC vector: out[c, y, x] = act(map[c, y, x] · s[c])."""
    x = np.arange(3 * 2 * 2, dtype=F).reshape(1, 3, 2, 2) - 5
    pm = PackedModel({"input": {"shape": [3, 2, 2]}}, {"kind": "graph"}, {"inputs": ["input"], "outputs": ["s"], "nodes": [
        {"name": "v", "op": "avgpool", "inputs": ["input"], "attrs": {}, "tensors": {}},
        {"name": "s", "op": "scale_channels", "inputs": ["input", "v"], "attrs": {"activation": "leaky"},
         "tensors": {}}]})
    y = Net(_roundtrip(pm))(x)[0]
    means = x[0].mean((1, 2))                              # -3.5, 0.5, 4.5
    assert means.tolist() == [-3.5, .5, 4.5]
    want = x[0] * means[:, None, None]
    assert np.allclose(y[0], np.where(want > 0, want, .1 * want), rtol=1e-6)
    assert y[0, 0, 0, 0] == pytest.approx(17.5) and y[0, 1, 0, 0] == pytest.approx(-.05)      # (−1 · .5)·0.1


def test_scale_channels_refusals():
    pm = PackedModel({"input": {"shape": [3, 2, 2]}}, {"kind": "graph"}, {"inputs": ["input"], "outputs": ["s"], "nodes": [
        {"name": "s", "op": "scale_channels", "inputs": ["input", "input"], "attrs": {"activation": "linear"},
         "tensors": {}}]})
    with pytest.raises(FormatError, match=r"scales of shape \(3, 2, 2\) for a \(3, 2, 2\) map \(want \(3, 1, 1\)\)"):
        _roundtrip(pm)
    x, s = np.zeros((1, 2, 2, 3), F), np.zeros(2, F)
    with pytest.raises(ValueError, match=r"op 0 \(scale_channels\): buffer scale holds 8 bytes, needs 12"):
        _tnrt.Plan([("scale_channels", dict(batch=1, pixels=4, channels=3, activation=0), (), dict(x=x, scale=s, out=x))])
