"""Hostile packed files, one attack at a time: each is refused by the reader with a FormatError that names the
file and the node or field, before the planner or a kernel sees it. And the C entry point refuses op lists
whose sizes or index tables do not fit their buffers, whatever Python hands it."""
import json
import struct

import numpy as np
import pytest

import tritnet_rt
from tritnet_rt.format import FormatError, PackedModel, decode_packed, encode_packed, load_packed, save_packed
from tritnet_rt.net import Net
from tools.fuzz_packed import join, make_seeds, split


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return {p.stem: p.read_bytes() for p in make_seeds(tmp_path_factory.mktemp("seeds"))}


def edited(blob, edit):
    """``blob`` with ``edit(header, data)`` applied and the checksums made right again."""
    fields, header, data = split(blob)
    edit(header, data)
    return join(fields, header, data)


def node(header, name):
    return next(n for n in header["graph"]["nodes"] if n["name"] == name)


def refused(blob, message):
    with pytest.raises(FormatError) as e:
        decode_packed(blob, "hostile.tnp")
    text = str(e.value)
    assert text.startswith("hostile.tnp: ") and message in text and "\n" not in text, text
    return text


def conv_then(op_node):
    """The issue's file: a conv named ``a``, then ``op_node``, written by save_packed itself."""
    pm = PackedModel({"input": {"shape": [4, 8, 8]}}, {"kind": "graph"},
                     {"inputs": ["input"], "outputs": [op_node["name"]], "nodes": []})
    t = {"weight": pm.add("w", np.ones((4, 4, 3, 3), np.int8), "tern2"), "scale": pm.add("s", np.ones(4, np.float32), "f32"),
         "bias": pm.add("b", np.zeros(4, np.float32), "f32")}
    pm.graph["nodes"] = [{"name": "a", "op": "conv", "inputs": ["input"], "tensors": t,
                          "attrs": {"in_channels": 4, "out_channels": 4, "kernel": [3, 3], "stride": 1,
                                    "pad": [1, 1, 1, 1], "activation": "relu"}}, op_node]
    return pm


@pytest.mark.parametrize("fan_in", [4, 16])
def test_two_nodes_of_one_name_are_refused(tmp_path, fan_in):
    pm = conv_then({"name": "a", "op": "concat", "inputs": ["a"] * fan_in, "attrs": {}, "tensors": {}})
    save_packed(pm, tmp_path / "dup.tnp")
    with pytest.raises(FormatError, match=r"dup.tnp: node 1 \('a'\): a second node of this name"):
        load_packed(tmp_path / "dup.tnp")


def test_a_concat_of_32768_inputs_is_refused_at_once(tmp_path):
    pm = conv_then({"name": "c", "op": "concat", "inputs": ["a"] * 32768, "attrs": {}, "tensors": {}})
    refused(encode_packed(pm), "node 1 ('c'): op concat takes 1..16 inputs, got 32768")


@pytest.mark.parametrize("edit, message", [
    (lambda h: node(h, "layer1.0.conv1")["attrs"].pop("activation"), "node 1 ('layer1.0.conv1'): attrs has no 'activation'"),
    (lambda h: node(h, "layer1.0.conv1")["attrs"].update(pad=[1.0, 1, 1, 1]),
     "attrs.pad[0] must be an integer, not 1.0"),
    (lambda h: h["tensors"]["layer1.0.conv1.scale"].update(shape=[16, 1]),
     "tensor scale ('layer1.0.conv1.scale') has shape (16, 1), want (1,) or (16,)"),
    (lambda h: node(h, "layer1.0.conv1").update(inputs=None), "op conv takes 1..2 inputs, got None"),
    (lambda h: node(h, "layer1.0.conv1").update(inputs=3), "op conv takes 1..2 inputs, got 3"),
    (lambda h: node(h, "layer1.0.conv1").update(inputs=[7]), "reads '7', which no earlier node makes"),
    (lambda h: node(h, "layer1.0.conv1")["tensors"].update(extra="conv1.bias"), "op conv has no tensor role 'extra'"),
    (lambda h: node(h, "layer1.0.conv1")["attrs"].update(kernel=[3, 100000]), "attrs.kernel[1] = 100000 is outside [1, 64]"),
    (lambda h: h["model"]["input"].update(preprocess="stretch"),
     "model.input.preprocess = 'stretch' is not one of normalize, letterbox, resize"),
    (lambda h: h["model"]["input"].update(shape=[3, 4096, 4096]), "node 1 ('layer1.0.conv1'): the network needs "
     "over 2 GiB of feature maps for one image"),
    (lambda h: h["model"]["input"].update(shape=[3, 16384, 16384]),
     "node 0 ('conv1'): output shape (16, 16384, 16384) is empty or beyond the limits"),
    (lambda h: h["model"].update(classes=["cat", 3]), "model.classes[1] must be a string, not 3"),
    (lambda h: h["graph"]["outputs"].append("nope"), "graph output 'nope' is not a node"),
])
def test_header_edits_are_format_errors_not_python_exceptions(seeds, edit, message):
    refused(edited(seeds["resnet20"], lambda h, d: edit(h)), message)


def _add_node(h):
    return next(n for n in h["graph"]["nodes"] if n["op"] == "add")


@pytest.mark.parametrize("edit, message", [
    (lambda h: _add_node(h)["attrs"].pop("alpha"), "attrs has no 'alpha'"),
    (lambda h: _add_node(h)["attrs"].update(activation="prelu"),
     "attrs.activation = 'prelu' is not one of linear, relu, leaky, logistic, swish, mish"),
    (lambda h: node(h, "l8")["attrs"].update(stride=1000), "node 8 ('l8'): attrs.stride = 1000 is outside [1, 32]"),
    (lambda h: node(h, "l11")["attrs"].update(mask=[-1, 1, 2]), "node 11 ('l11'): attrs.mask[0] = -1 is outside [0, 63]"),
    (lambda h: node(h, "l11")["attrs"].update(mask=[0, 1, 3, 2]), "input has 21 channels; 4 anchors of 2 classes need 28"),
    (lambda h: node(h, "l11")["attrs"].update(mask=[0, 0, 1]), "mask [0, 0, 1] must name distinct anchors below num=4"),
    (lambda h: node(h, "l11")["attrs"].update(num=2), "8 anchor values for num=2 (want 4)"),
    (lambda h: node(h, "l11")["attrs"].update(anchors=[1e30] * 8), "attrs.anchors[0] = 1e+30 is outside [0, 100000]"),
    (lambda h: node(h, "l11")["attrs"].update(classes=3), "input has 21 channels; 3 anchors of 3 classes need 24"),
    (lambda h: node(h, "l11")["attrs"].update(jitter=0.3), "attrs has the unknown field 'jitter'"),
    (lambda h: node(h, "l5")["attrs"].update(out=[17, 16]), "output height 17 does not follow from the input height 16"),
    # found by tools/fuzz_packed.py (100k mutants): an AlexeyAB decoding in a file that says pjreddie failed at
    # the first detect() with a ValueError instead of at load
    (lambda h: node(h, "l11")["attrs"].update(new_coords=True),
     "node 11 ('l11'): new_coords is AlexeyAB's yolo decoding; model.dialect must be alexeyab, not pjreddie"),
])
def test_detector_edits_are_refused(seeds, edit, message):
    refused(edited(seeds["yolo"], lambda h, d: edit(h)), message)


@pytest.mark.parametrize("edit, message", [
    (lambda h: next(n for n in h["graph"]["nodes"] if n["op"] == "region")["attrs"].update(coords=5),
     "attrs.coords = 5 is outside [4, 4]"),
    (lambda h: next(n for n in h["graph"]["nodes"] if n["op"] == "region")["attrs"].update(softmax=1),
     "attrs.softmax must be true or false, not 1"),
])
def test_region_edits_are_refused(seeds, edit, message):
    refused(edited(seeds["region"], lambda h, d: edit(h)), message)


def test_tensor_offsets_must_be_aligned_inside_the_data_and_apart(seeds):
    def unaligned(h, d):
        h["tensors"]["conv1.bias"]["offset"] += 4
    refused(edited(seeds["resnet20"], unaligned), "tensor 'conv1.bias': offset")
    refused(edited(seeds["resnet20"], unaligned), "is not 64-byte aligned")

    def overlap(h, d):
        t = h["tensors"]
        t["layer1.0.conv1.bias"]["offset"] = t["layer1.0.conv1.scale"]["offset"]
    refused(edited(seeds["resnet20"], overlap), "overlaps the tensor before it")

    def outside(h, d):
        h["tensors"]["conv1.bias"]["offset"] = len(d)
    refused(edited(seeds["resnet20"], outside), "is not 64-byte aligned inside the")


def test_nan_scale_behind_a_good_checksum_is_refused(seeds):
    def nan(h, d):
        t = h["tensors"]["layer1.0.conv1.scale"]
        d[t["offset"]:t["offset"] + 4] = struct.pack("<f", float("nan"))
    refused(edited(seeds["resnet20"], nan), "tensor 'layer1.0.conv1.scale' holds NaN or infinite values")


def test_reserved_bytes_old_versions_and_sloppy_json_are_refused(seeds):
    blob = seeds["resnet20"]
    fields, header, data = split(blob)
    reserved = list(fields)
    reserved[7] = b"\x01" + bytes(27)
    refused(join(reserved, header, data), "reserved header bytes 36..63 are not zero")
    old = list(fields)
    old[1], old[2] = 0, 9
    refused(join(old, header, data), "packed format version 0.9 was never released")
    hj = json.dumps(header).encode()
    refused(join(fields, header, data, hj.replace(b'{"format"', b'{"graph":{},"format"', 1)),
            "the key 'graph' appears twice")
    refused(join(fields, header, data, b"[" * 100000 + b"]" * 100000), "corrupted header JSON")
    assert b'"stride": 1' in hj
    refused(join(fields, header, data, hj.replace(b'"stride": 1', b'"stride": NaN', 1)), "NaN is not a number JSON allows")


# ---------------------------------------------------------------------------------------- the C entry point

def _plan(ops):
    return tritnet_rt._ext().Plan(ops)


def _maxpool(x, out, **change):
    fields = dict(batch=1, height=4, width=4, channels=2, out_height=2, out_width=2, size=2, stride=2, pad_top=0,
                  pad_left=0)
    return ("maxpool", {**fields, **change}, (), dict(x=x, out=out))


def test_c_refuses_a_buffer_too_small_for_its_op():
    x, out = np.zeros((1, 4, 4, 2), np.float32), np.zeros((1, 2, 2, 1), np.float32)   # out needs 2 channels
    with pytest.raises(ValueError, match=r"op 0 \(maxpool\): buffer out holds 16 bytes, needs 32"):
        _plan([_maxpool(x, out)])
    _plan([_maxpool(x, np.zeros((1, 2, 2, 2), np.float32))])                            # the right size


def test_c_op_fields_are_named_and_checked_by_name():
    x, out = np.zeros((1, 4, 4, 2), np.float32), np.zeros((1, 2, 2, 2), np.float32)
    with pytest.raises(ValueError, match="op 0 \\(maxpool\\): no field stride"):
        _plan([("maxpool", {k: v for k, v in _maxpool(x, out)[1].items() if k != "stride"}, (), dict(x=x, out=out))])
    with pytest.raises(ValueError, match="op 0: unknown field 'strde'"):
        _plan([_maxpool(x, out, strde=2)])
    with pytest.raises(ValueError, match="op 0: unknown buffer 'y'"):
        _plan([("maxpool", _maxpool(x, out)[1], (), dict(x=x, y=out))])
    with pytest.raises(ValueError, match="op 0: unknown op deconv"):
        _plan([("deconv", {}, (), {})])
    with pytest.raises(ValueError, match="field stride = 4294967296 is out of range"):
        _plan([_maxpool(x, out, stride=2 ** 32)])


def test_c_refuses_index_tables_that_point_outside():
    x, out = np.arange(6, dtype=np.float32), np.zeros(3, np.float32)

    def gather(idx):
        return ("gather", dict(batch=1, out_elements=3, in_elements=6), (), dict(x=x, index=idx, out=out))
    with pytest.raises(ValueError, match="gather index out of range"):
        _plan([gather(np.array([0, 5, 6], np.int32))])
    plan = _plan([gather(np.array([0, 5, 2], np.int32))])
    plan.run()
    assert out.tolist() == [0.0, 5.0, 2.0]


def test_c_refuses_a_conv_whose_pixel_table_reads_past_the_padded_input():
    from tritnet_rt.plan import Prepared, build
    pm = conv_then({"name": "y", "op": "identity", "inputs": ["a"], "attrs": {}, "tensors": {}})
    ops, buf, keep = build(Prepared(pm), 1)
    name, fields, floats, bufs = ops[0]
    _plan([(name, fields, floats, bufs)])
    pix = bufs["pixel_table"].copy()
    pix[-1] += 4                                         # one pixel past the padded 10x10 input
    with pytest.raises(ValueError, match="pixel or segment table reads outside the padded input"):
        _plan([(name, fields, floats, {**bufs, "pixel_table": pix})])
    with pytest.raises(ValueError, match="buffer x holds 1024 bytes, needs 2048"):
        _plan([(name, {**fields, "batch": 2}, floats, bufs)])   # a batch of 2 over buffers sized for 1


def test_a_valid_file_still_runs(seeds, tmp_path):
    """Every seed the fuzzer mutates reads and runs as PyTorch runs its graph (8-bit activations at the
    ternary convs: within 2% of the output's range)."""
    import torch
    from tritnet.export import torch_module
    assert set(seeds) == {"resnet20", "resnet20_sttn", "yolo", "region", "classifier", "alexeyab"}
    for name, blob in seeds.items():
        (tmp_path / f"{name}.tnp").write_bytes(blob)
        pm = load_packed(tmp_path / f"{name}.tnp")
        net = Net(pm)
        x = np.random.default_rng(1).random((2, *net.input_shape), np.float32)
        got = net(x)
        with torch.no_grad():
            ref = torch_module(pm)(torch.from_numpy(x))
        ref = [r.numpy() for r in (ref if isinstance(ref, tuple) else (ref,))]
        assert len(got) == len(ref), name
        for g, r in zip(got, ref):
            assert np.abs(g.reshape(r.shape) - r).max() <= 0.02 * np.abs(r).max(), name


def test_c_refuses_bad_fixed_scales_and_quantized_output_fields():
    from tests.runtime.test_calibrate import two_convs
    from tritnet_rt.calibrate import calibrate
    from tritnet_rt.plan import Prepared, build
    rng = np.random.default_rng(5)
    pm = calibrate(two_convs(rng), rng.normal(0, 1, (8, 3, 6, 6)).astype(np.float32))
    ops, buf, keep = build(Prepared(pm), 1)
    (n0, f0, s0, b0), (n1, f1, s1, b1) = ops
    assert f0["quantized_out"] == 1 and f1["x_quantized"] == 1 and b1["x"] is None      # y writes z's 8-bit input
    _plan(ops)
    bad = [((n0, f0, (0.0, s0[1]), b0), "op->f\\[0\\] > 0"),                           # fixed input scale 0
           ((n0, f0, (s0[0], float("nan")), b0), "op->f\\[1\\] > 0"),                  # the reader's scale NaN
           ((n0, {**f0, "out_pad_top": 2}, s0, b0), "fields fail"),                    # rows past the padded input
           ((n0, {**f0, "out_channels_padded": 4}, s0, b0), "fields fail"),            # fewer channels than N = 8
           ((n0, {**f0, "out_zp": 256}, s0, b0), "fields fail"),
           ((n0, f0, s0, {**b0, "out": b0["out"][:240]}), "buffer out holds 240 bytes, needs 288"),
           ((n1, {**f1, "fixed_quant": 0}, (0.0, 0.0), b1), "fields fail"),           # quantized input, no scale
           ((n1, {**f1, "x_quantized": 0}, s1, b1), "buffer x holds 0 bytes")]         # then x is needed
    for op, message in bad:
        with pytest.raises(ValueError, match=message):
            _plan([op])


def test_c_refuses_bad_ternary_input_fields():
    """STTN's ternary activations through the int8 GEMM (ternary_input): the affine pair must cover the row,
    and the field goes with no other way of filling the 8-bit input."""
    from tests.runtime.test_kernels import conv_model
    from tritnet_rt.plan import Prepared, build
    pm, _ = conv_model(np.random.default_rng(3), c=16, n=8, h=5, w=6, ternary_in=True)
    (name, fields, floats, bufs), = build(Prepared(pm, ternary_inputs="int8"), 1)[0]
    assert name == "conv_t8" and fields["ternary_input"] == 1 and bufs["act_a"].size == 6 * 16
    _plan([(name, fields, floats, bufs)])
    bad = [({**fields, "ternary_input": 2}, floats, bufs, "fields fail"),
           ({**fields, "fixed_quant": 1}, (0.5, 0.0), bufs, "fields fail"),          # and a calibrated scale
           (fields, floats, {**bufs, "act_b": bufs["act_b"][:16]}, "buffer act_b holds 64 bytes, needs 384")]
    for f, s, b, message in bad:
        with pytest.raises(ValueError, match=message):
            _plan([(name, f, s, b)])
    (tname, tfields, tfloats, tbufs), = build(Prepared(pm, ternary_inputs="bits"), 1)[0]
    with pytest.raises(ValueError, match="fields fail"):                              # a popcount conv: no
        _plan([(tname, {**tfields, "ternary_input": 1}, tfloats, tbufs)])
    with pytest.raises(ValueError, match="fields fail"):              # a word more than the taps fill (never zeroed)
        _plan([(tname, {**tfields, "kwords": tfields["kwords"] + 1}, tfloats, tbufs)])


def test_c_refuses_bad_two_bit_weight_fields():
    """Weights at 2 bits (weights_2bit): the buffer must hold every block's K padded to 64 at 2 bits (16 channels x
    Kp / 4 bytes a block), and only the int8 conv reads them; the padded input holds its slack (input_slack)."""
    from tests.runtime.test_kernels import conv_model
    from tritnet_rt.plan import Prepared, build
    pm, _ = conv_model(np.random.default_rng(4), c=40, n=20, h=5, w=6)        # K = 360 -> Kp 384; 2 blocks
    (name, fields, floats, bufs), = build(Prepared(pm, weight_bits=2), 1)[0]
    assert name == "conv_t8" and fields["weights_2bit"] == 1 and bufs["weights"].nbytes == 2 * 16 * 384 // 4
    _plan([(name, fields, floats, bufs)])
    bad = [({**fields, "weights_2bit": 2}, bufs, "fields fail"),
           (fields, {**bufs, "weights": bufs["weights"][:-1]}, "buffer weights holds 3071 bytes, needs 3072"),
           # the padded input's slack after the last image (AMX direct tiles read into it): counted, and capped
           (fields, {**bufs, "q": bufs["q"][:-1]}, f"buffer q holds {bufs['q'].size - 1} bytes, needs "
                                                    f"{bufs['q'].size}"),
           ({**fields, "input_slack": 1 << 25}, bufs, "fields fail")]
    for f, b, message in bad:
        with pytest.raises(ValueError, match=message):
            _plan([(name, f, floats, b)])
    (n8, f8, s8, b8), = build(Prepared(pm, weight_bits=8), 1)[0]           # int8 weights read as 2-bit: too few
    _plan([(n8, f8, s8, b8)])
    (tname, tfields, tfloats, tbufs), = build(Prepared(conv_model(np.random.default_rng(5), c=16, n=8, h=5, w=6,
                                                                  ternary_in=True)[0], ternary_inputs="bits"), 1)[0]
    with pytest.raises(ValueError, match="fields fail"):                          # a popcount conv: no
        _plan([(tname, {**tfields, "weights_2bit": 1}, tfloats, tbufs)])


@pytest.mark.parametrize("storage", ["tern2", "tern1.6"])
def test_net_load_refuses_bad_codes_it_decodes_later(tmp_path, storage):
    """Net.load keeps the codes as their bytes (LazyCodes) and decodes them while laying out the weights; the
    bytes are still checked when the file is read, so a bad code is a FormatError naming the tensor, not a
    failure halfway through preparing the net."""
    from tests.runtime.test_kernels import conv_model
    pm, _ = conv_model(np.random.default_rng(6), c=8, n=16, h=5, w=5)
    pm.dtypes["w"] = storage
    fields, header, data = split(encode_packed(pm))
    data[header["tensors"]["w"]["offset"] + 3] = 0xFF                # code 3 (2 bits), or 255 > 242 (trits)
    path = tmp_path / "bad.tnp"
    path.write_bytes(join(fields, header, data))
    with pytest.raises(FormatError, match="tensor 'w'"):
        tritnet_rt.load(path)
