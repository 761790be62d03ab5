"""Darknet's activations (``src/activations.h``) as torch functions, one registry from cfg name to function.

Each formula is darknet's own, including the odd ones (``ramp`` is x·[x>0] + 0.1·x, ``relie`` leaks 0.01,
``leaky`` 0.1). Written with torch ops so they run on any device and have gradients.

darknetTWN adds ``swish``; AlexeyAB's darknet adds ``mish`` (softplus with threshold 20), ``hard_mish``, ``relu6``,
``gelu`` (its tanh approximation with its constants), ``revleaky`` (leaky on the CPU) and the ``normalize_channels``
family, which mix the channels of one position (ε = 0.0001). AlexeyAB's CPU ``activate()`` has no case for relu6
and returns 0; this is relu6 as its ``relu6_activate`` (and its GPU build) computes it.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _stair(x):
    n = torch.floor(x)
    half = torch.floor(x / 2)
    return torch.where(torch.remainder(n, 2) == 0, half, (x - n) + half)


def _plse(x):
    return torch.where(x < -4, 0.01 * (x + 4), torch.where(x > 4, 0.01 * (x - 4) + 1, 0.125 * x + 0.5))


def _lhtan(x):
    return torch.where(x < 0, 0.001 * x, torch.where(x > 1, 0.001 * (x - 1) + 1, x))


def _mish(x):
    softplus = torch.where(x > 20, x, torch.where(x < -20, torch.exp(x), torch.log1p(torch.exp(x))))
    return x * torch.tanh(softplus)


def _hard_mish(x):
    return torch.where(x > 0, x, torch.where(x > -2, x * x / 2 + x, torch.zeros_like(x)))


def _gelu(x):
    return 0.5 * x * (1 + torch.tanh(0.797885 * x + 0.035677 * x ** 3))


def _normalize_channels(x):
    """relu(x) / (ε + Σ_channels relu(x)) at every position."""
    pos = F.relu(x)
    return pos / (1e-4 + pos.sum(1, keepdim=True))


def _normalize_channels_softmax(x, use_max: bool = False):
    """exp(x − m) / (ε + Σ_channels exp(x − m)), m the channel maximum (``_maxval``) or 0."""
    e = torch.exp(x - x.amax(1, keepdim=True)) if use_max else torch.exp(x)
    return e / (1e-4 + e.sum(1, keepdim=True))


ACTIVATIONS = {
    "linear": lambda x: x,
    "logistic": torch.sigmoid,
    "loggy": lambda x: 2 * torch.sigmoid(x) - 1,
    "relu": F.relu,
    "elu": lambda x: torch.where(x >= 0, x, torch.expm1(x)),
    "selu": lambda x: torch.where(x >= 0, 1.0507 * x, 1.0507 * 1.6732 * torch.expm1(x)),
    "relie": lambda x: torch.where(x > 0, x, 0.01 * x),
    "ramp": lambda x: F.relu(x) + 0.1 * x,
    "leaky": lambda x: F.leaky_relu(x, 0.1),
    "tanh": torch.tanh,
    "plse": _plse,
    "stair": _stair,
    "hardtan": lambda x: torch.clamp(x, -1, 1),
    "lhtan": _lhtan,
    "swish": lambda x: x * torch.sigmoid(x),
    "mish": _mish,
    "hard_mish": _hard_mish,
    "relu6": lambda x: torch.clamp(x, 0, 6),
    "gelu": _gelu,
    "revleaky": lambda x: F.leaky_relu(x, 0.1),
    "normalize_channels": _normalize_channels,
    "normalize_channels_softmax": _normalize_channels_softmax,
    "normalize_channels_softmax_maxval": lambda x: _normalize_channels_softmax(x, use_max=True),
}


class Activation(nn.Module):
    """One darknet activation by name (``leaky``, ``linear``, ``logistic``, ...)."""

    def __init__(self, name: str):
        super().__init__()
        if name not in ACTIVATIONS:
            raise ValueError(f"unknown darknet activation {name!r}; known: {', '.join(ACTIVATIONS)}")
        self.name = name
        self.fn = ACTIVATIONS[name]

    def forward(self, x):
        return self.fn(x)

    def extra_repr(self) -> str:
        return self.name
