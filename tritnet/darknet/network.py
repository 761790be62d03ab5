"""``DarknetNet``: a darknet ``.cfg`` as one PyTorch module, computing what darknet computes.

The cfg is the model: shape inference (``shapes.py``) resolves every section, and the layer registry
(``layers/``) turns each into a small module. The network only wires them (each layer gets the previous
output and the list of all earlier outputs, for ``route``/``shortcut``) and moves ``.weights`` arrays in
and out through the layers' own ``load_arrays``/``arrays``::

    net = build_darknet("yolov3-tiny.cfg", "yolov3-tiny.weights")   # eval mode
    out = net(x)                         # like network_predict: the last non-cost layer's output
    outs = net.forward_all(x)            # every layer's output (region/yolo ones feed tritnet_rt.detect)
    net.save_weights("out.weights")      # ternary layers as α·T, so stock darknet runs the file
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
import torch.nn as nn

from ..quant import make_config
from .cfg import Cfg, parse_cfg
from .layers import BuildContext, build_layer
from .shapes import infer_layers
from .weights import DarknetWeights, WeightsHeader, encode_weights, load_weights

__all__ = ["DarknetNet", "build_darknet"]


class DarknetNet(nn.Module):
    """The network of a darknet cfg (a path or a parsed :class:`Cfg`; ``dialect`` applies to a path).

    ``method`` ("twn", "ttn", "sttn"; options such as ``per_channel=True`` go to its config, or pass a
    ready ``config``) is used for the ``ternary=1`` conv layers; ``method=None`` builds them as float
    convs, which is what darknet itself runs at inference (it ternarizes only while training).
    ``method="darknettwn"`` reproduces darknetTWN with its ternarization active: float convs that hold, for every
    ``ternary=1`` layer, exactly the α·T darknetTWN computes from the weights loaded (``twn.py``); saving then
    writes the file darknetTWN saves. It is for running and converting files; train with "twn".
    """

    def __init__(self, cfg, method: Optional[str] = "twn", *, config=None, device=None, dtype=None,
                 dialect: Optional[str] = None, **method_options):
        super().__init__()
        self.cfg: Cfg = cfg if isinstance(cfg, list) else parse_cfg(cfg, dialect=dialect)
        self.infos = infer_layers(self.cfg)
        self.exact_twn = method == "darknettwn"
        if self.exact_twn:
            if method_options or config is not None:
                raise ValueError("method='darknettwn' is darknetTWN's own TWN; it takes no options")
            method = None
        if config is None and method is not None:
            config = make_config(method, **method_options)
        ctx = BuildContext(config, device, dtype)
        self.layers = nn.ModuleList(build_layer(info, ctx) for info in self.infos)
        net = self.cfg.net
        self.channels, self.height, self.width = net.param("channels"), net.param("height"), net.param("width")
        self.header = WeightsHeader.new(self.dialect)    # replaced by the header of a loaded file
        # network_predict returns the last layer that is not a COST layer (get_network_output)
        kept = [i.index for i in self.infos if i.type != "cost"]
        self.output_index = kept[-1] if kept else len(self.infos) - 1
        self.head_indices = [i.index for i in self.infos if i.type in ("region", "yolo")]

    @property
    def dialect(self) -> str:
        """"pjreddie" or "alexeyab": whose darknet this network computes (``cfg.dialect``)."""
        return self.cfg.dialect

    # ------------------------------------------------------------------ forward
    def forward_all(self, x: torch.Tensor) -> list:
        """Every layer's output, in order (region/yolo outputs in darknet's [anchor][entry][row][col])."""
        outs: list = []
        for layer in self.layers:
            x = layer(x, outs)
            outs.append(x)
        return outs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_all(x)[self.output_index]

    def heads(self, outs: list) -> list:
        """[(LayerInfo, output)] of the region/yolo layers, what ``tritnet_rt.detect.get_network_boxes`` takes."""
        return [(self.infos[i], outs[i]) for i in self.head_indices]

    # ------------------------------------------------------------------ .weights
    @property
    def seen(self) -> int:
        return self.header.seen

    def load_weights(self, path, upto: Optional[int] = None, *, prefix: bool = False,
                     allow_nonfinite: bool = False) -> DarknetWeights:
        """Read a darknet ``.weights`` file into the network; with ``prefix`` a shorter file (a backbone) fills
        the first layers (see ``filled``). The checks and options are :func:`~tritnet.darknet.load_weights`'s."""
        weights = load_weights(self.cfg, path, upto, prefix=prefix, allow_nonfinite=allow_nonfinite)
        self.load_darknet(weights)
        return weights

    def load_darknet(self, weights) -> None:
        """Take a :class:`DarknetWeights` (or ``{layer: {name: array}}``) into the layers."""
        layers = weights.layers if isinstance(weights, DarknetWeights) else weights
        if self.exact_twn:
            from .twn import ternarize_layers
            layers = ternarize_layers(self.infos, layers)
        for index, arrays in layers.items():
            self.layers[index].load_arrays(arrays)
        if isinstance(weights, DarknetWeights):
            self.header = weights.header

    def darknet_layers(self) -> dict:
        """``{layer: {name: float32 array}}`` as darknet would write them (ternary layers as α·T)."""
        with torch.no_grad():
            return {i: a for i, a in ((layer.index, layer.arrays()) for layer in self.layers) if a}

    def encode_weights(self, upto: Optional[int] = None, seen: Optional[int] = None) -> bytes:
        return encode_weights(self.cfg, self.darknet_layers(), upto=upto, header=self.header, seen=seen)

    def save_weights(self, path, upto: Optional[int] = None, seen: Optional[int] = None) -> int:
        """Write a ``.weights`` file (layers ``< upto``); returns its size in bytes.

        The header is the one read (so read → write gives the same bytes) or darknet's 0.2.0 for a new
        network; ``seen`` overrides the image count.
        """
        data = self.encode_weights(upto, seen)
        Path(path).write_bytes(data)
        return len(data)

    def param_count(self) -> int:
        """Floats in a complete ``.weights`` file for this network (darknet's parameter count)."""
        return sum(a.size for i, arrays in self.darknet_layers().items() for a in arrays.values()
                   if not self.infos[i].section.read("dontsave"))


def build_darknet(cfg, weights=None, method: Optional[str] = "twn", *, prefix: bool = False,
                  allow_nonfinite: bool = False, **kwargs) -> DarknetNet:
    """Build the network of ``cfg`` (path or :class:`Cfg`; ``dialect=`` for a path), load ``weights`` (path) if
    given; eval mode.

    A weights file shorter than the network (a ``partial`` backbone) is refused unless ``prefix``; then it fills
    the first layers and the others keep their initialisation, which is worth a warning when the network is
    built to be run. ``allow_nonfinite`` loads NaN/Inf values for inspection (see ``load_weights``)."""
    net = DarknetNet(cfg, method, **kwargs)
    if weights is not None:
        w = net.load_weights(weights, prefix=prefix, allow_nonfinite=allow_nonfinite)
        if not w.complete:
            import warnings
            warnings.warn(f"{weights}: holds the weights of layers 0-{w.end_layer - 1} only ({w.filled} layers with "
                          f"parameters) of the {len(net.layers)} in the cfg; the rest are untrained", stacklevel=2)
    return net.eval()
