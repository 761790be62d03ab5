"""Layers with weights: ``[convolutional]`` (float or ternary), ``[connected]`` and ``[batchnorm]``.

Batch normalisation follows darknet's CPU code (``normalize_cpu``, ``variance_cpu``), which is what the
reference outputs were computed with: x̂ = (x − μ) / (sqrt(var) + 1e-6) — the epsilon is added to the
standard deviation, not to the variance as in ``nn.BatchNorm2d``. Training normalises with the batch
variance divided by (n − 1) and moves the rolling statistics by 0.01 (darknet's .99/.01).
AlexeyAB's darknet (dialect ``alexeyab``) normalises with x̂ = (x − μ) / sqrt(var + 1e-5), moves the statistics
by 0.1, and folds the normalisation into the conv before inference (``fuse_conv_batchnorm``: the scale and shift
computed in double, stored as float), which is what its detector and classifier run.

Ternary layers (``ternary=1``) are :class:`~tritnet.nn.TernaryConv2d`: the float shadow weight is the
parameter and every forward uses its ternary values α·T. A ``.weights`` file gets α·T, as darknetTWN writes
it, so stock darknet runs the file; loading α·T back gives the same ternary layer (TWN is idempotent).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ...nn import TernaryConv2d
from .activations import Activation
from .base import DarknetLayer, copy_into, register_section, to_numpy
from .bn_train import darknet_bn_train


class DarknetBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm with darknet's CPU formula; works on (B, C, H, W) and on (B, C) (connected layers).

    ``bias=False`` drops β (a pjreddie ``[batchnorm]`` layer: darknet neither loads nor saves its biases).
    ``eps_on_std`` False is AlexeyAB's sqrt(var + ε); :meth:`for_dialect` gives each dialect's settings.
    """

    def __init__(self, num_features: int, bias: bool = True, eps: float = 1e-6, momentum: float = 0.01,
                 device=None, dtype=None, eps_on_std: bool = True):
        super().__init__(num_features, eps=eps, momentum=momentum, device=device, dtype=dtype)
        self.eps_on_std = eps_on_std
        if not bias:
            self.bias = None

    @classmethod
    def for_dialect(cls, num_features: int, dialect: str, bias: bool = True, connected: bool = False,
                    **factory) -> "DarknetBatchNorm2d":
        """The dialect's batch norm; AlexeyAB moves a connected layer's statistics by 0.05, others by 0.1."""
        if dialect == "alexeyab":
            return cls(num_features, bias, eps=1e-5, momentum=0.05 if connected else 0.1, eps_on_std=False,
                       **factory)
        return cls(num_features, bias, **factory)

    def scale_shift(self) -> tuple:
        """(g, h) in float64 with the layer's inference output = g·x + h, per channel (what an exporter folds)."""
        var, mean = self.running_var.detach().double(), self.running_mean.detach().double()
        std = var.sqrt() + self.eps if self.eps_on_std else (var + self.eps).sqrt()
        w = self.weight.detach().double() if self.weight is not None else torch.ones_like(mean)
        b = self.bias.detach().double() if self.bias is not None else torch.zeros_like(mean)
        return w / std, b - w * mean / std

    def forward(self, x):
        shape = [1, -1] + [1] * (x.dim() - 2)
        if self.training:
            # same formula, one autograd node (bn_train.py): darknet's variance_cpu divides by n - 1
            y, mean, var = darknet_bn_train(x, self.weight, self.bias, self.eps, self.eps_on_std)
            with torch.no_grad():
                self.num_batches_tracked += 1
                # momentum None: a plain average over the batches so far, as nn.BatchNorm (BN re-estimation)
                f = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - f).add_(f * mean)
                self.running_var.mul_(1 - f).add_(f * var)
            return y
        if not self.eps_on_std:
            # AlexeyAB's fuse_conv_batchnorm: scale and shift in double, stored as float (autograd still reaches
            # the parameters, for a network evaluated while it trains)
            var = self.running_var.double()
            k = self.weight.double() / (var + self.eps).sqrt()
            shift = -self.running_mean.double() * k
            if self.bias is not None:
                shift = shift + self.bias.double()
            return x * k.to(x.dtype).view(shape) + shift.to(x.dtype).view(shape)
        mean, var = self.running_mean, self.running_var
        y = (x - mean.view(shape)) / (var.sqrt().view(shape) + self.eps)
        y = y * self.weight.view(shape)
        return y if self.bias is None else y + self.bias.view(shape)


def _bn_load(bn: DarknetBatchNorm2d, arrays: dict) -> None:
    for name, t in (("scales", bn.weight), ("rolling_mean", bn.running_mean), ("rolling_variance", bn.running_var)):
        if name in arrays:          # absent with dontloadscales
            copy_into(t, arrays[name])


def _bn_arrays(bn: DarknetBatchNorm2d) -> dict:
    return {"scales": to_numpy(bn.weight), "rolling_mean": to_numpy(bn.running_mean),
            "rolling_variance": to_numpy(bn.running_var)}


def _load_sttn_pair(conv: TernaryConv2d) -> None:
    """Turn the loaded weight of an STTN layer into its binary pair (W1, W2).

    A file written by a ternary layer holds α_k·T per output channel k. The pair
    W1 = α_k/2·(T + (1−|T|)), W2 = α_k/2·(T − (1−|T|)) (T in {−1, 0, 1}) has exactly those ternary values
    under STTN's rule (codes = (sign W1 + sign W2)/2, scale = (‖W1_k‖₁ + ‖W2_k‖₁)/n). A float file
    (more than one magnitude in a channel) is split the way ``from_float`` splits a float layer.
    """
    w = conv.weight.detach()
    flat = w.abs().flatten(1)
    alpha = flat.amax(1)
    is_ternary = bool(((flat == 0) | (flat == alpha[:, None])).all()) and bool((alpha <= 2).all())
    with torch.no_grad():
        if is_ternary:
            codes = torch.sign(w)
            zero = 1 - codes.abs()
            half = (alpha / 2).view(-1, *([1] * (w.dim() - 1)))
            w1, w2 = half * (codes + zero), half * (codes - zero)
        else:
            plain = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, bias=False,
                              groups=conv.groups, device=w.device, dtype=w.dtype)
            plain.weight.copy_(w)
            pair = TernaryConv2d.from_float(plain, conv.config)
            w1, w2 = pair.weight, pair.weight2
        conv.weight.copy_(w1)
        conv.weight2.copy_(w2)


def _exact_ternary(conv: TernaryConv2d) -> torch.Tensor:
    """Σ codes·scale over the layer's ternary terms (one for TWN/TTN/STTN, t_ex for TTN's REL)."""
    terms = conv.ternary_terms()
    return sum(codes.float() * scale for codes, scale in terms).to(conv.weight.dtype)


@register_section("convolutional")
class Convolutional(DarknetLayer):
    """conv → (BN with β | bias) → activation. ``ternary=1`` → TernaryConv2d with the build's method."""

    def __init__(self, info, ctx):
        super().__init__(info)
        a = info.attrs
        bn = a["batch_normalize"]
        args = (info.in_shape[0], a["filters"], a["size"])
        d = a["dilation"]     # AlexeyAB's im2col pads by padding·dilation (shapes.py checks the sizes agree)
        kw = dict(stride=a["strides"], padding=a["padding"] * d, dilation=d, groups=a["groups"], bias=not bn,
                  **ctx.factory)
        self.ternary = bool(a["ternary"]) and ctx.ternary is not None
        self.conv = TernaryConv2d(*args, config=ctx.ternary, **kw) if self.ternary else nn.Conv2d(*args, **kw)
        self.bn = DarknetBatchNorm2d.for_dialect(a["filters"], info.section.dialect, **ctx.factory) if bn else None
        self.act = Activation(a["activation"])

    def forward(self, x, outs):
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return self.act(x)

    def load_arrays(self, arrays):
        copy_into(self.bn.bias if self.bn is not None else self.conv.bias, arrays["biases"])
        if self.bn is not None:
            _bn_load(self.bn, arrays)
        copy_into(self.conv.weight, arrays["weights"])
        if self.ternary and self.conv.config.method == "sttn":
            _load_sttn_pair(self.conv)

    def arrays(self):
        out = {"biases": to_numpy(self.bn.bias if self.bn is not None else self.conv.bias)}
        if self.bn is not None:
            out.update(_bn_arrays(self.bn))
        # Ternary layers are written as their ternary values α·T (darknetTWN's save_convolutional_weights),
        # rebuilt from codes and scales so the file holds exactly {−α, 0, α}: the straight-through sum the
        # forward uses, w + (α·T − w), can be an ulp off α·T.
        weight = _exact_ternary(self.conv) if self.ternary else self.conv.weight
        out["weights"] = to_numpy(weight)
        return out


@register_section("connected")
class Connected(DarknetLayer):
    """Fully connected on the flattened CHW input; output (B, out, 1, 1) like darknet's out_c = outputs."""

    def __init__(self, info, ctx):
        super().__init__(info)
        a = info.attrs
        self.fc = nn.Linear(info.inputs, a["output"], bias=not a["batch_normalize"], **ctx.factory)
        self.bn = (DarknetBatchNorm2d.for_dialect(a["output"], info.section.dialect, connected=True, **ctx.factory)
                   if a["batch_normalize"] else None)
        self.act = Activation(a["activation"])

    def forward(self, x, outs):
        y = self.fc(x.flatten(1))
        if self.bn is not None:
            y = self.bn(y)
        return self.act(y)[:, :, None, None]

    def load_arrays(self, arrays):
        copy_into(self.bn.bias if self.bn is not None else self.fc.bias, arrays["biases"])
        copy_into(self.fc.weight, arrays["weights"])
        if self.bn is not None:
            _bn_load(self.bn, arrays)

    def arrays(self):
        out = {"biases": to_numpy(self.bn.bias if self.bn is not None else self.fc.bias),
               "weights": to_numpy(self.fc.weight)}
        if self.bn is not None:
            out.update(_bn_arrays(self.bn))
        return out


@register_section("batchnorm")
class BatchNorm(DarknetLayer):
    """A standalone ``[batchnorm]``: scales and rolling statistics; pjreddie keeps its β at 0 (neither loaded nor
    saved), AlexeyAB loads and saves it first."""

    def __init__(self, info, ctx):
        super().__init__(info)
        dialect = info.section.dialect
        self.bn = DarknetBatchNorm2d.for_dialect(info.in_shape[0], dialect, bias=dialect == "alexeyab",
                                                 **ctx.factory)

    def forward(self, x, outs):
        return self.bn(x)

    def load_arrays(self, arrays):
        if self.bn.bias is not None:
            copy_into(self.bn.bias, arrays["biases"])
        _bn_load(self.bn, arrays)

    def arrays(self):
        out = {"biases": to_numpy(self.bn.bias)} if self.bn.bias is not None else {}
        return {**out, **_bn_arrays(self.bn)}
