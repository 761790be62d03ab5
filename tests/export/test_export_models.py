"""The exported graph computes what the PyTorch model computes (ResNet, STTN, darknet), in float."""
import numpy as np
import pytest
import torch

import tritnet
from tritnet.export import to_packed, torch_module
from tests.runtime.helpers import darknet_net, random_bn_


def _close(a, b, tol=1e-4):
    a, b = (t.detach().numpy() if hasattr(t, "detach") else t for t in (a, b))
    assert np.abs(a - b).max() <= tol * max(1.0, np.abs(b).max()), np.abs(a - b).max()


def test_cifar_resnet_float_and_ternary():
    torch.manual_seed(0)
    m = random_bn_(tritnet.create_model("resnet20").eval())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        _close(torch_module(to_packed(m))(x), m(x))
        tritnet.ternarize_(m, method="twn", layers="all")
        _close(torch_module(to_packed(m))(x), m(x))


def test_sttn_is_merged_into_one_ternary_conv_per_pair():
    torch.manual_seed(0)
    m = random_bn_(tritnet.create_model("resnet20_sttn").eval())
    pm = to_packed(m)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        _close(torch_module(pm)(x), m(x))
        merged = tritnet.merge_sttn_(m)
        _close(torch_module(to_packed(merged))(x), m(x))
    convs = [n for n in pm.graph["nodes"] if n["op"] == "conv" and n["attrs"].get("input") == "ternary"]
    assert len(convs) == 18 and all(pm.dtypes[n["tensors"]["weight"]] == "tern2" for n in convs)


@pytest.mark.parametrize("name", ["yolov2-voc", "yolov3-tiny"])
def test_darknet_graph_matches_the_darknet_network(shared_data, name):
    net = darknet_net(shared_data, name, size=96)
    pm = to_packed(net)
    assert pm.arch["kind"] == "darknet" and "[net]" in pm.arch["cfg"]
    x = torch.rand(1, 3, 96, 96)
    with torch.no_grad():
        outs = net.forward_all(x)
        got = torch_module(pm)(x)
    got = got if isinstance(got, tuple) else (got,)
    for g, i in zip(got, net.head_indices):
        _close(g, outs[i - 1])          # the head's input: the raw conv output


def test_unsupported_models_are_clear_errors():
    with pytest.raises(ValueError, match="cannot export a Sequential"):
        to_packed(torch.nn.Sequential(torch.nn.Conv2d(3, 3, 3)))
    m = tritnet.create_model("resnet20")
    tritnet.ternarize_(m, method="ttn", layers="all", t_ex=2)
    with pytest.raises(ValueError, match="t_ex=2"):
        to_packed(m)


def test_alexeyab_layers_are_refused_by_the_exporter_not_exported_wrong(write_cfg_text):
    """A feature the packed format cannot express yet (here AlexeyAB's maxpool stride_x/stride_y) would export as a
    wrong graph: refused, naming the layer, its cfg line and the feature."""
    import pytest
    from tritnet.darknet import build_darknet, parse_cfg
    from tritnet.export import to_packed
    path = write_cfg_text("[net]\nwidth=16\nheight=16\nchannels=3\n\n[convolutional]\nbatch_normalize=1\nfilters=4\n"
                          "size=3\nstride=1\npad=1\nactivation=leaky\n\n[maxpool]\nsize=2\nstride_x=2\nstride_y=1\n")
    net = build_darknet(parse_cfg(path), None, method=None)
    assert net.dialect == "alexeyab"
    with pytest.raises(ValueError, match=r"layer 1 \(\[maxpool\], .*t.cfg:\d+\): maxpool:strides "
                                         r"is not supported by the packed format yet"):
        to_packed(net)


@pytest.fixture
def write_cfg_text(tmp_path):
    def write(text):
        (tmp_path / "t.cfg").write_text(text)
        return tmp_path / "t.cfg"
    return write
