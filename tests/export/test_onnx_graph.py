"""The ONNX export is a clean static graph (issue 14): darknet's maxpool padding is MaxPool ``pads``, no
subgraph computes shapes at run time, the batch is the only symbolic dimension and is named ``batch``; and
ONNX Runtime and OpenVINO compute what the packed graph's PyTorch module computes."""
import collections

import numpy as np
import pytest
import torch

import tritnet
from tests.runtime.helpers import darknet_net, random_bn_
from tritnet.export import export_onnx, to_packed, torch_module

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

# inputs that are sizes, pads or indices: a clean graph has constants there, not computed values
_SIZE_INPUTS = {"Reshape": [1], "Pad": [1, 2], "Resize": [1, 2, 3], "Slice": [1, 2, 3, 4], "Expand": [1], "Tile": [1]}


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def _computed_shapes(m) -> list:
    """Nodes that read a shape at run time, or whose size inputs are not constants."""
    constant = {i.name for i in m.graph.initializer} | {o for n in m.graph.node if n.op_type == "Constant"
                                                        for o in n.output}
    return [n.name for n in m.graph.node if n.op_type in ("Shape", "Size", "ConstantOfShape")
            or any(i < len(n.input) and n.input[i] and n.input[i] not in constant
                   for i in _SIZE_INPUTS.get(n.op_type, []))]


def _torch(pm, x):
    with torch.no_grad():
        out = torch_module(pm)(torch.from_numpy(x))
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


def _close(got, ref):
    for g, r in zip(got, ref, strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4 * np.abs(r).max())


@pytest.fixture(scope="module")
def yolo(tmp_path_factory, shared_data):
    pm = to_packed(darknet_net(shared_data, "yolov2-tiny-voc"))       # 416x416, every conv ternary
    path = tmp_path_factory.mktemp("onnx") / "yolov2-tiny-voc.onnx"
    export_onnx(pm, path)
    x = np.random.default_rng(0).random((2, 3, 416, 416), dtype=np.float32)
    return pm, path, x, _torch(pm, x)


def test_yolov2_tiny_is_convs_activations_and_maxpools_only(yolo):
    _, path, _, _ = yolo
    m = onnx.load(str(path))
    ops = collections.Counter(n.op_type for n in m.graph.node)
    assert ops == {"Conv": 9, "LeakyRelu": 8, "MaxPool": 6}, ops          # no Pad, Shape, Gather, Concat, Reshape
    assert not _computed_shapes(m)
    # the last maxpool (size 2, stride 1, 13x13 in and out) is the one darknet pads: bottom and right, as pads
    pads = [list(a.ints) for n in m.graph.node if n.op_type == "MaxPool" for a in n.attribute if a.name == "pads"]
    assert pads == [[0, 0, 0, 0]] * 5 + [[0, 0, 1, 1]]
    assert _dims(m.graph.input[0]) == ["batch", 3, 416, 416]
    assert [o.name for o in m.graph.output] == ["out0"] and _dims(m.graph.output[0]) == ["batch", 125, 13, 13]
    onnx.checker.check_model(m, full_check=True)                          # shapes infer to the declared ones


def test_yolov2_tiny_in_onnx_runtime_matches_pytorch(yolo):
    _, path, x, ref = yolo
    _close(ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x}), ref)


def test_yolov2_tiny_in_openvino_f32_matches_pytorch(yolo):
    pytest.importorskip("openvino")
    from tritnet.export.bench import ov_compile
    _, path, x, ref = yolo
    compiled, setup = ov_compile(path, 1, x.shape, "f32")
    assert setup["got"]["INFERENCE_PRECISION_HINT"] == "f32"
    _close(list(compiled.create_infer_request().infer({0: x}).values()), ref)


def test_a_static_batch_has_no_symbolic_dimension(yolo, tmp_path):
    pm, _, x, ref = yolo
    m = onnx.load(export_onnx(pm, tmp_path / "b2.onnx", batch=2))
    assert _dims(m.graph.input[0]) == [2, 3, 416, 416] and _dims(m.graph.output[0]) == [2, 125, 13, 13]
    _close(ort.InferenceSession(str(tmp_path / "b2.onnx"), providers=["CPUExecutionProvider"]).run(None, {"input": x}),
           ref)


@pytest.mark.parametrize("kind, pads", [("ttt5_224_160", 0), ("yolov3-tiny", 0), ("resnet20", 2), ("resnet20_sttn", 2)])
def test_other_models_export_without_shape_subgraphs(tmp_path, shared_data, kind, pads):
    """ttt5_224_160's maxpools leave input rows out (a negative end pad, which ONNX refuses: 0 there);
    yolov3-tiny has a route (Concat) and an upsample (Resize by constant scales); the ResNets' option-A
    shortcuts pad channels with zeros: one constant Pad each where the channels double."""
    if kind.startswith("resnet"):
        torch.manual_seed(0)
        m = random_bn_(tritnet.create_model(kind).eval())
        if kind == "resnet20":
            tritnet.ternarize_(m, method="twn", layers="all", per_channel=True)
    else:
        m = darknet_net(shared_data, kind, size=None if kind == "ttt5_224_160" else 96)
    pm = to_packed(m)
    model = onnx.load(export_onnx(pm, tmp_path / "m.onnx"))
    assert not _computed_shapes(model)
    assert sum(n.op_type == "Pad" for n in model.graph.node) == pads
    c, h, w = pm.model["input"]["shape"]
    assert _dims(model.graph.input[0]) == ["batch", c, h, w]
    assert all(_dims(o)[0] == "batch" and all(isinstance(d, int) for d in _dims(o)[1:]) for o in model.graph.output)
    x = np.random.default_rng(1).random((2, c, h, w), dtype=np.float32)
    got = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"]).run(None, {"input": x})
    _close(got, _torch(pm, x))
