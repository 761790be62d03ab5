"""Layers that move or combine values: route, shortcut, scale_channels, sam, upsample, reorg, crop, dropout,
activation, empty, cost. Each reproduces the element order of darknet's CPU code (``route_layer.c``,
``blas.c: shortcut_cpu, shortcut_multilayer_cpu, reorg_cpu``, ``scale_channels_layer.c``, ``sam_layer.c``,
``upsample_layer.c``, ``crop_layer.c``). AlexeyAB's weighted shortcut is the only one with parameters.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .activations import Activation
from .base import DarknetLayer, copy_into, register_section, to_numpy


@register_section("route")
class Route(DarknetLayer):
    """Concatenate earlier outputs along the channels (flat outputs along their only axis); with AlexeyAB's
    ``groups``/``group_id`` each source gives only its ``group_id``-th of ``groups`` equal channel ranges."""

    def __init__(self, info, ctx):
        super().__init__(info)
        self.sources = list(info.attrs["layers"])
        self.groups, self.group_id = info.attrs.get("groups", 1), info.attrs.get("group_id", 0)

    def forward(self, x, outs):
        parts = [outs[j] for j in self.sources]
        if self.groups > 1:
            parts = [p.chunk(self.groups, 1)[self.group_id] for p in parts]
        return parts[0] if len(parts) == 1 else torch.cat(parts, 1)

    def extra_repr(self) -> str:
        group = f", group {self.group_id}/{self.groups}" if self.groups > 1 else ""
        return f"layers={self.sources}{group}"


@register_section("shortcut")
class Shortcut(DarknetLayer):
    """out = alpha·prev + beta·from, over the channels, rows and columns both have (``shortcut_cpu``).

    Between different sizes darknet steps through the larger map: a larger ``from`` is read every
    ``stride`` positions; a smaller one is added at every ``sample``-th position of the output (the other
    positions keep prev, without alpha). Extra channels on either side are left as prev.
    """

    def __init__(self, info, ctx):
        super().__init__(info)
        a = info.attrs
        self.source, self.alpha, self.beta = a["from"], a["alpha"], a["beta"]
        self.act = Activation(a["activation"])

    def forward(self, x, outs):
        add = outs[self.source]
        if add.shape == x.shape:
            return self.act(self.alpha * x + self.beta * add)
        (c1, h1, w1), (c2, h2, w2) = add.shape[1:], x.shape[1:]
        stride, sample = max(w1 // w2, 1), max(w2 // w1, 1)
        c, h, w = min(c1, c2), min(h1, h2), min(w1, w2)
        at = (slice(None), slice(0, c), slice(0, h * sample, sample), slice(0, w * sample, sample))
        out = x.clone()
        out[at] = self.alpha * x[at] + self.beta * add[:, :c, : h * stride : stride, : w * stride : stride]
        return self.act(out)

    def extra_repr(self) -> str:
        return f"from={self.source}, alpha={self.alpha}, beta={self.beta}"


@register_section("shortcut", dialect="alexeyab")
class ShortcutAlexeyAB(DarknetLayer):
    """AlexeyAB's shortcut (``shortcut_multilayer_cpu``): out = w₀·prev + Σᵢ wᵢ·fromᵢ, then the activation.

    Every source has prev's width and height; a source with fewer channels adds to the first ones, one with more
    adds its first ones. Without ``weights_type`` all w are 1. ``per_feature`` has one w per input,
    ``per_channel`` one per input and channel (file order: input-major). ``weights_normalization``: ``softmax``
    divides exp(w − max) by ε + Σ exp(w − max) (ε = 0.0001), ``relu`` divides relu(w) by ε + Σ relu(w) while
    training; at inference AlexeyAB's ``fuse_conv_batchnorm`` has already normalised the weights with
    max(w, 0.001) in place of relu(w), so that is what evaluation uses.
    """

    def __init__(self, info, ctx):
        super().__init__(info)
        a = info.attrs
        self.sources, self.kind, self.norm = list(a["sources"]), a["weights_type"], a["weights_normalization"]
        self.act = Activation(a["activation"])
        self.weight = nn.Parameter(torch.ones(a["nweights"], **ctx.factory)) if a["nweights"] else None

    def _weights(self, c):
        """(inputs, channels) weights after normalisation; the first row scales prev."""
        w = self.weight.view(len(self.sources) + 1, -1)
        if self.norm == "softmax":
            e = torch.exp(w - w.amax(0, keepdim=True))
            w = e / (1e-4 + e.sum(0, keepdim=True))
        elif self.norm == "relu":
            r = torch.relu(w) if self.training else w.clamp_min(0.001)
            w = r / (1e-4 + r.sum(0, keepdim=True))
        return w.expand(-1, c) if self.kind == "per_feature" else w

    def forward(self, x, outs):
        c = x.shape[1]
        w = self._weights(c)[:, None, :, None, None] if self.weight is not None else None   # (n+1, 1, c, 1, 1)
        out = x * w[0] if w is not None else x
        for i, j in enumerate(self.sources, 1):
            add = outs[j]
            k = min(c, add.shape[1])
            term = add[:, :k] * w[i][:, :k] if w is not None else add[:, :k]
            out = torch.cat([out[:, :k] + term, out[:, k:]], 1) if k < c else out + term
        return self.act(out)

    def load_arrays(self, arrays):
        if self.weight is not None:
            copy_into(self.weight, arrays["weights"])

    def arrays(self):
        return {"weights": to_numpy(self.weight)} if self.weight is not None else {}

    def extra_repr(self) -> str:
        return f"from={self.sources}, weights={self.kind}, normalization={self.norm}"


@register_section("scale_channels")
class ScaleChannels(DarknetLayer):
    """out = act(from · prev): prev holds one scale per channel (1x1xC, squeeze-and-excitation) or, with
    ``scale_wh=1``, one per position (WxHx1). The output has ``from``'s shape."""

    def __init__(self, info, ctx):
        super().__init__(info)
        self.source = info.attrs["from"]
        self.act = Activation(info.attrs["activation"])

    def forward(self, x, outs):
        return self.act(outs[self.source] * x)     # broadcasting: (B,C,1,1) or (B,1,H,W) against (B,C,H,W)


@register_section("sam")
class Sam(DarknetLayer):
    """AlexeyAB's spatial attention module: out = act(from · prev), element by element."""

    def __init__(self, info, ctx):
        super().__init__(info)
        self.source = info.attrs["from"]
        self.act = Activation(info.attrs["activation"])

    def forward(self, x, outs):
        return self.act(outs[self.source] * x)


@register_section("empty")
class Empty(DarknetLayer):
    """AlexeyAB's [empty] / [silence]: passes its input on."""

    def forward(self, x, outs):
        return x


@register_section("upsample")
class Upsample(DarknetLayer):
    """Nearest-neighbour upsampling by ``stride`` times ``scale``; ``stride<0`` sums s×s blocks instead."""

    def __init__(self, info, ctx):
        super().__init__(info)
        a = info.attrs
        self.stride, self.reverse, self.scale = a["stride"], a["reverse"], a["scale"]

    def forward(self, x, outs):
        s = self.stride
        b, c, h, w = x.shape
        if self.reverse:
            y = x.reshape(b, c, h // s, s, w // s, s).sum((3, 5))
        else:
            y = x[:, :, :, None, :, None].expand(b, c, h, s, w, s).reshape(b, c, h * s, w * s)
        return y * self.scale if self.scale != 1 else y


@register_section("reorg")
class Reorg(DarknetLayer):
    """Darknet's reorg (``reorg_cpu``), whose element order is *not* a plain space-to-depth.

    For the usual (forward) reorg darknet calls ``reorg_cpu(..., forward=0)`` with the input's own sizes:
    it reads the input as if it were (C/s², H·s, W·s) and writes a (C, H, W) array, which is then taken as
    the (C·s², H/s, W/s) output. ``reverse=1`` is the exact inverse.
    """

    def __init__(self, info, ctx):
        super().__init__(info)
        a = info.attrs
        if a["flatten"] or a["extra"]:
            raise info.section.error("reorg with flatten= or extra= is not supported")
        self.stride, self.reverse = a["stride"], a["reverse"]

    def forward(self, x, outs):
        s = self.stride
        b, c, h, w = x.shape
        oc = c // (s * s)
        if self.reverse:
            y = x.reshape(b, s, s, oc, h, w).permute(0, 3, 4, 1, 5, 2)
            return y.reshape(b, oc, h * s, w * s)
        y = x.reshape(b, oc, h, s, w, s).permute(0, 3, 5, 1, 2, 4)   # (b, oy, ox, c2, j, i)
        return y.reshape(b, c * s * s, h // s, w // s)


@register_section("crop")
class Crop(DarknetLayer):
    """Centre crop as at inference, scaled to [-1, 1] (x·2 − 1) unless ``noadjust=1``."""

    def __init__(self, info, ctx):
        super().__init__(info)
        self.h, self.w = info.attrs["crop_height"], info.attrs["crop_width"]
        noadjust = info.section.param("noadjust")
        self.scale, self.shift = (1.0, 0.0) if noadjust else (2.0, -1.0)

    def forward(self, x, outs):
        dh, dw = (x.shape[2] - self.h) // 2, (x.shape[3] - self.w) // 2
        return x[:, :, dh:dh + self.h, dw:dw + self.w] * self.scale + self.shift


@register_section("dropout")
class Dropout(DarknetLayer):
    """Identity at inference; in training darknet scales the kept values by 1/(1−p), as nn.Dropout."""

    def __init__(self, info, ctx):
        super().__init__(info)
        self.drop = nn.Dropout(info.attrs["probability"])

    def forward(self, x, outs):
        return self.drop(x)


@register_section("activation")
class ActivationLayer(DarknetLayer):
    def __init__(self, info, ctx):
        super().__init__(info)
        self.act = Activation(info.attrs["activation"])

    def forward(self, x, outs):
        return self.act(x)


@register_section("cost")
class Cost(DarknetLayer):
    """The training cost. At inference it passes its input on; the network's output is the layer before."""

    def forward(self, x, outs):
        return x
