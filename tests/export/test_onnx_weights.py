"""ONNX export runs in ONNX Runtime with PyTorch's outputs; darknet .weights hold the ternary values."""
import numpy as np
import pytest
import torch

import tritnet
from tritnet.export import export_onnx, to_packed, torch_module
from tests.runtime.helpers import darknet_net, random_bn_

ort = pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("kind", ["resnet20", "resnet20_sttn", "yolov3-tiny"])
def test_onnx_matches_pytorch(tmp_path, kind, shared_data):
    torch.manual_seed(0)
    if kind.startswith("resnet"):
        m = random_bn_(tritnet.create_model(kind).eval())
        if kind == "resnet20":
            tritnet.ternarize_(m, method="twn", layers="all", per_channel=True)
        x = torch.randn(3, 3, 32, 32)
    else:
        m = darknet_net(shared_data, kind, size=96)
        x = torch.rand(3, 3, 96, 96)
    pm = to_packed(m)
    export_onnx(pm, tmp_path / "m.onnx")
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x.numpy()})
    with torch.no_grad():
        ref = torch_module(pm)(x)
    ref = ref if isinstance(ref, tuple) else (ref,)
    for g, r in zip(got, ref):
        assert np.abs(g - r.numpy()).max() <= 1e-4 * max(1, np.abs(r.numpy()).max())


def test_darknet_weights_hold_the_ternary_values(tmp_path, shared_data):
    from tritnet.darknet import build_darknet
    net = darknet_net(shared_data, "yolov2-tiny-voc", size=96)
    net.save_weights(tmp_path / "t.weights")
    plain = build_darknet(net.cfg, tmp_path / "t.weights", method=None)     # what darknet itself runs
    x = torch.rand(1, 3, 96, 96)
    with torch.no_grad():
        assert torch.allclose(plain(x), net(x), atol=1e-5)
    w = plain.layers[0].conv.weight.detach().abs().flatten(1)
    assert ((w == 0) | (w == w.amax(1, keepdim=True))).all()           # one magnitude per filter: ternary
