"""The packed graph as a PyTorch module (NCHW, float32): what ONNX export traces and what `tritnet bench`
times as "PyTorch float32". Ternary weights become float weights code·scale, so this is the same model the
runtime runs, computed in float. Region/yolo/softmax nodes are outputs (their activations are applied in
numpy afterwards, by ``tritnet_rt.heads``, for every backend alike).

Every size comes from the packed graph's shapes (Python ints), never from a tensor's ``.shape``: traced for
ONNX, a ``.shape`` becomes a Shape/Gather/Concat subgraph that ONNX Runtime and OpenVINO then compute on every
call, which made the baselines slower than a clean graph. Only the batch dimension stays free."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from tritnet_rt.format import graph_shapes
from tritnet_rt.ops import OPS, PASS_THROUGH

_NEG = -3.4028234663852886e38


class _Pad(torch.autograd.Function):
    """Constant padding of (C, H, W) by ``pads`` = (front, top, left, back, bottom, right): in ONNX one Pad
    whose pads and value are constants (F.pad's own export builds them with a dozen shape ops)."""

    @staticmethod
    def forward(ctx, x, pads, value):
        front, top, left, back, bottom, right = pads
        return F.pad(x, (left, right, top, bottom, front, back), value=value)

    @staticmethod
    def symbolic(g, x, pads, value):
        front, top, left, back, bottom, right = pads
        return g.op("Pad", x, g.op("Constant", value_t=torch.tensor([0, front, top, left, 0, back, bottom, right])),
                    g.op("Constant", value_t=torch.tensor(value, dtype=torch.float32)), mode_s="constant")


class _MaxPool(torch.autograd.Function):
    """Darknet's maxpool: the window may hang over the input (top/left ``pad``, bottom/right whatever the
    output size needs) and padded cells never win. In PyTorch: pad with -FLT_MAX, then pool. In ONNX: one
    MaxPool with (possibly asymmetric) ``pads``, which ONNX defines as never winning, so no Pad node."""

    @staticmethod
    def forward(ctx, x, k, s, pads):
        pt, pl, pb, pr = pads
        if any(pads):
            x = F.pad(x, (pl, pr, pt, pb), value=_NEG)
        return F.max_pool2d(x, k, s)

    @staticmethod
    def symbolic(g, x, k, s, pads):
        # a negative end pad (fewer than ``s`` last rows that no window reaches) is what ONNX's floor-mode
        # output size leaves out anyway, and ONNX refuses negative pads: 0 there
        return g.op("MaxPool", x, kernel_shape_i=[k, k], strides_i=[s, s], pads_i=[max(p, 0) for p in pads])


def _act(name, x, prelu=None):
    if name == "relu":
        return F.relu(x)
    if name == "leaky":
        return F.leaky_relu(x, 0.1)
    if name == "prelu":
        return F.prelu(x, prelu)
    if name == "logistic":
        return torch.sigmoid(x)
    if name == "swish":
        return x * torch.sigmoid(x)
    if name == "mish":
        return x * torch.tanh(torch.where(x > 20, x, torch.where(x < -20, torch.exp(x), torch.log1p(torch.exp(x)))))
    if name == "linear":
        return x
    raise ValueError(f"activation {name!r} is not one of the packed format's")


def dense_weight(pm, node) -> np.ndarray:
    """The float weight a node computes with: codes·scale for ternary, the stored floats otherwise."""
    t = node["tensors"]
    w = pm.tensors[t["weight"]].astype(np.float32)
    if "scale" in t:
        s = pm.tensors[t["scale"]].astype(np.float32)
        w = w * s.reshape((-1,) + (1,) * (w.ndim - 1))
    return w


class GraphModule(nn.Module):
    def __init__(self, pm):
        super().__init__()
        self.nodes = pm.graph["nodes"]
        self.outputs = pm.graph["outputs"]
        self.shapes = graph_shapes(pm, "<torch_graph>")          # (C, H, W) of every node, "input" too
        self.params = nn.ParameterDict()
        for node in self.nodes:
            key = node["name"].replace(".", "_")
            t = node["tensors"]
            if node["op"] in ("conv", "linear"):
                self.params[key + "_w"] = nn.Parameter(torch.from_numpy(dense_weight(pm, node)), requires_grad=False)
                self.params[key + "_b"] = nn.Parameter(torch.from_numpy(pm.tensors[t["bias"]].astype(np.float32)),
                                                       requires_grad=False)
            for extra in ("prelu", "act_a", "act_b", "weights"):
                if extra in t:
                    self.params[f"{key}_{extra}"] = nn.Parameter(
                        torch.from_numpy(pm.tensors[t[extra]].astype(np.float32)), requires_grad=False)

    def _p(self, node, what):
        return self.params[node["name"].replace(".", "_") + "_" + what]

    def forward(self, x):
        env = {"input": x}
        for node in self.nodes:
            ins = [env[i] for i in node["inputs"]]
            rule = TORCH_OPS.get(node["op"])
            env[node["name"]] = rule(self, node, node["attrs"], ins) if rule else ins[0]     # PASS_THROUGH
        outs = tuple(env[o] for o in self.outputs)
        return outs[0] if len(outs) == 1 else outs


# ------------------------------------------------------------------------------- one function per packed op
# (module, node, attrs, inputs) -> output; every op of tritnet_rt.ops has one here or passes its input through
# (identity, and the heads: region, yolo, softmax are decoded afterwards)

def _conv(m, node, a, ins):
    x = ins[0]
    if a.get("input") == "ternary":
        t = x * m._p(node, "act_a").view(1, -1, 1, 1) + m._p(node, "act_b").view(1, -1, 1, 1)
        x = (t >= 0.5).float() - (t < -0.5).float()
    pt, pl, pb, pr = a["pad"]
    groups = a.get("groups", 1)
    if (pt, pl) == (pb, pr):
        y = F.conv2d(x, m._p(node, "w"), m._p(node, "b"), a["stride"], (pt, pl), groups=groups)
    else:
        y = F.conv2d(_Pad.apply(x, (0, pt, pl, 0, pb, pr), 0.0), m._p(node, "w"), m._p(node, "b"), a["stride"],
                     groups=groups)
    if "residual" in a:
        r, s, off = ins[1], a["residual"]["stride"], a["residual"]["channel_offset"]
        r = r[:, :, ::s, ::s] if s > 1 else r
        rest = m.shapes[node["name"]][0] - off - m.shapes[node["inputs"][1]][0]
        if off or rest:                       # option-A shortcut: zero channels around the input
            r = _Pad.apply(r, (off, 0, 0, rest, 0, 0), 0.0)
        y = y + r
    return _act(a["activation"], y, m._p(node, "prelu") if a["activation"] == "prelu" else None)


def _maxpool(m, node, a, ins):
    k, s, (pt, pl), (oh, ow) = a["size"], a["stride"], a["pad"], a["out"]
    _, h, w = m.shapes[node["inputs"][0]]
    return _MaxPool.apply(ins[0], k, s, (pt, pl, (oh - 1) * s + k - h - pt, (ow - 1) * s + k - w - pl))


def _shortcut(m, node, a, ins):
    c = m.shapes[node["name"]][0]
    w = m._p(node, "weights") if "weights" in node["tensors"] else None
    y = ins[0] * w[0].view(1, -1, 1, 1) if w is not None else ins[0]
    for k, src in enumerate(ins[1:], 1):
        n = min(c, src.shape[1])
        term = src[:, :n] * w[k, :n].view(1, -1, 1, 1) if w is not None else src[:, :n]
        y = torch.cat([y[:, :n] + term, y[:, n:]], 1) if n < c else y + term
    return _act(a["activation"], y)


def _upsample(m, node, a, ins):
    x = F.interpolate(ins[0], scale_factor=a["stride"], mode="nearest")     # integer factor: s x s copies
    return x * a["scale"] if a["scale"] != 1 else x


def _reorg(m, node, a, ins):
    s = a["stride"]
    c, h, w = m.shapes[node["inputs"][0]]
    x = ins[0].reshape(-1, c // (s * s), h, s, w, s).permute(0, 3, 5, 1, 2, 4)
    return x.reshape(-1, c * s * s, h // s, w // s)


TORCH_OPS = {
    "conv": _conv, "maxpool": _maxpool, "shortcut": _shortcut, "upsample": _upsample, "reorg": _reorg,
    "avgpool": lambda m, node, a, ins: ins[0].mean((2, 3), keepdim=True),
    "concat": lambda m, node, a, ins: torch.cat(ins, 1),
    "slice": lambda m, node, a, ins: ins[0][:, a["start"]:a["start"] + a["channels"]],
    "scale_channels": lambda m, node, a, ins: _act(a["activation"], ins[0] * ins[1]),
    "add": lambda m, node, a, ins: _act(a["activation"], a["alpha"] * ins[0] + a["beta"] * ins[1]),
    "linear": lambda m, node, a, ins: _act(a["activation"], F.linear(ins[0].flatten(1), m._p(node, "w"),
                                                                     m._p(node, "b"))),
    "act": lambda m, node, a, ins: _act(a["activation"], ins[0]),
}
assert set(TORCH_OPS) | set(PASS_THROUGH) == set(OPS), "an op of tritnet_rt.ops without a PyTorch rule"
