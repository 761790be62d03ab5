"""Layers that move or combine values without weights: route, shortcut, upsample, reorg, crop, dropout,
activation, cost. Each reproduces the element order of darknet's CPU code (``route_layer.c``,
``blas.c: shortcut_cpu, reorg_cpu``, ``upsample_layer.c``, ``crop_layer.c``).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .activations import Activation
from .base import DarknetLayer, register_section


@register_section("route")
class Route(DarknetLayer):
    """Concatenate earlier outputs along the channels (flat outputs along their only axis)."""

    def __init__(self, info, ctx):
        super().__init__(info)
        self.sources = list(info.attrs["layers"])

    def forward(self, x, outs):
        parts = [outs[j] for j in self.sources]
        return parts[0] if len(parts) == 1 else torch.cat(parts, 1)

    def extra_repr(self) -> str:
        return f"layers={self.sources}"


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
