"""DarknetNet: every cfg builds with darknet's parameter count; each layer type against a straight copy
of darknet's C loop (numpy); .weights round trips (float: same bytes; ternary: α·T); errors."""
import warnings

import numpy as np
import pytest
import torch

from tritnet.darknet import (CfgError, DarknetNet, WeightsError, build_darknet, count_params, load_weights,
                             parse_cfg, parse_cfg_string)
from tritnet.darknet.layers import LAYERS
from tritnet.darknet.layers.activations import ACTIVATIONS
from tritnet.nn import TernaryConv2d
from tests.paths import SHARED_DATA

DN = SHARED_DATA / "darknet"
needs_data = pytest.mark.skipif(not DN.is_dir(), reason=f"darknet data not found at {DN}")

# darknet's own counts (data README), the rest from the weight files / cfg
DARKNET_COUNTS = {"yolov2-voc": 50_676_061, "yolov3-voc": 61_678_657, "yolov2-tiny-voc": 15_867_885,
                  "yolov3-tiny": 8_858_734, "ttt5_224_160": 4_373_741, "yolov4-tiny": 6_062_814,
                  "efficientnet_b0-twn": 4_345_615}


def _cfgs():
    """Every cfg of the shared data, both dialects."""
    return sorted((DN / "cfg").glob("*.cfg")) if DN.is_dir() else []


def _net(text, method="twn", seed=0, dialect=None):
    torch.manual_seed(seed)
    net = DarknetNet(parse_cfg_string(text, dialect=dialect), method).eval()
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


# ---------------------------------------------------------------------------------------------- AlexeyAB / darknetTWN
AAB = "[net]\nwidth={w}\nheight={h}\nchannels={c}\n"


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_route_groups_take_one_channel_range_of_every_input():
    """[route] groups=2 group_id=1: the second half of each input's channels, concatenated in layer order."""
    net = _net(AAB.format(w=4, h=4, c=6) + "[convolutional]\nfilters=4\nsize=1\nactivation=linear\n"
               "[route]\nlayers=-1,-1,0\ngroups=2\ngroup_id=1\n[route]\nlayers=0\ngroups=2\n")
    assert net.dialect == "alexeyab" and net.infos[1].out_shape == (6, 4, 4) and net.infos[2].out_shape == (2, 4, 4)
    o = _run(net, _rand(1, 6, 4, 4))
    half = o[0][:, 2:]
    assert np.array_equal(o[1], np.concatenate([half, half, half], 1))
    assert np.array_equal(o[2], o[0][:, :2])                     # group_id defaults to 0


def ref_shortcut_multilayer(prev, adds, weights, norm, per, training):
    """AlexeyAB's shortcut_multilayer_cpu (one image), weights already in file order; inference first applies
    fuse_conv_batchnorm's normalisation (lrelu: max(w, 0.001)) and then runs with no normalisation."""
    c = prev.shape[0]
    n = len(adds)
    out = np.zeros_like(prev)
    flat_prev, size = prev.reshape(-1), prev.size
    w = None
    if weights is not None:
        w = weights.astype(np.float32).reshape(n + 1, -1)
        if norm == "softmax":
            e = np.exp(w - w.max(0))
            w = e / (np.float32(1e-4) + e.sum(0))
        elif norm == "relu":
            r = np.maximum(w, 0) if training else np.where(w > 0.001, w, np.float32(0.001))
            w = r / (np.float32(1e-4) + r.sum(0))
    flat = out.reshape(-1)
    step = size // (c if per == "per_channel" else 1)
    for src_i in range(size):
        col = src_i // step if w is not None and w.shape[1] > 1 else 0
        flat[src_i] = flat_prev[src_i] * (w[0, col] if w is not None else 1)
        for i, add in enumerate(adds, 1):
            a = add.reshape(-1)
            if src_i < a.size:
                flat[src_i] += a[src_i] * (w[i, col] if w is not None else 1)
    return out


@pytest.mark.parametrize("per,norm", [(None, None), ("per_feature", "none"), ("per_feature", "relu"),
                                      ("per_channel", "softmax"), ("per_channel", "relu"), ("per_layer", "avg_relu")])
def test_alexeyab_shortcut_matches_shortcut_multilayer_cpu(per, norm):
    """Several sources with other channel counts (3 and 6 into 4), optionally weighted and normalised."""
    weighted = f"weights_type={per}\nweights_normalization={norm}\n" if per else ""
    net = _net(AAB.format(w=5, h=3, c=2) + "[convolutional]\nfilters=3\nsize=1\nactivation=linear\n"
               "[convolutional]\nfilters=6\nsize=1\nactivation=linear\n[convolutional]\nfilters=4\nsize=1\n"
               f"activation=linear\n[shortcut]\nfrom=0,-2\nactivation=leaky\n{weighted}")
    layer = net.layers[3]
    n_w = {None: 0, "per_feature": 3, "per_layer": 3, "per_channel": 12}[per]
    assert net.infos[3].n_params == n_w and net.param_count() == (3 + 6) + (6 + 18) + (4 + 24) + n_w
    if n_w:
        layer.load_arrays({"weights": np.array([.3, -.2, .9, 1.5, .0005, 2., -1., .7, .1, .2, .3, .4][:n_w],
                                               np.float32)})
    x = _rand(1, 2, 3, 5, seed=3)
    for training in (False, True):
        net.train(training)
        with torch.no_grad():
            outs = [o.numpy() for o in net.forward_all(torch.from_numpy(x))]
        w = layer.weight.detach().numpy() if n_w else None
        kind = {"per_layer": "per_feature"}.get(per, per)
        ref = ref_shortcut_multilayer(outs[2][0], [outs[0][0], outs[1][0]], w, {"avg_relu": "relu"}.get(norm, norm),
                                      kind, training)
        ref = np.where(ref > 0, ref, np.float32(.1) * ref)
        assert np.allclose(outs[3][0], ref, atol=1e-6), training
    net.eval()
    assert np.array_equal(layer.arrays()["weights"], w) if n_w else layer.arrays() == {}


def test_scale_channels_sam_empty_and_local_avgpool():
    net = _net(AAB.format(w=5, h=4, c=3) +
               "[convolutional]\nfilters=4\nsize=1\nactivation=linear\n"    # 0: (4,4,5)
               "[avgpool]\n"                                                   # 1: (4,1,1)
               "[scale_channels]\nfrom=0\nactivation=leaky\n"                  # 2: 0 · 1 per channel
               "[convolutional]\nfilters=1\nsize=1\nactivation=logistic\n"   # 3: (1,4,5)
               "[scale_channels]\nfrom=2\nscale_wh=1\n"                        # 4: 2 · 3 per position
               "[sam]\nfrom=0\n"                                               # 5: 0 · 4 element by element
               "[empty]\n"                                                     # 6
               "[local_avgpool]\nsize=3\nstride=2\n")                          # 7
    assert net.dialect == "alexeyab"
    o = _run(net, _rand(1, 3, 4, 5, seed=4))
    ref2 = o[0] * o[1]
    assert np.allclose(o[2], np.where(ref2 > 0, ref2, .1 * ref2), atol=1e-7)
    assert np.array_equal(o[4], o[2] * o[3]) and np.array_equal(o[5], o[0] * o[4]) and np.array_equal(o[6], o[5])
    # local_avgpool: windows at -(pad/2) + i·stride, the mean of the positions inside the input (pad = size-1 = 2)
    x = o[6][0]
    want = np.zeros(net.infos[7].out_shape, np.float32)
    for i in range(want.shape[1]):
        for j in range(want.shape[2]):
            rows = [r for r in range(-1 + 2 * i, -1 + 2 * i + 3) if 0 <= r < 4]
            cols = [q for q in range(-1 + 2 * j, -1 + 2 * j + 3) if 0 <= q < 5]
            want[:, i, j] = x[:, rows][:, :, cols].mean((1, 2))
    assert want.shape == (4, 2, 3) and np.allclose(o[7][0], want, atol=1e-6)


@pytest.mark.parametrize("sx,sy,size,pad,dilation", [(2, 1, 3, 1, 1), (1, 3, 2, 0, 1), (1, 1, 3, 1, 2),
                                                    (2, 2, 3, 1, 3)])
def test_alexeyab_conv_strides_and_dilation_match_im2col(sx, sy, size, pad, dilation):
    """stride_x/stride_y and dilation as AlexeyAB's im2col_cpu_ext reads the input (padding·dilation)."""
    net = _net(AAB.format(w=9, h=8, c=2) + f"[convolutional]\nfilters=3\nsize={size}\npad={pad}\nstride_x={sx}\n"
               f"stride_y={sy}\ndilation={dilation}\nactivation=linear\n", dialect="alexeyab")
    x = _rand(2, 8, 9, seed=5)
    out = _run(net, x[None])[0][0]
    w, b = net.layers[0].conv.weight.detach().numpy(), net.layers[0].conv.bias.detach().numpy()
    p = size // 2 if pad else 0
    want = np.zeros(net.infos[0].out_shape, np.float64)
    for o in range(3):
        for i in range(want.shape[1]):
            for j in range(want.shape[2]):
                acc = b[o]
                for c in range(2):
                    for ki in range(size):
                        for kj in range(size):
                            r, q = i * sy - p * dilation + ki * dilation, j * sx - p * dilation + kj * dilation
                            if 0 <= r < 8 and 0 <= q < 9:
                                acc += w[o, c, ki, kj] * x[c, r, q]
                want[o, i, j] = acc
    assert out.shape == want.shape and np.allclose(out, want, atol=1e-5)


def test_maxpool_stride_x_stride_y():
    net = _net(AAB.format(w=7, h=6, c=2) + "[maxpool]\nsize=2\nstride_x=1\nstride_y=2\n", dialect="alexeyab")
    x = _rand(1, 2, 6, 7, seed=6)
    out = _run(net, x)[0][0]
    assert out.shape == net.infos[0].out_shape == (2, 3, 7)     # (6+1-2)/2+1, (7+1-2)/1+1
    for i in range(3):
        for j in range(7):
            win = x[0, :, 2 * i:2 * i + 2, j:j + 2]                # offset -(1/2) = 0
            assert np.array_equal(out[:, i, j], win.reshape(2, -1).max(1))


def test_alexeyab_and_darknettwn_activations():
    x = torch.tensor([-25., -3., -1., -.5, 0., .5, 1., 7., 25.])
    xs = x.numpy().astype(np.float64)
    sp = np.where(xs > 20, xs, np.where(xs < -20, np.exp(xs), np.log1p(np.exp(xs))))
    assert np.allclose(ACTIVATIONS["mish"](x).numpy(), xs * np.tanh(sp), atol=1e-6)
    assert ACTIVATIONS["mish"](torch.tensor([1.]))[0].item() == pytest.approx(0.8650983882673103, abs=1e-6)
    assert ACTIVATIONS["hard_mish"](x).tolist() == [0, 0, -.5, -.375, 0, .5, 1, 7, 25]
    assert ACTIVATIONS["relu6"](x).tolist() == [0, 0, 0, 0, 0, .5, 1, 6, 6]
    assert ACTIVATIONS["revleaky"](x).tolist() == pytest.approx([-2.5, -.3, -.1, -.05, 0, .5, 1, 7, 25])
    assert np.allclose(ACTIVATIONS["swish"](x).numpy(), xs / (1 + np.exp(-xs)), atol=1e-6)
    gelu = 0.5 * xs * (1 + np.tanh(0.797885 * xs + 0.035677 * xs ** 3))     # AlexeyAB's constants
    assert np.allclose(ACTIVATIONS["gelu"](x).numpy(), gelu, atol=1e-6)
    c = torch.tensor([1., -1., 3.]).view(1, 3, 1, 1)
    assert np.allclose(ACTIVATIONS["normalize_channels"](c).flatten(), [1 / 4.0001, 0, 3 / 4.0001])
    c = torch.tensor([0., np.log(2.)]).view(1, 2, 1, 1)
    assert np.allclose(ACTIVATIONS["normalize_channels_softmax"](c).flatten(), [1 / 3.0001, 2 / 3.0001])
    c = torch.tensor([10., 10 + np.log(2.)]).view(1, 2, 1, 1)      # max subtracted: exp(-ln 2), exp(0)
    assert np.allclose(ACTIVATIONS["normalize_channels_softmax_maxval"](c).flatten(), [.5 / 1.5001, 1 / 1.5001])


def test_yolo_scale_x_y_and_new_coords():
    """x, y → scale·σ(t) − (scale−1)/2; new_coords=1: no logistic anywhere, only that scaling."""
    head = "[yolo]\nclasses=1\nnum=1\nmask=0\nanchors=4,4\nscale_x_y=1.05\n"
    x = _rand(1, 6, 2, 2, seed=7)
    sig = 1 / (1 + np.exp(-x[0].astype(np.float64)))
    out = _run(_net(AAB.format(w=2, h=2, c=6) + head), x)[0][0]
    assert np.allclose(out[:2], 1.05 * sig[:2] - 0.025, atol=1e-6) and np.array_equal(out[2:4], x[0, 2:4])
    assert np.allclose(out[4:], sig[4:], atol=1e-6)
    out = _run(_net(AAB.format(w=2, h=2, c=6) + head + "new_coords=1\n"), x)[0][0]
    assert np.allclose(out[:2], np.float32(1.05) * x[0, :2] + np.float32(-0.025), atol=1e-7)
    assert np.array_equal(out[2:], x[0, 2:])


def test_alexeyab_batch_norm_is_its_formula_and_trains():
    """eval: (x − μ)/sqrt(var + 1e-5)·γ + β (fuse_conv_batchnorm); training: batch statistics inside the same
    sqrt, rolling statistics moved by 0.1; the gradient is the formula's."""
    net = _net("[net]\nwidth=5\nheight=5\nchannels=2\n[convolutional]\nbatch_normalize=1\nfilters=3\nsize=1\n"
               "activation=linear\n", dialect="alexeyab")
    layer = net.layers[0]
    bn, x = layer.bn, torch.rand(4, 2, 5, 5)
    assert (bn.eps, bn.momentum, bn.eps_on_std) == (1e-5, 0.1, False)
    with torch.no_grad():
        z = layer.conv(x)
        want = (z - bn.running_mean[:, None, None]) / (bn.running_var[:, None, None] + 1e-5).sqrt()
        assert torch.allclose(net(x), want * bn.weight[:, None, None] + bn.bias[:, None, None], atol=1e-6)
        g, h = bn.scale_shift()
        assert torch.allclose(net(x), (z * g.float()[:, None, None] + h.float()[:, None, None]), atol=1e-6)
    net.train()
    before = bn.running_mean.clone()
    zz = layer.conv(x).detach().requires_grad_()
    y = bn(zz)
    mean, var = zz.mean((0, 2, 3)), zz.var((0, 2, 3), unbiased=True)
    plain = (zz - mean[:, None, None]) / (var[:, None, None] + 1e-5).sqrt() * bn.weight[:, None, None] \
        + bn.bias[:, None, None]
    assert torch.allclose(y, plain, atol=1e-5)
    assert torch.allclose(bn.running_mean, .9 * before + .1 * mean.detach(), atol=1e-6)
    gy = torch.rand_like(y)
    g1 = torch.autograd.grad(y, [zz, bn.weight, bn.bias], gy, retain_graph=True)
    g2 = torch.autograd.grad(plain, [zz, bn.weight, bn.bias], gy)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(g1, g2))


def test_darknettwn_method_holds_darknets_ternary_weights(tmp_path):
    """method="darknettwn": the ternary=1 convs hold darknetTWN's α·T of the loaded floats, the others stay float;
    saving writes ternarize_weights' bytes; a float file round trips through it unchanged elsewhere."""
    from tritnet.darknet import darknettwn_ternarize, ternarize_weights
    cfg = parse_cfg_string(TERNARY)
    src = tmp_path / "float.weights"
    _net(TERNARY, None, seed=3).save_weights(src)
    net = build_darknet(cfg, src, "darknettwn")
    w = load_weights(cfg, src)
    for i in (0, 2):
        t, alpha, delta = darknettwn_ternarize(w.layers[i]["weights"])
        assert np.array_equal(net.layers[i].conv.weight.detach().numpy(), t)
        assert set(np.unique(np.abs(t))) == {0, alpha} and 0 < delta < alpha
    assert np.array_equal(net.layers[3].conv.weight.detach().numpy(), w.layers[3]["weights"])
    net.save_weights(tmp_path / "net.weights")
    ternarize_weights(cfg, src, tmp_path / "fn.weights")
    assert (tmp_path / "net.weights").read_bytes() == (tmp_path / "fn.weights").read_bytes()
    with pytest.raises(ValueError, match="takes no options"):
        DarknetNet(cfg, "darknettwn", per_channel=True)


def test_sse_sum_is_darknettwns_order():
    """Four float32 lanes (j, j+4, ...), (l0+l2)+(l1+l3), then the tail one by one: here 2^24+4, where a sequential
    float32 sum gives 2^24 and the exact sum is 2^24+5."""
    from tritnet.darknet.twn import sse_sum
    a = np.array([2 ** 24, 1, 1, 1, 1, 0, 0, 0, 1], np.float32)
    assert sse_sum(a) == np.float32(2 ** 24 + 4)
    seq = np.float32(0)
    for v in a:
        seq = np.float32(seq + v)
    assert seq == np.float32(2 ** 24) and a.astype(np.float64).sum() == 2 ** 24 + 5
    assert sse_sum(np.array([], np.float32)) == 0 and sse_sum(np.array([3, 4], np.float32)) == 7


def test_classifier_input_per_dialect():
    """classifier predict's input: pjreddie letterboxes; AlexeyAB scales the shorter side to the network width
    (resize_min) and crops the centre, repeating edge pixels where the crop leaves the image."""
    from tritnet.darknet.predict import classifier_input
    from tritnet_rt.detect import letterbox, resize_image
    im = np.random.default_rng(8).random((3, 10, 20)).astype(np.float32)
    text = "[net]\nwidth=8\nheight={h}\nchannels=3\n[avgpool]\n"
    pj = DarknetNet(parse_cfg_string(text.format(h=8)))
    assert np.array_equal(classifier_input(pj, im)[0].numpy(), letterbox(im, 8, 8))
    ab = DarknetNet(parse_cfg_string(text.format(h=8), dialect="alexeyab"))
    assert np.array_equal(classifier_input(ab, im)[0].numpy(), resize_image(im, 16, 8)[:, :, 4:12])
    tall = DarknetNet(parse_cfg_string(text.format(h=12), dialect="alexeyab"))     # dy = (8 - 12)/2 = -2
    want = resize_image(im, 16, 8)[:, np.clip(np.arange(12) - 2, 0, 7)][:, :, 4:12]
    assert np.array_equal(classifier_input(tall, im)[0].numpy(), want)
