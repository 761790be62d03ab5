"""PyTorch model → the packed graph (``tritnet_rt.format.PackedModel``): nodes in run order, BN folded.

A conv node computes ``act(scale[n]·Σ code·x + bias[n] (+ residual))`` for a ternary weight, or
``act(Σ w·x + bias[n] (+ residual))`` for a float one, where ``scale``/``bias`` hold the ternary α and the
folded batch norm. Supported models: the CIFAR ResNets (option-A shortcuts), their STTN variant (ternary
activations: the input BN is folded into ``act_a``/``act_b``, t = act_a·x + act_b), and ``DarknetNet``.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from tritnet_rt.format import PackedModel
from tritnet_rt.ops import ACTIVATIONS


def _np(t) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def bn_affine(bn, darknet: bool = False):
    """(g, h) with BN(x) = g·x + h; pjreddie's darknet divides by sqrt(var) + eps, PyTorch and AlexeyAB's darknet
    (``DarknetBatchNorm2d.eps_on_std`` False) by sqrt(var + eps)."""
    var, mean = _np(bn.running_var), _np(bn.running_mean)
    on_std = darknet and getattr(bn, "eps_on_std", True)
    std = np.sqrt(var) + bn.eps if on_std else np.sqrt(var + bn.eps)
    w = _np(bn.weight) if bn.weight is not None else np.ones_like(mean)
    b = _np(bn.bias) if bn.bias is not None else np.zeros_like(mean)
    return w / std, b - w * mean / std


def _exact_ternary(weight):
    """(codes, α) of a float weight whose values are all in {−α, 0, +α} (α > 0), else None."""
    w = weight.detach().cpu().float()
    alpha = w.abs().max()
    if not alpha > 0 or not bool(((w == 0) | (w.abs() == alpha)).all()):
        return None
    return torch.sign(w).to(torch.int8), alpha.double().reshape(1)


class GraphBuilder:
    def __init__(self, bits: float = 2, float_dtype: str = "f32"):
        if bits not in (2, 1.6):
            raise ValueError(f"ternary packing is 2 or 1.6 bits per weight, not {bits}")
        if float_dtype not in ("f32", "f16"):
            raise ValueError(f"float layers are stored as f32 or f16, not {float_dtype}")
        self.tern = "tern2" if bits == 2 else "tern1.6"
        self.fdt = float_dtype
        self.pm = PackedModel({}, {"kind": "graph"}, {"inputs": ["input"], "outputs": [], "nodes": []})

    def node(self, name, op, inputs, attrs=None, tensors=None) -> str:
        self.pm.graph["nodes"].append({"name": name, "op": op, "inputs": list(inputs), "attrs": attrs or {},
                                       "tensors": tensors or {}})
        return name

    def _t(self, name, arr, dtype) -> str:
        return self.pm.add(name, arr, dtype)

    def conv(self, name, x, conv: nn.Conv2d, g=None, h=None, act="linear", residual=None, prelu=None,
             input_act=None, ternary_floats=False) -> str:
        """A conv (ternary or float) followed by y = g·conv + h, a residual (input name, stride, channel
        offset) added before the activation, and for STTN an input ternarization (a, b). ``ternary_floats``: a
        float conv whose weights are all α·{−1, 0, +1} (darknetTWN's ternarized layers) is stored as those codes
        and α, losslessly."""
        from tritnet.nn.layers import is_ternary
        if act not in ACTIVATIONS:
            raise ValueError(f"{name}: activation {act!r} is not supported by the packed format "
                             f"(supported: {', '.join(ACTIVATIONS)})")
        if conv.dilation != (1, 1):
            raise ValueError(f"{name}: dilated convolutions are not supported")
        n = conv.out_channels
        g = np.ones(n) if g is None else np.asarray(g, np.float64)
        h = np.zeros(n) if h is None else np.asarray(h, np.float64)
        cb = _np(conv.bias) if conv.bias is not None else np.zeros(n)
        bias = g * cb + h
        tensors = {}
        exact = _exact_ternary(conv.weight) if ternary_floats and not is_ternary(conv) else None
        if is_ternary(conv) or exact is not None:
            terms = conv.ternary_terms() if exact is None else [exact]
            if len(terms) != 1:
                raise ValueError(f"{name}: TTN with t_ex={len(terms)} (a sum of ternary tensors) is not supported "
                                 "by the packed format; export a t_ex=1 model")
            codes, alpha = terms[0]
            a = _np(alpha).reshape(-1)
            scale = a * g if (a.size > 1 or not np.allclose(g, g[0])) else a * g[:1]
            tensors["weight"] = self._t(f"{name}.codes", codes.cpu().numpy().astype(np.int8), self.tern)
            tensors["scale"] = self._t(f"{name}.scale", scale.astype(np.float32), "f32")
        else:
            w = _np(conv.weight) * g[:, None, None, None]
            tensors["weight"] = self._t(f"{name}.weight", w.astype(np.float32), self.fdt)
        tensors["bias"] = self._t(f"{name}.bias", bias.astype(np.float32), "f32")
        if prelu is not None:
            tensors["prelu"] = self._t(f"{name}.prelu", np.broadcast_to(_np(prelu.weight), (n,)).astype(np.float32), "f32")
            act = "prelu"
        inputs = [x]
        kh, kw = conv.kernel_size
        attrs = {"in_channels": conv.in_channels, "out_channels": n, "kernel": [kh, kw], "stride": conv.stride[0],
                 "pad": [conv.padding[0], conv.padding[1], conv.padding[0], conv.padding[1]], "activation": act}
        if conv.groups > 1:
            attrs["groups"] = conv.groups
        if residual is not None:
            src, stride, offset = residual
            inputs.append(src)
            attrs["residual"] = {"stride": stride, "channel_offset": offset}
        if input_act is not None:
            a, b = input_act
            tensors["act_a"] = self._t(f"{name}.act_a", np.asarray(a, np.float32), "f32")
            tensors["act_b"] = self._t(f"{name}.act_b", np.asarray(b, np.float32), "f32")
            attrs["input"] = "ternary"
        return self.node(name, "conv", inputs, attrs, tensors)

    def linear(self, name, x, fc: nn.Linear, act="linear") -> str:
        from tritnet.nn.layers import is_ternary
        w = fc.to_float().weight if is_ternary(fc) else fc.weight
        b = _np(fc.bias) if fc.bias is not None else np.zeros(fc.out_features)
        if is_ternary(fc):
            codes, alpha = fc.ternary_codes()
            t = {"weight": self._t(f"{name}.codes", codes.cpu().numpy().astype(np.int8), self.tern),
                 "scale": self._t(f"{name}.scale", _np(alpha).reshape(-1).astype(np.float32), "f32")}
        else:
            t = {"weight": self._t(f"{name}.weight", _np(w).astype(np.float32), self.fdt)}
        t["bias"] = self._t(f"{name}.bias", b.astype(np.float32), "f32")
        return self.node(name, "linear", [x], {"in_features": fc.in_features, "out_features": fc.out_features,
                                               "activation": act}, t)


# ----------------------------------------------------------------------------------- CIFAR ResNets

def _cifar_resnet(b: GraphBuilder, model) -> None:
    from tritnet.models.resnet_cifar import ZeroPadShortcut
    x = b.conv("conv1", "input", model.conv1, *bn_affine(model.bn1), act="relu")
    for si, stage in enumerate((model.layer1, model.layer2, model.layer3), 1):
        for bi, blk in enumerate(stage):
            p = f"layer{si}.{bi}"
            y = b.conv(f"{p}.conv1", x, blk.conv1, *bn_affine(blk.bn1), act="relu")
            if isinstance(blk.shortcut, ZeroPadShortcut):
                res = (x, 2, blk.shortcut.extra // 2)
            else:
                res = (x, 1, 0)
            x = b.conv(f"{p}.conv2", y, blk.conv2, *bn_affine(blk.bn2), act="relu", residual=res)
    x = b.node("pool", "avgpool", [x])
    b.pm.graph["outputs"] = [b.linear("linear", x, model.linear)]


def _imagenet_resnet(b: GraphBuilder, model, size: int) -> None:
    """torchvision's ResNet-18/34 layout: 7x7/2 stem, 3x3/2 max-pool (padding 1), BasicBlocks whose projection
    shortcut (1x1 conv + BN) is a conv node added as the block's residual, global average pool, fc."""
    x = b.conv("conv1", "input", model.conv1, *bn_affine(model.bn1), act="relu")
    h = (size + 2 * 3 - 7) // 2 + 1
    out = (h + 2 * 1 - 3) // 2 + 1
    x = b.node("maxpool", "maxpool", [x], {"size": 3, "stride": 2, "pad": [1, 1], "out": [out, out]})
    for si, stage in enumerate((model.layer1, model.layer2, model.layer3, model.layer4), 1):
        for bi, blk in enumerate(stage):
            p = f"layer{si}.{bi}"
            y = b.conv(f"{p}.conv1", x, blk.conv1, *bn_affine(blk.bn1), act="relu")
            res = x
            if blk.downsample is not None:
                res = b.conv(f"{p}.downsample", x, blk.downsample[0], *bn_affine(blk.downsample[1]))
            x = b.conv(f"{p}.conv2", y, blk.conv2, *bn_affine(blk.bn2), act="relu", residual=(res, 1, 0))
    x = b.node("pool", "avgpool", [x])
    b.pm.graph["outputs"] = [b.linear("fc", x, model.fc)]


def _sttn_resnet(b: GraphBuilder, model, size: int) -> None:
    from tritnet.models.resnet_sttn import MaxPoolZeroShortcut
    x = b.conv("conv1", "input", model.conv1, *bn_affine(model.bn1), prelu=model.prelu)
    hw = size
    for si, stage in enumerate((model.layer1, model.layer2, model.layer3), 1):
        for bi, blk in enumerate(stage):
            for ui, unit in enumerate(blk):
                p, src, s = f"layer{si}.{bi}.{ui}", x, unit.conv.stride[0]
                if isinstance(unit.shortcut, MaxPoolZeroShortcut) and unit.shortcut.stride > 1:
                    k = unit.shortcut.stride
                    src = b.node(f"{p}.shortcut", "maxpool", [x], {"size": k, "stride": k, "pad": [0, 0],
                                                                 "out": [hw // k, hw // k]})
                x = b.conv(f"{p}.conv", x, unit.conv, *bn_affine(unit.bn_out), prelu=unit.prelu,
                           residual=(src, 1, 0), input_act=bn_affine(unit.bn_in))
                hw = (hw - 1) // s + 1
    x = b.node("pool", "avgpool", [x])
    b.pm.graph["outputs"] = [b.linear("linear", x, model.linear)]


def export_classifier(model, bits=2, float_dtype="f32", class_names=None) -> PackedModel:
    """A CIFAR ResNet (float, ternary or STTN) or an ImageNet ResNet-18/34 → PackedModel (uncompiled: tensors
    still numpy)."""
    from tritnet.models.resnet import ResNet
    from tritnet.models.resnet_cifar import CifarResNet
    from tritnet.models.resnet_sttn import SttnCifarResNet
    b = GraphBuilder(bits, float_dtype)
    info = getattr(model, "model_info", None)
    model = model.eval()
    with torch.no_grad():
        if isinstance(model, SttnCifarResNet):
            _sttn_resnet(b, model, info.input_size[1] if info else 32)
            family = "cifar_resnet_sttn"
        elif isinstance(model, CifarResNet):
            _cifar_resnet(b, model)
            family = "cifar_resnet"
        elif isinstance(model, ResNet):
            _imagenet_resnet(b, model, info.input_size[1] if info else 224)
            family = "imagenet_resnet"
        else:
            raise ValueError(f"cannot export a {type(model).__name__}: the exporter knows the CIFAR ResNets, "
                             "their STTN variant, the ImageNet ResNets and darknet networks")
    size = list(info.input_size) if info else [3, 32, 32]
    n_out = (model.fc if isinstance(model, ResNet) else model.linear).out_features
    b.pm.model = {"name": info.name if info else type(model).__name__, "family": family, "task": "classify",
                  "input": {"shape": size, "mean": list(info.mean) if info else None,
                            "std": list(info.std) if info else None, "preprocess": "normalize"},
                  "classes": list(class_names) if class_names else [str(i) for i in range(n_out)]}
    return b.pm


# ----------------------------------------------------------------------------------- darknet

# ``tritnet.darknet.layer_features`` names the packed format expresses (README "Darknet dialects"); a layer with any
# other feature is refused with its cfg file:line rather than exported as a wrong graph
EXPORTED_FEATURES = frozenset({
    "batchnorm:alexeyab",            # sqrt(var + 1e-5), folded like pjreddie's
    "route:groups",                  # a slice node per source (AlexeyAB's group_id-th of groups channel ranges)
    "yolo:scale_x_y", "yolo:new_coords", "yolo:nms_kind",    # yolo attrs, decoded by tritnet_rt.heads
    "conv:groups",                   # grouped / depthwise conv (the runtime's conv_grouped kernels)
    "activation:swish", "activation:mish",                   # in the conv epilogue and the elementwise ops
    "section:scale_channels",        # squeeze-and-excitation: act(from · prev[c])
    "section:empty",                 # [empty]/[silence]: identity
    "shortcut:sources", "shortcut:weights",                  # AlexeyAB's shortcut: the shortcut node
})
YOLO_ATTRS = ("classes", "num", "mask", "anchors", "scale_x_y", "new_coords", "nms_kind", "beta_nms")


def _route(b: GraphBuilder, nm: str, net, info, names_of) -> str:
    """A route: its sources (each cut to its group_id-th channel range with AlexeyAB's groups) concatenated."""
    a = info.attrs
    groups, gid = a.get("groups", 1), a.get("group_id", 0)
    src = []
    for k, j in enumerate(a["layers"]):
        if groups > 1:
            c = net.infos[j].out_shape[0] // groups
            name = nm if len(a["layers"]) == 1 else f"{nm}.part{k}"
            src.append(b.node(name, "slice", [names_of[j]], {"start": gid * c, "channels": c}))
        else:
            src.append(names_of[j])
    if groups > 1 and len(src) == 1:
        return src[0]
    return b.node(nm, "concat", src) if len(src) > 1 else b.node(nm, "identity", src)


def _shortcut(b: GraphBuilder, nm: str, prev: str, layer, info, names_of) -> str:
    """AlexeyAB's shortcut with several ``from``, sources of other channel counts or weights: one ``shortcut`` node;
    the weights as it runs them at inference (normalised, ``ShortcutAlexeyAB._weights``), one row an input."""
    a, c = info.attrs, info.out_shape[0]
    tensors = {}
    if a["nweights"]:
        w = layer._weights(c).detach().cpu().numpy().astype(np.float32)
        tensors["weights"] = b._t(f"{nm}.weights", np.ascontiguousarray(w), "f32")
    return b.node(nm, "shortcut", [prev] + [names_of[j] for j in a["sources"]], {"activation": a["activation"]},
                  tensors)


def export_darknet(net, bits=2, float_dtype="f32", names=None, letter_box=None) -> PackedModel:
    """A ``DarknetNet`` → PackedModel; the cfg text is kept as the architecture. The input is letterboxed as
    pjreddie's ``detector test`` does; for an AlexeyAB cfg it is stretched (``resize``) as its ``detector test``
    does, unless ``letter_box`` (its ``-letter_box`` flag) or ``[net] letter_box=1``."""
    from tritnet.darknet import layer_features
    from tritnet.darknet.cfg import dump_cfg
    b = GraphBuilder(bits, float_dtype)
    names_of = {}
    prev = "input"
    net = net.eval()
    with torch.no_grad():
        for info, layer in zip(net.infos, net.layers):
            i, a, t = info.index, info.attrs, info.type
            beyond = [f for f in layer_features(info) if f not in EXPORTED_FEATURES]
            if beyond:
                raise ValueError(f"layer {i} ([{info.section.header}], {info.section.where()}): {', '.join(beyond)} "
                                 "is not supported by the packed format yet")
            nm = f"l{i}"
            if t == "convolutional":
                g, h = bn_affine(layer.bn, darknet=True) if layer.bn is not None else (None, None)
                out = b.conv(nm, prev, layer.conv, g, h, act=a["activation"], ternary_floats=bool(a.get("ternary")))
            elif t == "maxpool":
                c, hh, ww = info.out_shape
                out = b.node(nm, "maxpool", [prev], {"size": a["size"], "stride": a["stride"],
                                                     "pad": [a["padding"] // 2] * 2, "out": [hh, ww]})
            elif t == "avgpool":
                out = b.node(nm, "avgpool", [prev])
            elif t == "route":
                out = _route(b, nm, net, info, names_of)
            elif t == "shortcut" and "sources" in a and (len(a["sources"]) > 1 or a["nweights"] or any(
                    net.infos[j].out_shape != info.out_shape for j in a["sources"])):
                out = _shortcut(b, nm, prev, layer, info, names_of)
            elif t == "shortcut":
                if tuple(net.infos[a["from"]].out_shape) != tuple(info.in_shape):
                    raise ValueError(f"layer {i}: shortcut between different shapes is not supported")
                out = b.node(nm, "add", [prev, names_of[a["from"]]], {"alpha": a["alpha"], "beta": a["beta"],
                                                                       "activation": a["activation"]})
            elif t == "empty":
                out = b.node(nm, "identity", [prev])
            elif t == "scale_channels":
                if a["scale_wh"]:
                    raise ValueError(f"layer {i} ([scale_channels], {info.section.where()}): scale_wh=1 is not "
                                     "supported by the packed format yet")
                out = b.node(nm, "scale_channels", [names_of[a["from"]], prev], {"activation": a["activation"]})
            elif t == "upsample":
                if a["reverse"]:
                    raise ValueError(f"layer {i}: upsample with a negative stride is not supported")
                out = b.node(nm, "upsample", [prev], {"stride": a["stride"], "scale": a["scale"]})
            elif t == "reorg":
                if a["reverse"]:
                    raise ValueError(f"layer {i}: reverse reorg is not supported")
                out = b.node(nm, "reorg", [prev], {"stride": a["stride"]})
            elif t == "connected":
                if layer.bn is not None:
                    raise ValueError(f"layer {i}: connected with batch_normalize is not supported")
                out = b.linear(nm, prev, layer.fc, act=a["activation"])
            elif t == "region":
                keep = {k: v for k, v in a.items() if not k.startswith("_")}
                out = b.node(nm, t, [prev], {**keep, "shape": list(info.out_shape)})
            elif t == "yolo":
                keep = {k: a[k] for k in YOLO_ATTRS if k in a}
                if "new_coords" in keep:
                    keep["new_coords"] = bool(keep["new_coords"])
                out = b.node(nm, t, [prev], {**keep, "shape": list(info.out_shape)})
            elif t == "softmax":
                if a.get("spatial"):
                    raise ValueError(f"layer {i}: softmax with spatial=1 is not supported by the packed format")
                out = b.node(nm, "softmax", [prev], {"groups": a["groups"], "temperature": a["temperature"]})
            elif t in ("dropout", "cost"):
                out = b.node(nm, "identity", [prev])
            elif t == "activation":
                out = b.node(nm, "act", [prev], {"activation": a["activation"]})
            else:
                raise ValueError(f"layer {i}: [{t}] is not supported by the packed format")
            names_of[i] = prev = out
    heads = [names_of[j] for j in net.head_indices]
    b.pm.graph["outputs"] = heads or [names_of[net.output_index]]
    b.pm.arch = {"kind": "darknet", "cfg": dump_cfg(net.cfg)}
    alexeyab = net.dialect == "alexeyab"
    letter = not alexeyab or bool(letter_box) or bool(net.cfg.net.param("letter_box"))
    if alexeyab and not heads:
        raise ValueError("an AlexeyAB classifier cfg: its classifier predict (resize_min + centre crop) is not a "
                         "preprocess of the packed format yet")
    b.pm.model = {"name": "darknet", "family": "darknet", "task": "detect" if heads else "classify",
                  "input": {"shape": [net.channels, net.height, net.width],
                            "preprocess": "letterbox" if letter else "resize"},
                  "classes": list(names) if names else None, "dialect": net.dialect}
    return b.pm
