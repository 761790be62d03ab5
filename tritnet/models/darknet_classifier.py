"""A darknet classifier cfg (``cifar_minin.cfg``, ``ttt5_pre.cfg``, darknet's ImageNet cfgs) as a classifier
the training loop, the checkpoints and the exporter take like any registered model::

    model = create_model("cifar_minin.cfg", method="twn")                 # the cfg's ternary=1 layers, TWN
    model = create_model("ttt5_pre.cfg", method="twn", layers="all")      # every conv ternary
    logits = model(x)                          # x/255 images, as darknet feeds them (no mean/std)

The forward returns the input of the cfg's ``[softmax]`` (logits, for a cross-entropy loss), or the last
layer's output when the cfg has none. The checkpoint records the cfg text, so it reloads without the file;
``save_weights`` writes darknet ``.weights`` (ternary layers as α·T) that darknet itself runs.
"""
from __future__ import annotations

import copy

from pathlib import Path
from typing import Optional

import torch
import torch.nn as nn

from ..darknet import Cfg, DarknetNet, darknet_layers, dump_cfg, is_cfg_name, parse_cfg, set_ternary
from ..darknet.cfg import parse_cfg_string, ternary_layers
from .info import ModelInfo

__all__ = ["DarknetClassifier", "is_cfg_name"]


class DarknetClassifier(nn.Module):
    """``layers``: "cfg" (default) keeps the cfg's ``ternary=1`` flags; otherwise a layer spec
    (``tritnet.layerspec``: "all", darknet layer indices, ranges such as "2-8", fractions) makes exactly those
    convs ternary. ``method`` None
    builds every layer float. ``cfg`` is a path or a parsed Cfg; ``cfg_text`` rebuilds from a checkpoint's copy
    instead of a file."""

    def __init__(self, cfg: "str | Path | Cfg", method: Optional[str] = None, layers="cfg",
                 num_classes: Optional[int] = None, cfg_text: Optional[str] = None, **quant_options):
        super().__init__()
        if isinstance(cfg, Cfg):            # parsed already (its dialect, its edits): a copy of it, not the file
            parsed, cfg = copy.deepcopy(cfg), cfg.path
        else:
            parsed = parse_cfg_string(cfg_text, path=str(cfg)) if cfg_text is not None else parse_cfg(cfg)
        if layers not in (None, "cfg"):
            set_ternary(parsed, None, on=False)
            set_ternary(parsed, darknet_layers(parsed).resolve(layers, f"{cfg}: layers"))
        self.net = DarknetNet(parsed, method, **quant_options)
        infos = self.net.infos
        tail = [i for i in infos if i.type not in ("softmax", "cost")]
        if not tail:
            raise ValueError(f"{cfg}: no layer before the [softmax] to train a classifier on")
        self.logits_index = tail[-1].index
        classes = int(torch.tensor(tail[-1].out_shape).prod())
        if num_classes is not None and num_classes != classes:
            last = next(i for i in reversed(tail) if i.type in ("convolutional", "connected"))
            key = "filters" if last.type == "convolutional" else "output"
            raise ValueError(f"{last.section.where(key)}: the cfg's network outputs {classes} classes, the data "
                             f"has {num_classes}; set {key}={num_classes} in its last [{last.type}]")
        c, h, w = self.net.channels, self.net.height, self.net.width
        self.cfg_path = str(cfg)
        self.ternary_indices = ternary_layers(parsed)
        self.model_info = ModelInfo(name=f"darknet:{Path(cfg).name}", builder=None, input_size=(c, h, w),
                                    num_classes=classes, mean=(0.0,) * c, std=(1.0,) * c,
                                    extra={"darknet_cfg": dump_cfg(parsed)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs: list = []
        for layer in self.net.layers[:self.logits_index + 1]:
            x = layer(x, outs)
            outs.append(x)
        return x.flatten(1)

    def load_weights(self, path):
        """Darknet ``.weights`` (a shorter file fills a prefix, as darknet's backbones)."""
        return self.net.load_weights(path, prefix=True)

    def save_weights(self, path) -> int:
        return self.net.save_weights(path)


