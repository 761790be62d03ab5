"""Ternary layers that drop into any PyTorch model.

``TernaryConv2d`` and ``TernaryLinear`` subclass the float layers, so state_dict keys, ``isinstance`` checks
and the convolution code stay those of PyTorch. They keep the float ("shadow") weight as the parameter and
ternarize it on every forward, in training *and* in evaluation, so evaluating a model measures the real
ternary network. In eval mode under ``torch.no_grad`` the ternary weight is cached until the float weight
changes, so inference pays for ternarization once.

STTN layers hold a second float weight, ``weight2``: the two binary filters of the pair. Because a convolution
is linear, conv(x, B1) + conv(x, B2) = conv(x, B1 + B2), so the pair runs as one ternary convolution.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..quant import functional as Q
from ..quant.configs import STTNConfig, TTNConfig, TWNConfig


class _Ternary:
    """What TernaryConv2d and TernaryLinear share: the config, the ternary weight and its codes."""

    config: TWNConfig | TTNConfig | STTNConfig

    def _setup_ternary(self, config):
        self.config = config
        self._cache_key = None
        self._cache = None
        if isinstance(config, STTNConfig):
            self.weight2 = nn.Parameter(torch.empty_like(self.weight))
            self._split_into_pair()

    # -- the weight the layer computes with ------------------------------------------------------
    def ternary_weight(self) -> torch.Tensor:
        if not self.training and not torch.is_grad_enabled():
            key = self._version_key()
            if key != self._cache_key:
                self._cache, self._cache_key = self._compute_ternary_weight(), key
            return self._cache
        return self._compute_ternary_weight()

    def _version_key(self):
        key = (self.weight._version, self.weight.data_ptr(), self.weight.dtype)
        if isinstance(self.config, STTNConfig):
            key += (self.weight2._version, self.weight2.data_ptr())
        return key

    def _compute_ternary_weight(self) -> torch.Tensor:
        c = self.config
        if isinstance(c, TWNConfig):
            return Q.twn_ternarize(self.weight, c.threshold, c.per_channel)
        if isinstance(c, TTNConfig):
            return Q.ttn_ternarize(self.weight, c.threshold, c.per_channel, c.t_ex, c.clip)
        return Q.sttn_ternarize(self.weight, self.weight2, c.clip)

    # -- integer view ----------------------------------------------------------------------------
    def ternary_terms(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """[(codes, scale)]: int8 codes in {-1, 0, 1} and float32 scales; the weight is Σ codes·scale.

        One term for TWN, STTN and plain TTN; t_ex terms for TTN with the Residual Expansion Layer. A scale is
        a 0-d tensor (per layer) or shaped (C, 1, …) (per output channel).
        """
        c = self.config
        if isinstance(c, TWNConfig):
            return [Q.twn_params(self.weight, c.threshold, c.per_channel)]
        if isinstance(c, TTNConfig):
            factors = Q.REL_THRESHOLDS[c.t_ex] if c.t_ex > 1 else (c.threshold,)
            return [Q.ttn_params(self.weight, f, c.per_channel) for f in factors]
        return [Q.sttn_params(self.weight, self.weight2)]

    def ternary_codes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(codes, scale) of a single-term layer; see ternary_terms for TTN with t_ex > 1."""
        terms = self.ternary_terms()
        if len(terms) != 1:
            raise ValueError(f"this layer sums {len(terms)} ternary tensors (TTN t_ex={self.config.t_ex}); "
                             "use ternary_terms()")
        return terms[0]

    def sparsity(self) -> float:
        """Fraction of zero weights in the ternary tensor(s)."""
        terms = self.ternary_terms()
        return float(sum((codes == 0).float().mean() for codes, _ in terms) / len(terms))

    # -- conversion ------------------------------------------------------------------------------
    def _split_into_pair(self):
        """Split the float weight into STTN's two binary filters, starting as the per-channel TWN
        ternarization of W (codes and values; ``quant.sttn_split``)."""
        w1, w2 = Q.sttn_split(self.weight, self.config.init_threshold, self.config.clip)
        with torch.no_grad():
            self.weight.copy_(w1)
            self.weight2.copy_(w2)

    def to_float_shadow(self) -> nn.Module:
        """A plain float layer holding the float shadow weight (for STTN, whose shadow is a pair: T itself)."""
        plain = self.to_float()
        if not isinstance(self.config, STTNConfig):
            with torch.no_grad():
                plain.weight.copy_(self.weight)
        return plain

    def extra_repr(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in vars(self.config).items())
        return f"{super().extra_repr()}, ternary={self.config.method}({opts})"


class TernaryConv2d(_Ternary, nn.Conv2d):
    def __init__(self, *args, config=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._setup_ternary(config or TWNConfig())

    def forward(self, x):
        return self._conv_forward(x, self.ternary_weight(), self.bias)

    @classmethod
    def from_float(cls, conv: nn.Conv2d, config) -> "TernaryConv2d":
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                  conv.dilation, conv.groups, conv.bias is not None, conv.padding_mode,
                  device=conv.weight.device, dtype=conv.weight.dtype, config=TWNConfig())
        with torch.no_grad():
            new.weight.copy_(conv.weight)
            if conv.bias is not None:
                new.bias.copy_(conv.bias)
        new.train(conv.training)
        new._setup_ternary(config)
        return new

    def to_float(self) -> nn.Conv2d:
        """A plain Conv2d holding the ternary weight (values α·T), e.g. for export."""
        conv = nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding,
                         self.dilation, self.groups, self.bias is not None, self.padding_mode,
                         device=self.weight.device, dtype=self.weight.dtype)
        with torch.no_grad():
            conv.weight.copy_(self._compute_ternary_weight())
            if self.bias is not None:
                conv.bias.copy_(self.bias)
        return conv

    def merge(self) -> "TernaryConv2d":
        """Fold an STTN pair into one ternary conv (per-channel TWN of T = B1 + B2, which is T itself)."""
        if not isinstance(self.config, STTNConfig):
            raise ValueError("merge() folds an STTN pair; this layer is " + self.config.method)
        return TernaryConv2d.from_float(self.to_float(), TWNConfig(per_channel=True))


class TernaryLinear(_Ternary, nn.Linear):
    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None, config=None):
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        self._setup_ternary(config or TWNConfig())

    def forward(self, x):
        return F.linear(x, self.ternary_weight(), self.bias)

    @classmethod
    def from_float(cls, linear: nn.Linear, config) -> "TernaryLinear":
        new = cls(linear.in_features, linear.out_features, linear.bias is not None,
                  device=linear.weight.device, dtype=linear.weight.dtype, config=TWNConfig())
        with torch.no_grad():
            new.weight.copy_(linear.weight)
            if linear.bias is not None:
                new.bias.copy_(linear.bias)
        new.train(linear.training)
        new._setup_ternary(config)
        return new

    def to_float(self) -> nn.Linear:
        lin = nn.Linear(self.in_features, self.out_features, self.bias is not None,
                        device=self.weight.device, dtype=self.weight.dtype)
        with torch.no_grad():
            lin.weight.copy_(self._compute_ternary_weight())
            if self.bias is not None:
                lin.bias.copy_(self.bias)
        return lin

    def merge(self) -> "TernaryLinear":
        if not isinstance(self.config, STTNConfig):
            raise ValueError("merge() folds an STTN pair; this layer is " + self.config.method)
        return TernaryLinear.from_float(self.to_float(), TWNConfig(per_channel=True))


class TernaryActivation(nn.Module):
    """STTN's activation: −1 / 0 / +1 with thresholds ±0.5; gradient passed for |x| ≤ 1."""

    def forward(self, x):
        return Q.ternary_activation(x)


def is_ternary(module: nn.Module) -> bool:
    return isinstance(module, _Ternary)
