"""Every layer type of the darknet vision cfgs, run by tritnet_rt against the same packed graph in PyTorch
float32 (tritnet.export.torch_module): float layers exactly, ternary layers within the int8 activation error."""
from pathlib import Path

import numpy as np
import pytest
import torch

from tritnet.export import to_packed, torch_module
from tritnet_rt.net import Net
from tests.runtime.helpers import darknet_net, random_bn_

SMALL_CFG = Path(__file__).resolve().parents[1] / "fixtures" / "cfg" / "small_runtime.cfg"


def _compare(pm, x, ternary):
    with torch.no_grad():
        ref = torch_module(pm)(torch.from_numpy(x))
    ref = [r.numpy() for r in (ref if isinstance(ref, tuple) else (ref,))]
    got = Net(pm)(x)
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        err = np.abs(g.reshape(r.shape) - r).max() / np.abs(r).max()
        # float: the same float32 arithmetic in another order; ternary: 8-bit activations at every conv
        assert err <= (0.02 if ternary else 1e-5), err


@pytest.mark.parametrize("ternary", [False, True], ids=["float", "ternary"])
@pytest.mark.parametrize("name", ["yolov2-voc", "yolov3-tiny"])     # reorg + route; upsample + two yolo heads
def test_detector_cfgs(shared_data, name, ternary):
    net = darknet_net(shared_data, name, size=96, method="twn" if ternary else None)
    x = np.random.default_rng(0).random((2, 3, 96, 96), dtype=np.float32)
    _compare(to_packed(net), x, ternary)


@pytest.mark.parametrize("ternary", [False, True], ids=["float", "ternary"])
def test_shortcut_dropout_route_avgpool_connected_softmax(tmp_path, ternary):
    from tritnet.darknet import build_darknet, parse_cfg, set_ternary
    path = tmp_path / "small.cfg"
    path.write_text(SMALL_CFG.read_text())
    cfg = parse_cfg(path)
    if ternary:
        set_ternary(cfg)
    torch.manual_seed(0)
    net = random_bn_(build_darknet(cfg, None, method="twn", per_channel=True))
    pm = to_packed(net)
    assert {n["op"] for n in pm.graph["nodes"]} >= {"conv", "maxpool", "add", "identity", "concat", "avgpool",
                                                     "linear", "softmax"}
    x = np.random.default_rng(1).random((3, 3, 24, 24), dtype=np.float32)
    _compare(pm, x, ternary)
