"""The packed file: round trips at 2 and 1.6 bits, and clear errors for bad files."""
import struct
import zlib

import numpy as np
import pytest
import torch

import tritnet
from tritnet.export import to_packed
from tritnet_rt.format import FormatError, decode_packed, encode_packed, load_packed, save_packed
from tests.runtime.helpers import random_bn_


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = random_bn_(tritnet.create_model("resnet20").eval())
    tritnet.ternarize_(m, method="twn", layers="all_but_first_last", per_channel=True)
    return m


@pytest.mark.parametrize("bits", [2, 1.6])
def test_round_trip_gives_the_same_ternary_values(model, tmp_path, bits):
    pm = to_packed(model, bits=bits, float_dtype="f16")
    size = save_packed(pm, tmp_path / "m.tnp")
    back = load_packed(tmp_path / "m.tnp")
    assert size == (tmp_path / "m.tnp").stat().st_size
    assert back.model == pm.model and back.graph == pm.graph
    conv = model.layer2[0].conv1
    codes, alpha = conv.ternary_codes()
    got = back.tensors["layer2.0.conv1.codes"]
    assert back.dtypes["layer2.0.conv1.codes"] == ("tern2" if bits == 2 else "tern1.6")
    assert got.dtype == np.int8 and np.array_equal(got, codes.numpy())
    # float layers (first conv, classifier) stored as float16 on request, the folded scale as float32
    assert back.tensors["conv1.weight"].dtype == np.float16
    assert back.tensors["layer2.0.conv1.scale"].shape == (32,)
    for name, arr in pm.tensors.items():
        if pm.dtypes[name] == "f16":
            assert np.array_equal(back.tensors[name], arr.astype(np.float16))
        elif pm.dtypes[name] != "f16":
            assert np.array_equal(back.tensors[name], arr)


def test_bn_is_folded_into_scale_and_bias(model):
    pm = to_packed(model)
    conv, bn = model.layer1[0].conv1, model.layer1[0].bn1
    codes, alpha = conv.ternary_codes()
    g = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()
    assert np.allclose(pm.tensors["layer1.0.conv1.scale"], (alpha.reshape(-1) * g).numpy(), rtol=1e-6)
    assert np.allclose(pm.tensors["layer1.0.conv1.bias"], (bn.bias - bn.running_mean * g).detach().numpy(), atol=1e-6)


@pytest.fixture(scope="module")
def blob(model):
    return encode_packed(to_packed(model))


def test_truncated_file_is_a_clear_error(blob, tmp_path):
    for cut in (10, 70, len(blob) // 2, len(blob) - 1):
        (tmp_path / "t.tnp").write_bytes(blob[:cut])
        with pytest.raises(FormatError, match="truncated"):
            load_packed(tmp_path / "t.tnp")


def test_corrupted_file_fails_its_checksum(blob):
    for pos in (100, len(blob) - 5):
        bad = bytearray(blob)
        bad[pos] ^= 0x10
        with pytest.raises(FormatError, match="checksum|corrupted"):
            decode_packed(bytes(bad))


def test_newer_version_and_foreign_files_are_refused(blob, tmp_path):
    for major, minor in ((2, 0), (1, 2)):
        newer = bytearray(blob)
        newer[8:12] = struct.pack("<HH", major, minor)
        with pytest.raises(FormatError, match=f"version {major}.{minor} is newer than this runtime reads \\(1.1\\)"):
            decode_packed(bytes(newer))
    older = bytearray(_rewrite(blob, lambda h: h.update(version="1.0")))      # before input_quant: still read
    older[10:12] = struct.pack("<H", 0)
    assert decode_packed(bytes(older)).version == (1, 0)
    with pytest.raises(FormatError, match="not a tritnet packed file"):
        decode_packed(b"GIF89a" + bytes(100))
    with pytest.raises(FileNotFoundError, match="no_such.tnp"):
        load_packed(tmp_path / "no_such.tnp")


def _rewrite(blob, edit_header=None, edit_data=None):
    """The file with its header JSON and/or data edited, checksums recomputed (so only the checks of meaning,
    not the CRCs, can catch it)."""
    import json
    hlen = struct.unpack_from("<Q", blob, 16)[0]
    header = json.loads(blob[64:64 + hlen])
    data = bytearray(blob[64 + hlen + (-hlen) % 64:])
    if edit_header:
        edit_header(header)
    if edit_data:
        edit_data(header, data)
    hj = json.dumps(header).encode()
    fixed = bytearray(blob[:64])
    struct.pack_into("<IQQI", fixed, 12, zlib.crc32(hj), len(hj), len(data), zlib.crc32(bytes(data)))
    return bytes(fixed) + hj + b"\0" * ((-len(hj)) % 64) + bytes(data)


def _node(header, name):
    return next(n for n in header["graph"]["nodes"] if n["name"] == name)


def test_a_graph_naming_a_missing_tensor_is_refused(blob):
    def edit(h):
        h["graph"]["nodes"][0]["tensors"]["weight"] = "nope"
    with pytest.raises(FormatError, match="missing tensor 'nope'"):
        decode_packed(_rewrite(blob, edit))


def _swap_tensor(header, role_node, role, donor):
    _node(header, role_node)["tensors"][role] = donor


@pytest.mark.parametrize("edit, message", [
    # a weight whose input channels do not match the input (16-channel layer given a 3-channel weight)
    (lambda h: _swap_tensor(h, "layer1.0.conv1", "weight", "conv1.weight"), r"node 1 \('layer1.0.conv1'\): tensor weight \('conv1.weight'\) has shape \(16, 3, 3, 3\), want \(16, 16, 3, 3\)"),
    # a bias too short for its channels
    (lambda h: _swap_tensor(h, "layer2.0.conv1", "bias", "conv1.bias"), r"tensor bias \('conv1.bias'\) has shape \(16,\), want \(32,\)"),
    (lambda h: _node(h, "layer1.0.conv1")["attrs"].update(activation="gelu"), "attrs.activation = 'gelu' is not one of linear, relu, leaky, prelu, logistic, swish, mish"),
    (lambda h: _node(h, "layer1.0.conv1").update(op="deconv"), "unknown op 'deconv'"),
    (lambda h: _node(h, "layer1.0.conv2").update(inputs=[]), "takes 1..2 inputs, got 0"),
    (lambda h: h.update(version="one"), "header says format 'tritnet-packed' version 'one', the file is tritnet-packed 1.1"),
    (lambda h: h["tensors"]["conv1.bias"].pop("shape"), "tensor 'conv1.bias': entry has no 'shape'"),
])
def test_files_with_good_checksums_but_a_graph_that_does_not_fit_are_refused(blob, edit, message):
    with pytest.raises(FormatError, match=message):
        decode_packed(_rewrite(blob, edit))


def test_a_packed_tensor_with_extra_bytes_is_refused(blob):
    def edit(h, data):
        t = h["tensors"]["layer1.0.conv1.codes"]
        t["nbytes"] += 1                     # the byte after it is alignment padding, still inside the data
    with pytest.raises(FormatError, match=r"577 bytes for 2304 values of tern2 \(want 576\)"):
        decode_packed(_rewrite(blob, edit_data=edit))


def test_file_size_vs_float_weights(shared_data):
    """yolov2-tiny-voc, all layers ternary: ≥15× smaller than float32 .weights at 2 bits, ≥19× at 1.6 bits."""
    from tritnet.darknet import count_params
    from tests.runtime.helpers import darknet_net
    net = darknet_net(shared_data, "yolov2-tiny-voc")
    float_bytes = 20 + 4 * count_params(net.cfg)
    r2 = float_bytes / len(encode_packed(to_packed(net, bits=2)))
    r16 = float_bytes / len(encode_packed(to_packed(net, bits=1.6)))
    assert r2 >= 15 and r16 >= 19, (r2, r16)
