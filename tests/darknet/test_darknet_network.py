"""DarknetNet: every cfg builds with darknet's parameter count; each layer type against a straight copy
of darknet's C loop (numpy); .weights round trips (float: same bytes; ternary: α·T); errors."""
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from tritnet.darknet import (CfgError, DarknetNet, WeightsError, build_darknet, count_params, load_weights,
                             parse_cfg, parse_cfg_string)
from tritnet.darknet.layers import LAYERS
from tritnet.darknet.layers.activations import ACTIVATIONS
from tritnet.nn import TernaryConv2d

DN = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "darknet"
needs_data = pytest.mark.skipif(not DN.is_dir(), reason=f"darknet data not found at {DN}")

# darknet's own counts (data README), the rest from the weight files / cfg
DARKNET_COUNTS = {"yolov2-voc": 50_676_061, "yolov3-voc": 61_678_657, "yolov2-tiny-voc": 15_867_885,
                  "yolov3-tiny": 8_858_734, "ttt5_224_160": 4_373_741}


def _cfgs():
    """The pjreddie-dialect cfgs of the shared data (the AlexeyAB ones are issue 16's)."""
    alexeyab = {"efficientnet_b0-twn", "yolov4-tiny"}
    return sorted(p for p in (DN / "cfg").glob("*.cfg") if p.stem not in alexeyab) if DN.is_dir() else []


def _net(text, method="twn", seed=0):
    torch.manual_seed(seed)
    net = DarknetNet(parse_cfg_string(text), method).eval()
    for m in net.modules():       # make BN statistics non-trivial
        if getattr(m, "running_var", None) is not None:
            m.running_mean.normal_(0, .1), m.running_var.uniform_(.5, 1.5)
            m.weight.data.uniform_(.8, 1.2)
            if m.bias is not None:
                m.bias.data.normal_(0, .1)
    return net


def _run(net, x):
    with torch.no_grad():
        return [o.numpy() for o in net.forward_all(torch.from_numpy(x))]


# ---------------------------------------------------------------------------------------------- every cfg
@needs_data
@pytest.mark.parametrize("path", _cfgs(), ids=lambda p: p.stem)
def test_every_cfg_builds_with_darknets_parameter_count(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cfg = parse_cfg(path)
    net = DarknetNet(cfg)
    tensors = sum(p.numel() for p in net.parameters())
    tensors += sum(m.running_mean.numel() + m.running_var.numel() for m in net.modules()
                   if getattr(m, "running_var", None) is not None)
    assert tensors == count_params(cfg)
    if path.stem in DARKNET_COUNTS:
        assert tensors == DARKNET_COUNTS[path.stem]
    flags = [i.index for i in net.infos if i.ternary]
    assert [l.index for l in net.layers if isinstance(getattr(l, "conv", None), TernaryConv2d)] == flags
    assert {type(l).__name__ for l in net.layers} <= {c.__name__ for c in LAYERS.values()}


@needs_data
def test_param_count_from_the_written_layers():
    cfg = parse_cfg(DN / "cfg" / "yolov3-tiny-voc_M2.cfg")
    assert DarknetNet(cfg).param_count() == count_params(cfg) == 8_720_134


@needs_data
def test_yolov2_voc_forward_shapes():
    """yolov2-voc (reorg + route) at a small input: the shapes darknet's table gives, scaled."""
    net = DarknetNet(DN / "cfg" / "yolov2-voc.cfg").eval()
    with torch.no_grad():
        outs = net.forward_all(torch.rand(1, 3, 64, 64))
    for info, out in zip(net.infos, outs):
        c, h, w = info.out_shape
        assert tuple(out.shape[1:]) == (c, h * 64 // 416, w * 64 // 416), info.index


# ---------------------------------------------------------------------------------------------- darknet's loops
def ref_maxpool(x, size, stride, pad):
    c, h, w = x.shape
    oh, ow = (h + pad - size) // stride + 1, (w + pad - size) // stride + 1
    out = np.full((c, oh, ow), -np.finfo(np.float32).max, np.float32)
    for k in range(c):
        for i in range(oh):
            for j in range(ow):
                for n in range(size):
                    for m in range(size):
                        y, xx = -(pad // 2) + i * stride + n, -(pad // 2) + j * stride + m
                        if 0 <= y < h and 0 <= xx < w:
                            out[k, i, j] = max(out[k, i, j], x[k, y, xx])
    return out


def ref_reorg(x, stride, forward):
    c, h, w = x.shape
    flat, out = x.reshape(-1), np.zeros(x.size, np.float32)
    out_c = c // (stride * stride)
    for k in range(c):
        for j in range(h):
            for i in range(w):
                in_index = i + w * (j + h * k)
                c2, offset = k % out_c, k // out_c
                w2, h2 = i * stride + offset % stride, j * stride + offset // stride
                out_index = w2 + w * stride * (h2 + h * stride * c2)
                if forward:
                    out[out_index] = flat[in_index]
                else:
                    out[in_index] = flat[out_index]
    return out


def ref_shortcut(add, out, alpha, beta):
    (c1, h1, w1), (c2, h2, w2) = add.shape, out.shape
    stride, sample = max(w1 // w2, 1), max(w2 // w1, 1)
    out = out.copy()
    for k in range(min(c1, c2)):
        for j in range(min(h1, h2)):
            for i in range(min(w1, w2)):
                out[k, j * sample, i * sample] = alpha * out[k, j * sample, i * sample] + beta * add[k, j * stride, i * stride]
    return out


@pytest.mark.parametrize("size,stride,pad,hw", [(2, 2, None, 9), (4, 4, None, 18), (5, 5, None, 45), (2, 1, None, 7),
                                                (3, 3, None, 32), (3, 2, 1, 8), (3, 1, 2, 5)])
def test_maxpool_matches_darknet(size, stride, pad, hw):
    pad_line = f"padding={pad}\n" if pad is not None else ""
    net = _net(f"[net]\nwidth={hw}\nheight={hw}\nchannels=2\n[maxpool]\nsize={size}\nstride={stride}\n{pad_line}")
    x = np.random.default_rng(0).standard_normal((1, 2, hw, hw)).astype(np.float32)
    out = _run(net, x)[0][0]
    assert out.shape == net.infos[0].out_shape
    assert np.array_equal(out, ref_maxpool(x[0], size, stride, size - 1 if pad is None else pad))


@pytest.mark.parametrize("reverse", [0, 1])
def test_reorg_element_order_matches_darknet(reverse):
    c, hw = (8, 6) if not reverse else (16, 3)
    net = _net(f"[net]\nwidth={hw}\nheight={hw}\nchannels={c}\n[reorg]\nstride=2\nreverse={reverse}\n")
    x = np.arange(c * hw * hw, dtype=np.float32).reshape(1, c, hw, hw)
    out = _run(net, x)[0]
    assert out.shape[1:] == net.infos[0].out_shape
    # darknet: forward reorg calls reorg_cpu(..., forward=0), reverse=1 calls it with forward=1
    assert np.array_equal(out.reshape(-1), ref_reorg(x[0], 2, forward=bool(reverse)))
    if not reverse:   # not a plain space-to-depth
        assert not np.array_equal(out, torch.nn.functional.pixel_unshuffle(torch.from_numpy(x), 2).numpy())


@pytest.mark.parametrize("c1,hw1,c2,hw2", [(4, 8, 4, 8), (6, 8, 4, 8), (3, 8, 5, 8), (4, 8, 6, 4), (4, 4, 3, 8)])
def test_shortcut_between_sizes_matches_darknet(c1, hw1, c2, hw2):
    """from-layer (c1, hw1) added into the previous layer (c2, hw2), darknet's shortcut_cpu."""
    down = "[maxpool]\nsize=2\nstride=2\n" if hw2 < hw1 else ("[upsample]\nstride=2\n" if hw2 > hw1 else "")
    text = (f"[net]\nwidth={hw1}\nheight={hw1}\nchannels=3\n"
            f"[convolutional]\nfilters={c1}\nsize=1\nactivation=linear\n{down}"
            f"[convolutional]\nfilters={c2}\nsize=1\nactivation=linear\n"
            f"[shortcut]\nfrom=0\nalpha=0.5\nbeta=2\nactivation=leaky\n")
    net = _net(text)
    outs = _run(net, np.random.default_rng(1).standard_normal((1, 3, hw1, hw1)).astype(np.float32))
    ref = ref_shortcut(outs[0][0], outs[-2][0], np.float32(.5), np.float32(2))
    ref = np.where(ref > 0, ref, np.float32(.1) * ref)
    assert np.allclose(outs[-1][0], ref, atol=1e-6)


def test_route_upsample_softmax_connected_crop_dropout():
    text = """[net]
width=8
height=8
channels=3
[convolutional]
filters=4
size=3
pad=1
activation=relu
[maxpool]
size=2
stride=2
[upsample]
stride=2
[route]
layers=-1,0
[crop]
crop_height=6
crop_width=6
[dropout]
probability=.3
[connected]
output=10
activation=linear
[softmax]
groups=2
temperature=2
[cost]
"""
    net = _net(text)
    x = np.random.default_rng(2).standard_normal((2, 3, 8, 8)).astype(np.float32)
    o = _run(net, x)
    assert np.array_equal(o[2], o[1].repeat(2, 2).repeat(2, 3))                    # nearest upsample
    assert np.array_equal(o[3], np.concatenate([o[2], o[0]], 1))                    # route order
    assert np.allclose(o[4], o[3][:, :, 1:7, 1:7] * 2 - 1)                          # crop at inference: 2x-1
    assert np.array_equal(o[5], o[4])                                               # dropout: identity
    logits = o[6].reshape(2, 2, 5) / 2
    e = np.exp(logits - logits.max(2, keepdims=True))
    assert np.allclose(o[7], (e / e.sum(2, keepdims=True)).reshape(2, 10), atol=1e-6)
    assert net.output_index == 7 and np.array_equal(o[8], o[7])                    # cost passes its input
    with torch.no_grad():
        assert np.array_equal(net(torch.from_numpy(x)).numpy(), o[7])


def test_region_and_yolo_activations():
    text = """[net]
width=4
height=4
channels=14
[region]
classes=2
num=2
softmax=1
anchors=1,1,2,2
[yolo]
classes=2
num=3
mask=1,2
anchors=1,1,2,2,3,3
"""
    net = _net(text)
    x = np.random.default_rng(3).standard_normal((1, 14, 4, 4)).astype(np.float32)
    region, yolo = (o.reshape(2, 7, 4, 4) for o in _run(net, x)[:2])
    raw = x.reshape(2, 7, 4, 4)
    sig = 1 / (1 + np.exp(-raw))
    assert np.allclose(region[:, [0, 1, 4]], sig[:, [0, 1, 4]], atol=1e-6)
    assert np.array_equal(region[:, 2:4], raw[:, 2:4])
    e = np.exp(raw[:, 5:])
    assert np.allclose(region[:, 5:], e / e.sum(1, keepdims=True), atol=1e-6)       # softmax over classes
    assert np.allclose(yolo[:, [0, 1, 4, 5, 6]], 1 / (1 + np.exp(-region[:, [0, 1, 4, 5, 6]])), atol=1e-6)
    assert np.array_equal(yolo[:, 2:4], raw[:, 2:4])


def test_region_softmax_0_uses_a_logistic_per_class():
    net = _net("[net]\nwidth=4\nheight=4\nchannels=7\n[region]\nclasses=2\nnum=1\nsoftmax=0\nanchors=1,1\n")
    x = np.random.default_rng(4).standard_normal((1, 7, 4, 4)).astype(np.float32)
    region = _run(net, x)[0].reshape(7, 4, 4)
    sig = 1 / (1 + np.exp(-x[0]))
    assert np.allclose(region[[0, 1, 4, 5, 6]], sig[[0, 1, 4, 5, 6]], atol=1e-6)
    assert np.array_equal(region[2:4], x[0, 2:4])


def test_activations_are_darknets():
    x = torch.tensor([-5., -1.5, -.5, 0., .5, 1.5, 5.])
    assert torch.allclose(ACTIVATIONS["leaky"](x), torch.where(x > 0, x, .1 * x))
    assert torch.allclose(ACTIVATIONS["ramp"](x), x * (x > 0) + .1 * x)
    assert torch.allclose(ACTIVATIONS["plse"](x), torch.tensor([-.01, .3125, .4375, .5, .5625, .6875, 1.01]))
    assert torch.allclose(ACTIVATIONS["stair"](x), torch.tensor([-3., -1., -.5, 0., 0., .5, 2.]))
    assert set(ACTIVATIONS) >= {"linear", "logistic", "loggy", "relu", "elu", "selu", "relie", "tanh",
                                "hardtan", "lhtan"}


def test_batchnorm_is_darknets_cpu_formula_and_trains():
    net = _net("[net]\nwidth=5\nheight=5\nchannels=2\n[convolutional]\nbatch_normalize=1\nfilters=3\nsize=1\n"
               "activation=linear\n")
    layer = net.layers[0]
    x = torch.rand(4, 2, 5, 5)
    bn = layer.bn
    with torch.no_grad():
        z = layer.conv(x)
        want = (z - bn.running_mean[:, None, None]) / (bn.running_var.sqrt()[:, None, None] + 1e-6)
        want = want * bn.weight[:, None, None] + bn.bias[:, None, None]
        assert torch.allclose(net(x), want, atol=1e-6)
    net.train()
    before = bn.running_mean.clone()
    y = net(x)
    y.sum().backward()
    assert layer.conv.weight.grad is not None
    batch_mean = z.mean((0, 2, 3))
    assert torch.allclose(bn.running_mean, .99 * before + .01 * batch_mean, atol=1e-6)   # momentum .01
    zc = z - batch_mean[:, None, None]
    var = (zc ** 2).sum((0, 2, 3)) / (4 * 25 - 1)                                        # divisor n-1
    assert torch.allclose(y, zc / (var.sqrt() + 1e-6)[:, None, None] * bn.weight[:, None, None]
                          + bn.bias[:, None, None], atol=1e-5)


# ---------------------------------------------------------------------------------------------- .weights
TERNARY = """[net]
width=16
height=16
channels=3
[convolutional]
batch_normalize=1
filters=8
size=3
pad=1
activation=leaky
ternary=1
[maxpool]
size=2
stride=2
[convolutional]
filters=6
size=3
pad=1
activation=leaky
ternary=1
[convolutional]
filters=4
size=1
activation=linear
[connected]
output=5
batch_normalize=1
activation=linear
"""


@pytest.mark.parametrize("method", ["twn", "ttn", "sttn"])
def test_ternary_layers_write_alpha_t_and_load_back(tmp_path, method):
    net = _net(TERNARY, method)
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        y = net(x)
    path = tmp_path / "t.weights"
    net.save_weights(path)
    w = load_weights(parse_cfg_string(TERNARY), path)
    for i in (0, 2):
        mags = np.abs(w.layers[i]["weights"]).reshape(w.layers[i]["weights"].shape[0], -1)
        per_channel = [np.unique(m[m > 0]) for m in mags]
        assert all(len(u) == 1 for u in per_channel)                  # each filter: {-α, 0, +α}
        if method != "sttn":                                          # TWN/TTN: one α per layer
            assert len(np.unique(mags[mags > 0])) == 1
    assert len(np.unique(np.abs(w.layers[3]["weights"]))) > 10       # the float layer stays float
    assert net.param_count() == count_params(parse_cfg_string(TERNARY)) == (8 * 4 + 8 * 27) + 6 * 73 + 4 * 7 + (
        5 + 5 * 4 * 8 * 8 + 3 * 5) == (len(path.read_bytes()) - 20) // 4
    back = build_darknet(parse_cfg_string(TERNARY), path, method)    # the same ternary network
    stock = build_darknet(parse_cfg_string(TERNARY), path, None)     # what stock darknet computes
    with torch.no_grad():
        assert torch.allclose(back(x), y, atol=1e-5)
        assert torch.allclose(stock(x), y, atol=1e-5)
        for i in (0, 2):
            assert torch.allclose(back.layers[i].conv.to_float().weight, net.layers[i].conv.to_float().weight,
                                  rtol=1e-6, atol=1e-7)


@needs_data
@pytest.mark.parametrize("cfg,weights", [("reference/cfg/ttt4_b1.cfg", "weights/ttt4_minloss.weights"),
                                         ("reference/cfg/cifar_minin_b1.cfg", "weights/cifar_minin.weights")])
def test_float_network_read_write_same_bytes(tmp_path, cfg, weights):
    net = build_darknet(DN / cfg, DN / weights)
    out = tmp_path / "w.weights"
    net.save_weights(out)
    assert out.read_bytes() == (DN / weights).read_bytes()          # cifar_minin keeps its v0.1 header


@needs_data
def test_prefix_file_fills_the_first_layers():
    net = DarknetNet(DN / "cfg" / "ttt5_224_160.cfg")
    before = net.layers[7].conv.weight.detach().clone()
    w = net.load_weights(DN / "weights" / "ttt5_pre_141_conv7.weights", prefix=True)
    assert (w.filled, w.end_layer) == (4, 7)
    assert np.array_equal(net.layers[6].conv.weight.detach().numpy(), w.layers[6]["weights"])
    assert torch.equal(net.layers[7].conv.weight, before)


def test_ternary_network_trains_its_float_shadow():
    net = _net(TERNARY, "twn").train()
    conv = net.layers[0].conv
    assert isinstance(conv, TernaryConv2d)
    net(torch.rand(2, 3, 16, 16)).square().sum().backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0     # straight-through
    assert len(torch.unique(conv.to_float().weight.abs())) == 2                  # {0, α}


def test_weights_errors_name_both_sizes(tmp_path):
    net = _net(TERNARY, None)
    good = tmp_path / "good.weights"
    n = net.save_weights(good)
    (tmp_path / "long.weights").write_bytes(good.read_bytes() + b"\0" * 8)
    with pytest.raises(WeightsError, match=rf"needs {n} bytes, the file has {n + 8} bytes"):
        DarknetNet(parse_cfg_string(TERNARY)).load_weights(tmp_path / "long.weights")
    (tmp_path / "cut.weights").write_bytes(good.read_bytes()[:n - 6])
    with pytest.raises(WeightsError, match=rf"ends inside layer 4 .*the whole network {n} bytes.* has {n - 6} bytes"):
        DarknetNet(parse_cfg_string(TERNARY)).load_weights(tmp_path / "cut.weights")
    assert issubclass(WeightsError, ValueError)


def test_unsupported_settings_are_cfg_errors():
    with pytest.raises(CfgError, match=r"t.cfg:5: \[region\]: coords=6"):
        DarknetNet(parse_cfg_string("[net]\nwidth=2\nheight=2\nchannels=8\n[region]\nclasses=1\ncoords=6\n"
                                    "num=1\n", path="t.cfg"))
    with pytest.raises(ValueError, match="unknown ternarization method"):
        DarknetNet(parse_cfg_string(TERNARY), "xnor")
