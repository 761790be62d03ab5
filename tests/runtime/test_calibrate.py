"""Static int8 input scales (tritnet_rt.calibrate): the recorded ranges, the rule, the file, the refusals."""
import numpy as np
import pytest

from tritnet_rt.calibrate import calibrate, input_ranges, quant_params
from tritnet_rt.format import VERSION, FormatError, decode_packed, encode_packed
from tritnet_rt.net import Net
from tests.runtime.test_kernels import conv_model


def two_convs(rng):
    """conv y (3 -> 8, relu) then conv z (8 -> 4) reading y."""
    pm, _ = conv_model(rng, 3, 8, 6, 6, act="relu")
    codes = rng.integers(-1, 2, (4, 8, 1, 1)).astype(np.int8)
    t = {"weight": pm.add("w2", codes, "tern2"), "scale": pm.add("s2", np.ones(4, np.float32), "f32"),
         "bias": pm.add("b2", np.zeros(4, np.float32), "f32")}
    pm.graph["nodes"].append({"name": "z", "op": "conv", "inputs": ["y"], "attrs": {
        "in_channels": 8, "out_channels": 4, "kernel": [1, 1], "stride": 1, "pad": [0] * 4, "activation": "linear"},
        "tensors": t})
    pm.graph["outputs"] = ["z"]
    return pm


def test_quant_params_follow_the_dynamic_rule():
    # [-1, 3]: scale 4/255, zero point rint(1 / (4/255)) = rint(63.75) = 64
    assert quant_params(-1.0, 3.0) == (pytest.approx(4 / 255, rel=1e-7), 64)
    assert quant_params(0.0, 1.0) == (pytest.approx(1 / 255, rel=1e-7), 0)      # an image in [0, 1]: u8 exactly
    assert quant_params(0.0, 0.0) == (1.0, 0)                                    # an all-zero input: scale 1


def test_ranges_are_each_images_and_the_scale_their_percentiles():
    rng = np.random.default_rng(0)
    pm = two_convs(rng)
    # image i (from 1): values in [-i / 10, i] with both ends present
    x = rng.uniform(-0.1, 1, (100, 3, 6, 6)).astype(np.float32) * np.arange(1, 101, dtype=np.float32)[:, None, None, None]
    x[:, 0, 0, 0] = -np.arange(1, 101) / 10
    x[:, 0, 0, 1] = np.arange(1, 101)
    lo, hi = input_ranges(pm, x, batch=7)["y"]
    np.testing.assert_allclose(lo, -np.arange(1, 101) / 10, rtol=1e-6)
    np.testing.assert_allclose(hi, np.arange(1, 101), rtol=1e-6)
    q = {n["name"]: n["attrs"]["input_quant"] for n in calibrate(pm, x).graph["nodes"]}
    # 99th percentile of 1..100 (linear): 1 + .99·99 = 99.01; 1st of -10..-0.1: -10 + .99·0.1 = -9.901
    scale, zp = quant_params(-9.901, 99.01)
    assert q["y"] == {"scale": pytest.approx(scale, rel=1e-6), "zero_point": zp} and zp == 23
    assert q["z"]["zero_point"] == 0            # z reads relu outputs: nothing below 0
    assert "input_quant" not in pm.graph["nodes"][0]["attrs"]          # the model given is left as it was


def test_a_calibrated_net_runs_on_its_fixed_scale_and_the_file_keeps_it():
    rng = np.random.default_rng(1)
    pm = two_convs(rng)
    x = rng.normal(0, 1, (16, 3, 6, 6)).astype(np.float32)
    cal = calibrate(pm, x)
    back = decode_packed(encode_packed(cal))
    assert back.version == VERSION == (1, 1)
    assert [n["attrs"].get("input_quant") for n in back.graph["nodes"]] == \
        [n["attrs"]["input_quant"] for n in cal.graph["nodes"]]
    dynamic, static = Net(pm)(x)[0], Net(back)(x)[0]
    err = np.abs(static - dynamic).max() / np.abs(dynamic).max()
    assert 0 < err < 0.05                           # another scale (so really used), about the same result
    # one image whose range is 20 times the calibrated one saturates instead of rescaling
    big = x[:1] * 20
    assert not np.allclose(Net(back)(big)[0], Net(pm)(big)[0], rtol=0.2)


def test_too_few_images_or_the_wrong_shape_are_refused():
    pm = two_convs(np.random.default_rng(2))
    with pytest.raises(ValueError, match="at least 8"):
        calibrate(pm, np.zeros((3, 3, 6, 6), np.float32))
    with pytest.raises(ValueError, match=r"the model takes \(N, 3, 6, 6\)"):
        calibrate(pm, np.zeros((10, 3, 5, 6), np.float32))


@pytest.mark.parametrize("quant, message", [
    ({"scale": 0.0, "zero_point": 0}, "scale = 0.0 is outside"),
    ({"scale": 0.1, "zero_point": 256}, "zero_point = 256 is outside"),
    ({"scale": 0.1}, "has no 'zero_point'"),
    ({"scale": 0.1, "zero_point": 3, "bits": 8}, "unknown field 'bits'")])
def test_the_reader_refuses_a_bad_input_quant(quant, message):
    pm = two_convs(np.random.default_rng(3))
    pm.graph["nodes"][0]["attrs"]["input_quant"] = quant
    with pytest.raises(FormatError, match=message):
        decode_packed(encode_packed(pm))


def test_input_quant_on_a_conv_without_int8_input_is_refused():
    rng = np.random.default_rng(4)
    pm, _ = conv_model(rng, 16, 8, 5, 5, ternary_in=True, fixed=(0.1, 3))
    with pytest.raises(FormatError, match="input_quant .* ternary convs on 8-bit activations only"):
        decode_packed(encode_packed(pm))
