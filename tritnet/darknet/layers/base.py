"""The contract every darknet layer module follows, and the registry from section type to builder.

Darknet gives each layer type one small file with ``make_``/``forward_``/``load``/``save``; here each
section type is one :class:`DarknetLayer` subclass registered under its cfg name. A layer

* is built from the :class:`~tritnet.darknet.shapes.LayerInfo` that shape inference produced (so the
  cfg's defaults and checks live in one place, ``shapes.py``),
* runs ``forward(x, outs)``: ``x`` is the previous layer's output, ``outs`` every earlier output (what
  ``route`` and ``shortcut`` read), and
* converts its tensors to and from darknet's ``.weights`` arrays (``load_arrays`` / ``arrays``), so the
  network never needs a per-type switch to read or write a file.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn as nn

LAYERS: dict[str, Callable] = {}


def register_section(*types: str, dialect: Optional[str] = None):
    """Class decorator: ``@register_section("maxpool")`` makes the class the builder of ``[maxpool]``;
    ``dialect="alexeyab"`` makes it the builder in that dialect only (a layer the two darknets compute
    differently under one name, such as ``[shortcut]``)."""
    def deco(cls):
        for t in types:
            key = t if dialect is None else (t, dialect)
            if key in LAYERS:
                raise ValueError(f"section type {key!r} is registered twice")
            LAYERS[key] = cls
        return cls
    return deco


@dataclass(frozen=True)
class BuildContext:
    """What a builder needs beyond the cfg: the ternary config (None: ``ternary=1`` layers stay float)."""
    ternary: Optional[object] = None
    device: Optional[torch.device] = None
    dtype: Optional[torch.dtype] = None

    @property
    def factory(self) -> dict:
        return {"device": self.device, "dtype": self.dtype}


def build_layer(info, ctx: BuildContext) -> "DarknetLayer":
    cls = LAYERS.get((info.type, info.section.dialect)) or LAYERS.get(info.type)
    if cls is None:
        raise info.section.error(f"tritnet has no PyTorch module for [{info.section.header}]")
    return cls(info, ctx)


class DarknetLayer(nn.Module):
    """Base of all darknet layer modules: index, type, and (by default) no parameters in the file."""

    def __init__(self, info, ctx: "BuildContext | None" = None):
        super().__init__()
        self.index = info.index
        self.layer_type = info.type     # the cfg section type ("convolutional", "route", ...)
        self.out_shape = tuple(info.out_shape)   # (c, h, w) at the cfg's input size; (0, 0, 0) when flat

    def forward(self, x, outs):  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def load_arrays(self, arrays: dict) -> None:
        """Take darknet's arrays for this layer (``{"biases": ..., "weights": ...}``, float32)."""

    def arrays(self) -> dict:
        """This layer's values as darknet writes them, in file order; ``{}`` for layers without any."""
        return {}


def copy_into(dst: torch.Tensor, src: np.ndarray) -> None:
    """Copy a darknet array into (the first rows of) a tensor: ``numload`` files fill only the first filters."""
    t = torch.from_numpy(np.ascontiguousarray(src, dtype=np.float32))
    with torch.no_grad():
        dst[: t.shape[0]].copy_(t.reshape((t.shape[0],) + tuple(dst.shape[1:])).to(dst.dtype))


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float32).numpy().copy()
