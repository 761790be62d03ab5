"""tritnet.darknet.weights: real files read with exact sizes, byte-identical round trips, partial, errors."""
import hashlib
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tritnet.darknet import (CfgWarning, DarknetWeights, WeightsError, WeightsHeader, encode_weights, infer_layers,
                             layer_layout, load_weights, parse_cfg, parse_cfg_string, partial, save_weights,
                             set_ternary)

TINY = """[net]
width=8
height=8
channels=3

[convolutional]
batch_normalize=1
filters=4
size=3
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
filters=2
size=1
activation=linear

[connected]
output=5
activation=linear

[connected]
output=3
batch_normalize=1
activation=linear

[batchnorm]

[softmax]
"""
# floats: conv0 4+12+108, conv2 2+8, fc3 5+160, fc4 3+15+9, bn5 9
TINY_FLOATS = 124 + 10 + 165 + 27 + 9


def _random_weights(sections, seed=0):
    """Random arrays for every layer; variances positive, as the reader requires."""
    rng = np.random.default_rng(seed)
    return {i.index: {name: _draw(rng, name, shape) for name, shape in layer_layout(i)}
            for i in infer_layers(sections) if layer_layout(i)}


def _draw(rng, name, shape):
    a = rng.standard_normal(shape).astype(np.float32)
    return np.abs(a) if name == "rolling_variance" else a


@pytest.fixture
def tiny():
    return parse_cfg_string(TINY, path="tiny.cfg")


# ---- real files ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cfgname,wname,header,filled,end_layer", [
    ("weights/cifar_minin.cfg", "cifar_minin.weights", (0, 1, 0, 640000), 4, None),
    ("reference/cfg/cifar_minin_b1.cfg", "cifar_minin.weights", (0, 1, 0, 640000), 4, None),
    ("reference/cfg/ttt4_b1.cfg", "ttt4_minloss.weights", (0, 2, 0, 2444544), 6, None),
    ("weights/ttt4.cfg", "ttt4_minloss.weights", (0, 2, 0, 2444544), 6, None),
    ("cfg/ttt5_224_160.cfg", "ttt5_pre_141_conv7.weights", (0, 2, 0, 0), 4, 7),
    ("cfg/ttt5_pre.cfg", "ttt5_pre_141_conv7.weights", (0, 2, 0, 0), 4, 7),
])
def test_real_weights_consumed_exactly_and_rewritten_identically(darknet_data, recwarn, cfgname, wname, header,
                                                                 filled, end_layer):
    cfg = parse_cfg(darknet_data / cfgname)
    path = darknet_data / "weights" / wname
    raw = path.read_bytes()
    w = load_weights(cfg, path, prefix=end_layer is not None)
    h = w.header
    assert (h.major, h.minor, h.revision, h.seen) == header
    assert h.nbytes == (16 if header[1] == 1 else 20)
    assert (w.filled, w.end_layer, w.complete) == (filled, end_layer, end_layer is None)
    consumed = h.nbytes + 4 * sum(a.size for arrays in w.layers.values() for a in arrays.values())
    assert consumed == len(raw)
    for arrays in w.layers.values():
        assert all(a.dtype == np.float32 for a in arrays.values())
    assert encode_weights(cfg, w, keep_header=True) == raw
    # darknet's writer: header 0.2.0 + uint64 seen, the body unchanged
    new = encode_weights(cfg, w)
    assert new[:20] == struct.pack("<iiiQ", 0, 2, 0, header[3]) and new[20:] == raw[h.nbytes:]


def test_real_weights_layout(darknet_data):
    cfg = parse_cfg(darknet_data / "reference" / "cfg" / "ttt4_b1.cfg")
    w = load_weights(cfg, darknet_data / "weights" / "ttt4_minloss.weights")
    assert sorted(w.layers) == [0, 2, 4, 6, 7, 8]
    c0 = w.layers[0]
    assert list(c0) == ["biases", "scales", "rolling_mean", "rolling_variance", "weights"]
    assert c0["weights"].shape == (6, 3, 3, 3) and c0["biases"].shape == (6,)
    assert list(w.layers[8]) == ["biases", "weights"] and w.layers[8]["weights"].shape == (7, 144, 1, 1)
    raw = (darknet_data / "weights" / "ttt4_minloss.weights").read_bytes()
    assert c0["biases"].tobytes() == raw[20:44]
    assert (c0["rolling_variance"] > 0).all()


def test_prefix_backbone_and_upto(darknet_data):
    cfg = parse_cfg(darknet_data / "cfg" / "ttt5_224_160.cfg")
    path = darknet_data / "weights" / "ttt5_pre_141_conv7.weights"
    w = load_weights(cfg, path, prefix=True)
    assert sorted(w.layers) == [0, 2, 4, 6] and w.layers[6]["weights"].shape == (512, 128, 3, 3)
    assert load_weights(cfg, path, upto=3).filled == 2  # layers 0..2
    assert load_weights(cfg, path, upto=7).filled == 4
    # a full file read with upto: the rest is ignored, as load_weights_upto does
    ttt4 = parse_cfg(darknet_data / "reference" / "cfg" / "ttt4_b1.cfg")
    assert sorted(load_weights(ttt4, darknet_data / "weights" / "ttt4_minloss.weights", upto=5).layers) == [0, 2, 4]


def test_partial_is_darknet_byte_for_byte(darknet_data, tmp_path):
    out = tmp_path / "p5.weights"
    n = partial(darknet_data / "reference" / "cfg" / "ttt4_fixanchors.cfg",
                darknet_data / "weights" / "ttt4_minloss.weights", out, 5)
    ref = (darknet_data / "reference" / "partial" / "ttt4_partial5.weights").read_bytes()
    assert n == 19676 == len(ref)
    got = out.read_bytes()
    assert got == ref
    assert hashlib.sha256(got).hexdigest() == "aa19fd02ccd9621c867605b3ce57e6d493d0c761392c807e1a7e469634c7ebad"


def test_partial_of_a_prefix_and_beyond_it(darknet_data, tmp_path):
    src = darknet_data / "weights" / "ttt5_pre_141_conv7.weights"
    out = tmp_path / "p7.weights"
    partial(darknet_data / "cfg" / "ttt5_pre.cfg", src, out, 7)  # what made this file: same bytes (seen was 0)
    assert out.read_bytes() == src.read_bytes()
    with pytest.raises(WeightsError, match="ends before layer 7"):
        partial(darknet_data / "cfg" / "ttt5_pre.cfg", src, tmp_path / "p9.weights", 9)


def test_partial_zero_ternary_like_darknetTWN(darknet_data, tmp_path):
    cfg = parse_cfg(darknet_data / "reference" / "cfg" / "ttt4_b1.cfg")
    set_ternary(cfg, [2])
    out = tmp_path / "z.weights"
    partial(cfg, darknet_data / "weights" / "ttt4_minloss.weights", out, 5, zero_ternary=True)
    w = load_weights(cfg, out, prefix=True)
    full = load_weights(cfg, darknet_data / "weights" / "ttt4_minloss.weights")
    assert not w.layers[2]["weights"].any() and np.array_equal(w.layers[2]["biases"], full.layers[2]["biases"])
    assert np.array_equal(w.layers[4]["weights"], full.layers[4]["weights"])


# ---- synthetic -----------------------------------------------------------------------------------------------
def test_roundtrip_all_parameter_layer_kinds(tiny, tmp_path):
    layers = _random_weights(tiny)
    assert [list(layers[i]) for i in (3, 4, 5)] == [
        ["biases", "weights"], ["biases", "weights", "scales", "rolling_mean", "rolling_variance"],
        ["scales", "rolling_mean", "rolling_variance"]]
    assert layers[3]["weights"].shape == (5, 2 * 4 * 4)
    p = tmp_path / "t.weights"
    assert save_weights(tiny, layers, p, seen=123) == 20 + 4 * TINY_FLOATS
    raw = p.read_bytes()
    assert raw[:20] == struct.pack("<iiiQ", 0, 2, 0, 123)
    w = load_weights(tiny, p)
    assert w.complete and w.filled == 5 and w.header.seen == 123
    for i, arrays in layers.items():
        for k, a in arrays.items():
            assert np.array_equal(w.layers[i][k], a)
    assert encode_weights(tiny, w, keep_header=True) == raw
    # connected order on disk: biases, weights, then BN (unlike conv)
    off = 20 + 4 * (124 + 10 + 165)
    assert raw[off:off + 12] == layers[4]["biases"].tobytes()
    assert raw[off + 12:off + 12 + 60] == layers[4]["weights"].tobytes()


@pytest.mark.parametrize("major,minor,header_bytes,transposed", [
    (0, 1, 16, False), (0, 2, 20, False), (1, 0, 20, False), (0, 1001, 16, True), (1001, 0, 16, True)])
def test_header_versions_and_transpose(tiny, tmp_path, major, minor, header_bytes, transposed):
    layers = _random_weights(tiny, seed=1)
    h = WeightsHeader(major, minor, 7, 640000)
    assert (h.nbytes, h.transpose) == (header_bytes, transposed)
    p = tmp_path / "h.weights"
    save_weights(tiny, layers, p, header=h)
    raw = p.read_bytes()
    assert len(raw) == header_bytes + 4 * TINY_FLOATS
    w = load_weights(tiny, p)
    assert w.header == h
    assert np.array_equal(w.layers[3]["weights"], layers[3]["weights"])  # (out, in) in memory either way
    off = header_bytes + 4 * (124 + 10 + 5)
    on_disk = np.frombuffer(raw, "<f4", 5 * 32, off)
    want = layers[3]["weights"].T if transposed else layers[3]["weights"]
    assert np.array_equal(on_disk, want.reshape(-1))
    assert encode_weights(tiny, w, keep_header=True) == raw


def test_truncated_inside_a_layer_names_both_sizes(tiny, tmp_path):
    p = tmp_path / "t.weights"
    save_weights(tiny, _random_weights(tiny), p)
    full = p.read_bytes()
    cut = 20 + 4 * (124 + 10 + 7)  # 7 floats into layer 3
    p.write_bytes(full[:cut])
    with pytest.raises(WeightsError) as e:
        load_weights(tiny, p)
    msg = str(e.value)
    assert "ends inside layer 3 ([connected], tiny.cfg:22)" in msg
    assert f"the file has {cut} bytes" in msg and f"the whole network {len(full)} bytes" in msg
    assert f"need {20 + 4 * (124 + 10 + 165)} bytes" in msg
    p.write_bytes(full[:10])
    with pytest.raises(WeightsError, match="too short for a darknet header"):
        load_weights(tiny, p)


def test_extra_bytes_name_both_sizes(tiny, tmp_path):
    p = tmp_path / "t.weights"
    save_weights(tiny, _random_weights(tiny), p)
    full = p.read_bytes()
    p.write_bytes(full + b"\0" * 8)
    with pytest.raises(WeightsError, match=rf"8 bytes left over .* needs {len(full)} bytes, the file has "
                                           rf"{len(full) + 8} bytes"):
        load_weights(tiny, p)
    assert load_weights(tiny, p, upto=4).filled == 3  # reading a prefix ignores the rest


def test_clean_prefix_and_write_back(tiny, tmp_path):
    p = tmp_path / "t.weights"
    save_weights(tiny, _random_weights(tiny), p)
    full = p.read_bytes()
    p.write_bytes(full[:20 + 4 * 134])  # layers 0..2
    w = load_weights(tiny, p, prefix=True)
    assert (w.filled, w.end_layer, sorted(w.layers)) == (2, 3, [0, 2])
    assert encode_weights(tiny, w, keep_header=True) == full[:20 + 4 * 134]


def test_encode_errors(tiny):
    layers = _random_weights(tiny)
    del layers[2]
    with pytest.raises(WeightsError, match="layer 2 .* has no values but layer 3"):
        encode_weights(tiny, layers)
    layers = _random_weights(tiny)
    layers[0]["weights"] = np.zeros((4, 3, 2, 2), np.float32)
    with pytest.raises(WeightsError, match=r"weights has shape \(4, 3, 2, 2\), the cfg needs \(4, 3, 3, 3\)"):
        encode_weights(tiny, layers)
    layers = _random_weights(tiny)
    del layers[0]["scales"]
    with pytest.raises(WeightsError, match="missing array 'scales'"):
        encode_weights(tiny, layers)


def test_dontload_numload_dontloadscales_dontsave(tmp_path):
    base = "[net]\nwidth=4\nheight=4\nchannels=2\n[convolutional]\nfilters=3\nbatch_normalize=1\n{a}\n" \
           "[convolutional]\nfilters=2\n{b}\n"
    plain = parse_cfg_string(base.format(a="", b=""))
    p = tmp_path / "w.weights"
    layers = _random_weights(plain)
    save_weights(plain, layers, p)
    w = load_weights(parse_cfg_string(base.format(a="", b="dontload=1")), p, upto=1)
    assert sorted(w.layers) == [0]
    with pytest.raises(WeightsError, match="left over"):  # layer 1 skipped: its bytes are extra
        load_weights(parse_cfg_string(base.format(a="", b="dontload=1")), p)
    # numload=2: reads biases[2], BN[2], weights[2*2]; then layer 1 from what follows
    w = load_weights(parse_cfg_string(base.format(a="numload=2", b="")), p, upto=1)
    assert w.layers[0]["weights"].shape == (2, 2, 1, 1)
    assert np.array_equal(w.layers[0]["biases"], layers[0]["biases"][:2])
    w = load_weights(parse_cfg_string(base.format(a="dontloadscales=1", b="")), p, upto=1)
    assert list(w.layers[0]) == ["biases", "weights"]
    skip = parse_cfg_string(base.format(a="dontsave=1", b=""))
    assert encode_weights(skip, layers)[20:] == layers[1]["biases"].tobytes() + layers[1]["weights"].tobytes()


def test_darknet_weights_object(tiny):
    d = DarknetWeights(WeightsHeader(seen=5), _random_weights(tiny))
    assert encode_weights(tiny, d)[12:20] == struct.pack("<Q", 5)
    assert encode_weights(tiny, d, seen=0)[12:20] == b"\0" * 8


def test_cfg_and_weights_modules_do_not_import_torch():
    """darknet/cfg.py and weights.py must stay torch-free (the CPU runtime reuses them).

    ``import tritnet`` itself imports torch, so the test loads the subpackage under a stub parent.
    """
    root = Path(__file__).resolve().parents[2]
    code = (
        "import sys, types\n"
        "sys.modules['torch'] = None\n"
        f"pkg = types.ModuleType('tritnet'); pkg.__path__ = [{str(root / 'tritnet')!r}]\n"
        "sys.modules['tritnet'] = pkg\n"
        "import tritnet.darknet as dn\n"
        "import tritnet.darknet.cfg, tritnet.darknet.weights, tritnet.darknet.shapes\n"
        "assert sys.modules['torch'] is None\n"
        "cfg = dn.parse_cfg_string('[net]\\nwidth=4\\nheight=4\\nchannels=1\\n[convolutional]\\n')\n"
        "print(dn.count_params(cfg))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "2"


def test_flipped_conv_weights_are_transposed_on_load(tmp_path):
    """flipped=1: the file holds the conv weights as a (c·k·k) x n matrix, which darknet's loader transposes
    (transpose_matrix in load_convolutional_weights) into its n x (c·k·k) layout."""
    text = "[net]\nwidth=4\nheight=4\nchannels=2\n[convolutional]\nfilters=3\nsize=3\npad=1\nflipped={}\n"
    n, c, k = 3, 2, 3
    w = np.arange(n * c * k * k, dtype=np.float32).reshape(n, c, k, k)
    biases = np.array([1, 2, 3], np.float32)
    stored = w.reshape(n, -1).T                                   # what a flipped file holds, row-major
    path = tmp_path / "f.weights"
    path.write_bytes(struct.pack("<iiiQ", 0, 2, 0, 0) + biases.tobytes() + stored.astype("<f4").tobytes())
    got = load_weights(parse_cfg_string(text.format(1)), path).layers[0]
    assert np.array_equal(got["weights"], w) and np.array_equal(got["biases"], biases)
    plain = load_weights(parse_cfg_string(text.format(0)), path).layers[0]
    assert np.array_equal(plain["weights"], stored.reshape(n, c, k, k))


# ---- hostile and broken files: refused with the file, layer and field named ----------------------------------
_DAMAGED = "which darknet turns into NaN outputs; the file is damaged (allow_nonfinite=True loads it for inspection)"


@pytest.mark.parametrize("layer,name,index,value,where,what", [
    (0, "weights", (1, 2, 0, 2), np.nan, "layer 0 ([convolutional], tiny.cfg:6)", "NaN or infinite"),
    (0, "biases", (3,), np.inf, "layer 0 ([convolutional], tiny.cfg:6)", "NaN or infinite"),
    (0, "scales", (0,), -np.inf, "layer 0 ([convolutional], tiny.cfg:6)", "NaN or infinite"),
    (0, "rolling_mean", (1,), np.nan, "layer 0 ([convolutional], tiny.cfg:6)", "NaN or infinite"),
    (0, "rolling_variance", (2,), -0.5, "layer 0 ([convolutional], tiny.cfg:6)", "negative"),
    (3, "weights", (4, 31), np.inf, "layer 3 ([connected], tiny.cfg:22)", "NaN or infinite"),
    (4, "rolling_variance", (1,), np.nan, "layer 4 ([connected], tiny.cfg:26)", "NaN or infinite"),
    (5, "rolling_variance", (0,), -2.0, "layer 5 ([batchnorm], tiny.cfg:31)", "negative"),
])
def test_nan_inf_and_negative_variance_are_refused_naming_layer_and_field(tiny, tmp_path, layer, name, index, value,
                                                                          where, what):
    layers = _random_weights(tiny)
    layers[layer][name][index] = value
    p = tmp_path / "bad.weights"
    save_weights(tiny, layers, p)
    with pytest.raises(WeightsError) as e:
        load_weights(tiny, p)
    shown = ", ".join(map(str, index))
    assert str(e.value) == f"{p}: {where}: {name} holds 1 {what} value ({name}[{shown}] = {value}), {_DAMAGED}"
    w = load_weights(tiny, p, allow_nonfinite=True)          # for inspection: the values as they are
    assert np.array_equal(w.layers[layer][name], layers[layer][name], equal_nan=True)


def test_several_bad_values_are_counted_and_the_first_shown(tiny, tmp_path):
    layers = _random_weights(tiny)
    layers[2]["weights"][1, 3, 0, 0] = np.nan
    layers[2]["weights"][0, 1, 0, 0] = -np.inf
    layers[0]["rolling_variance"][:] = 0.0                   # zero is fine: darknet adds 1e-6 to its root
    p = tmp_path / "bad.weights"
    save_weights(tiny, layers, p)
    with pytest.raises(WeightsError) as e:
        load_weights(tiny, p)
    assert str(e.value) == (f"{p}: layer 2 ([convolutional], tiny.cfg:17): weights holds 2 NaN or infinite values "
                            f"(weights[0, 1, 0, 0] = -inf), {_DAMAGED}")


def test_header_only_file_is_refused_even_as_a_prefix(tiny, tmp_path):
    p = tmp_path / "h.weights"
    for header in (struct.pack("<iiiQ", 0, 2, 0, 0), struct.pack("<iiii", 0, 1, 0, 0)):
        p.write_bytes(header)
        for prefix in (False, True):
            with pytest.raises(WeightsError) as e:
                load_weights(tiny, p, prefix=prefix)
            assert str(e.value) == (f"{p}: the file holds only a {len(header)}-byte header, no layer values; the "
                                    f"network needs {len(header) + 4 * TINY_FLOATS} bytes")


def test_a_file_ending_between_layers_is_refused_unless_a_prefix_is_asked_for(tiny, tmp_path):
    p = tmp_path / "t.weights"
    save_weights(tiny, _random_weights(tiny), p)
    full = p.read_bytes()
    cut = 20 + 4 * 134                                        # layers 0..2, then nothing
    p.write_bytes(full[:cut])
    with pytest.raises(WeightsError) as e:
        load_weights(tiny, p)
    assert str(e.value) == (f"{p}: the file ends before layer 3 ([connected], tiny.cfg:22): it holds 2 of the 5 "
                            f"layers with parameters ({cut} of {len(full)} bytes); it is truncated, or a backbone "
                            f"made by partial, which only training starts from")
    assert load_weights(tiny, p, prefix=True).filled == 2
    assert load_weights(tiny, p, upto=3).complete             # layers 0..2 are all that was asked for
    with pytest.raises(WeightsError, match="ends before layer 3"):
        load_weights(tiny, p, upto=4)


@pytest.mark.parametrize("header,seen", [
    (struct.pack("<iiiQ", 0, 2, 0, 2**64 - 1), 2**64 - 1),
    (struct.pack("<iiiQ", 0, 2, 0, 2**40 + 1), 2**40 + 1),
    (struct.pack("<iiii", 0, 1, 0, -5), -5),                 # v0.1: int32, which darknet widens to 2^64 - 5
])
def test_absurd_seen_is_refused_naming_file_and_field(tiny, tmp_path, header, seen):
    p = tmp_path / "s.weights"
    body = encode_weights(tiny, _random_weights(tiny))[20:]
    p.write_bytes(header + body)
    with pytest.raises(WeightsError) as e:
        load_weights(tiny, p)
    assert str(e.value) == (f"{p}: header field seen = {seen} is not a count of training images (tritnet accepts 0 "
                            f"to 2^40): the header is damaged or this is not a darknet .weights file")
    p.write_bytes(struct.pack("<iiiQ", 0, 2, 0, 2**40) + body)
    assert load_weights(tiny, p).header.seen == 2**40


# ---- AlexeyAB's files --------------------------------------------------------------------------------------------
AAB_TINY = """[net]
width=6
height=6
channels=3

[convolutional]
batch_normalize=1
filters=4
size=3
pad=1
activation=mish

[convolutional]
filters=4
size=1
groups=2
activation=linear

[shortcut]
from=-2,-1
weights_type=per_channel
weights_normalization=softmax

[batchnorm]
"""
# conv0 4·4 + 108, conv1 4 + 4·2, shortcut (2+1)·4, batchnorm biases + triplet 4·4
AAB_TINY_FLOATS = 124 + 12 + 12 + 16


@pytest.mark.parametrize("major,minor,header_bytes,fmt", [
    (0, 1, 16, "<iiiI"), (0, 2, 20, "<iiiQ"), (0, 1001, 20, "<iiiQ"), (1001, 0, 20, "<iiiQ")])
def test_alexeyab_headers_are_read_and_written_byte_for_byte(tmp_path, major, minor, header_bytes, fmt):
    """AlexeyAB reads seen as uint64 whenever major*10+minor >= 2 (transposed files too: pjreddie reads an int32
    there), else as uint32; a file written back keeps its header bytes; a new one gets AlexeyAB's 0.2.5."""
    cfg = parse_cfg_string(AAB_TINY, path="aab.cfg")
    assert cfg.dialect == "alexeyab"
    layers = _random_weights(cfg, seed=2)
    seen = 2**32 + 7 if header_bytes == 20 else 2**32 - 1          # beyond int32 either way
    raw = struct.pack(fmt, major, minor, 5, seen) + encode_weights(cfg, layers)[20:]
    p = tmp_path / "a.weights"
    p.write_bytes(raw)
    w = load_weights(cfg, p)
    assert (w.header.major, w.header.minor, w.header.seen, w.header.nbytes) == (major, minor, seen, header_bytes)
    assert encode_weights(cfg, w, keep_header=True) == raw
    assert encode_weights(cfg, layers)[:20] == struct.pack("<iiiQ", 0, 2, 5, 0)
    if (major, minor) == (0, 1001):    # the same bytes as pjreddie's darknet reads them: a 16-byte header
        assert WeightsHeader.from_bytes(raw, "a.weights", "pjreddie").nbytes == 16


def test_alexeyab_layouts_batchnorm_biases_and_shortcut_weights(tmp_path):
    cfg = parse_cfg_string(AAB_TINY)
    infos = infer_layers(cfg)
    assert [[(n, s) for n, s in layer_layout(i)] for i in infos[2:]] == [
        [("weights", (12,))], [("biases", (4,)), ("scales", (4,)), ("rolling_mean", (4,)), ("rolling_variance", (4,))]]
    assert layer_layout(infos[1]) == [("biases", (4,)), ("weights", (4, 2, 1, 1))]     # groups=2: c/groups inputs
    layers = _random_weights(cfg, seed=3)
    p = tmp_path / "a.weights"
    assert save_weights(cfg, layers, p) == 20 + 4 * AAB_TINY_FLOATS
    raw = p.read_bytes()
    off = 20 + 4 * (124 + 12)
    assert raw[off:off + 48] == layers[2]["weights"].tobytes()
    assert raw[off + 48:off + 64] == layers[3]["biases"].tobytes()
    from tritnet.darknet import build_darknet
    net = build_darknet(cfg, p, None)
    net.save_weights(tmp_path / "b.weights")
    assert (tmp_path / "b.weights").read_bytes() == raw
    assert net.param_count() == AAB_TINY_FLOATS
    # pjreddie's [batchnorm] has no biases in the file
    assert [n for n, _ in layer_layout(infer_layers(parse_cfg_string(TINY))[5])] == \
        ["scales", "rolling_mean", "rolling_variance"]


@pytest.mark.filterwarnings("ignore:.*unknown key 'dontsave'")
def test_alexeyab_does_not_read_dontsave_or_numload():
    with pytest.warns(CfgWarning, match=r"unknown key 'numload' \(AlexeyAB's darknet ignores it"):
        cfg = parse_cfg_string(AAB_TINY.replace("activation=mish", "activation=mish\nnumload=2\ndontsave=1"))
    assert cfg.dialect == "alexeyab"
    assert layer_layout(infer_layers(cfg)[0], loading=True)[-1] == ("weights", (4, 3, 3, 3))
    from tritnet.darknet import count_params
    assert count_params(cfg) == AAB_TINY_FLOATS


@pytest.mark.filterwarnings("ignore::tritnet.darknet.CfgWarning")      # read as pjreddie's: AlexeyAB's keys
def test_yolov4_tiny_random_file_reads_exactly_and_writes_back(darknet_data, tmp_path):
    """The generated yolov4-tiny file (the reference's, 24,251,276 bytes) is consumed exactly and rewritten
    identically; darknet's own save_weights wrote a byte-identical body (reference README)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "gen_random_weights", darknet_data / "reference-alexeyab" / "scripts" / "gen_random_weights.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    data = gen.generate(str(darknet_data / "cfg" / "yolov4-tiny.cfg"), 0)
    assert hashlib.sha256(data).hexdigest() == "996c081f0e05afcd5f1f5723016eed8a1a1fa685abb6c576082fdee157072338"
    p = tmp_path / "y4.weights"
    p.write_bytes(data)
    cfg = parse_cfg(darknet_data / "cfg" / "yolov4-tiny.cfg")
    w = load_weights(cfg, p)
    assert w.complete and w.filled == 21 and len(data) == 20 + 4 * 6_062_814
    assert encode_weights(cfg, w, keep_header=True) == data
    with pytest.raises(WeightsError, match=r"the whole network 25025420 bytes\), the file has 24251276"):  # 6,256,350
        load_weights(parse_cfg(darknet_data / "cfg" / "yolov4-tiny.cfg", dialect="pjreddie"), p)
