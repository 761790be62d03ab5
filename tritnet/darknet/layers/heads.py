"""Output layers: ``[region]`` (YOLOv2), ``[yolo]`` (YOLOv3) and ``[softmax]``.

Region and yolo outputs keep darknet's layout, (B, anchors·entries, H, W), i.e. flat
[anchor][entry][row][col] with entries x, y, w, h, objectness, classes — the reference's
``layer{L}_output``. Only the activations are applied here (darknet's forward at inference):

* region: logistic on x, y and objectness (left raw with ``background=1``); classes get a softmax across
  the classes when ``softmax=1`` (with ``background=1`` the softmax also spans the objectness slot), else
  a logistic;
* yolo: logistic on x, y, objectness and every class; w, h stay raw. ``scale_x_y`` (darknetTWN, AlexeyAB) then
  maps x, y to scale·x − (scale − 1)/2; AlexeyAB's ``new_coords=1`` applies no logistic (the conv before has
  ``activation=logistic``), only that scaling.

Decoding into boxes is ``tritnet_rt.detect`` (numpy, thresholds and NMS as darknet).
"""
from __future__ import annotations

import numpy as np
import torch

from .base import DarknetLayer, register_section


class _Head(DarknetLayer):
    def __init__(self, info, anchors_per_cell: int, classes: int):
        super().__init__(info)
        self.n, self.classes = anchors_per_cell, classes
        self.info = info            # decoding needs the anchors, mask and sizes

    def _split(self, x):
        b, _, h, w = x.shape
        return x.reshape(b, self.n, -1, h, w)


@register_section("region")
class Region(_Head):
    def __init__(self, info, ctx):
        a = info.attrs
        if a["coords"] != 4:
            raise info.section.error(f"coords={a['coords']} (region masks) is not supported; use coords=4")
        if info.section.param("tree") is not None:
            raise info.section.error("softmax trees (tree=) are not supported", "tree")
        super().__init__(info, a["num"], a["classes"])
        self.softmax, self.background = a["softmax"], a["background"]

    def forward(self, x, outs):
        y = self._split(x)
        parts = [torch.sigmoid(y[:, :, 0:2]), y[:, :, 2:4]]
        if self.background and self.softmax:
            # darknet: one softmax over the objectness slot (the background) and the classes
            parts.append(torch.softmax(y[:, :, 4:], dim=2))
        else:
            obj = y[:, :, 4:5] if self.background else torch.sigmoid(y[:, :, 4:5])
            cls = y[:, :, 5:]
            parts += [obj, torch.softmax(cls, dim=2) if self.softmax else torch.sigmoid(cls)]
        return torch.cat(parts, 2).reshape(x.shape)


@register_section("yolo")
class Yolo(_Head):
    def __init__(self, info, ctx):
        super().__init__(info, len(info.attrs["mask"]), info.attrs["classes"])
        scale = info.attrs.get("scale_x_y", 1.0)
        # darknet's scal_add_cpu(X, ALPHA, BETA): X·ALPHA + BETA with float ALPHA and BETA = (float)(-0.5·(s − 1))
        self.alpha, self.beta = float(np.float32(scale)), float(np.float32(-0.5 * (scale - 1)))
        self.new_coords = bool(info.attrs.get("new_coords", 0))

    def forward(self, x, outs):
        y = self._split(x)
        if self.new_coords:
            xy, rest = y[:, :, 0:2], [y[:, :, 2:]]
        else:
            xy, rest = torch.sigmoid(y[:, :, 0:2]), [y[:, :, 2:4], torch.sigmoid(y[:, :, 4:])]
        if self.alpha != 1.0:
            xy = xy * self.alpha + self.beta
        return torch.cat([xy, *rest], 2).reshape(x.shape)


@register_section("softmax")
class Softmax(DarknetLayer):
    """Softmax over ``groups`` equal slices of the flattened input, with ``temperature``; output (B, N)."""

    def __init__(self, info, ctx):
        super().__init__(info)
        a = info.attrs
        if info.section.param("tree") is not None:
            raise info.section.error("softmax trees (tree=) are not supported", "tree")
        self.groups, self.temperature = a["groups"], a["temperature"]

    def forward(self, x, outs):
        b = x.shape[0]
        y = x.reshape(b, self.groups, -1) / self.temperature
        return torch.softmax(y, dim=2).reshape(b, -1)
