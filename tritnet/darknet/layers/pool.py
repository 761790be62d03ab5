"""``[maxpool]`` and ``[avgpool]`` with darknet's window placement.

Darknet's maxpool (``forward_maxpool_layer``) has output ⌊(W + padding − size)/stride⌋ + 1 with padding
defaulting to size − 1, and window j starting at ``j·stride − padding/2`` (C integer division). Positions
outside the input count as −FLT_MAX. So the padding is asymmetric: ``padding/2`` on the left and top,
whatever the last window needs on the right and bottom. ttt4's 4/4 pool on 180 starts its windows at −1;
starting them at 0 is off by up to 4.98 (reference README).

AlexeyAB's maxpool is the same with a stride per axis (``stride_x``/``stride_y``); its ``[local_avgpool]`` uses
the same windows and averages the positions that fall inside the input.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import DarknetLayer, register_section

_NEG_FLT_MAX = -3.4028234663852886e38


def _pads(n: int, size: int, stride: int, padding: int) -> tuple[int, int]:
    out = (n + padding - size) // stride + 1
    before = padding // 2
    after = (out - 1) * stride + size - n - before   # may be negative: the last rows are never read
    return before, after


@register_section("maxpool")
class MaxPool(DarknetLayer):
    def __init__(self, info, ctx):
        super().__init__(info)
        a = info.attrs
        self.size, self.strides, self.padding = a["size"], a["strides"], a["padding"]

    def _padded(self, x, value):
        sy, sx = self.strides
        top, bottom = _pads(x.shape[2], self.size, sy, self.padding)
        left, right = _pads(x.shape[3], self.size, sx, self.padding)
        return F.pad(x, (left, right, top, bottom), value=value)

    def forward(self, x, outs):
        return F.max_pool2d(self._padded(x, _NEG_FLT_MAX), self.size, self.strides)

    def extra_repr(self) -> str:
        sy, sx = self.strides
        return f"size={self.size}, stride={sx if sx == sy else (sx, sy)}, padding={self.padding}"


@register_section("local_avgpool")
class LocalAvgPool(MaxPool):
    """AlexeyAB's ``forward_local_avgpool_layer``: the sum over the window's positions inside the input divided
    by their count."""

    def forward(self, x, outs):
        total = F.avg_pool2d(self._padded(x, 0.0), self.size, self.strides, divisor_override=1)
        ones = self._padded(torch.ones_like(x[:1, :1]), 0.0)
        return total / F.avg_pool2d(ones, self.size, self.strides, divisor_override=1)


@register_section("avgpool")
class AvgPool(DarknetLayer):
    """Global average over the spatial positions: (B, C, H, W) → (B, C, 1, 1)."""

    def forward(self, x, outs):
        return x.mean((2, 3), keepdim=True)
