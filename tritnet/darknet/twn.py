"""darknetTWN's ternarization, bit for bit, and the ternarized ``.weights`` file it saves (numpy only, no torch).

darknetTWN (``forward_convolutional_layer``, src/convolutional_layer.c:479-502, CPU path) ternarizes each
``ternary=1`` conv *per layer*, all filters and groups together, from its float weights:

    m = Σ|W| / n              (float32)
    Δ = (float)(0.7 · (double)m)
    α = Σ_{|W|>Δ} |W| / #{|W|>Δ}   (float32)
    W_t = +α where W > Δ, −α where W < −Δ, else 0   (strict comparisons)

Biases and batch norm are not touched. The float32 sums are what gcc ``-Ofast`` makes of darknet's loops on
x86-64 (SSE2): four lanes, lane j summing elements j, j+4, …, reduced as (l0 + l2) + (l1 + l3), then the n % 4
tail elements added one by one. That order decides α and which weights sit at the threshold: a float64 mean
moves α by up to 2e-4 relative on layers of millions of weights and flips thousands of weights between 0 and
±α (reference README). ``save_weights`` then writes α·T for those layers: :func:`ternarize_weights` writes the
same bytes as darknetTWN does after a ternary forward pass. tritnet's own TWN (``tritnet.quant``, for training)
uses torch's float32 mean, which is the same rule with another summation order.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from .cfg import parse_cfg
from .shapes import infer_layers
from .weights import DarknetWeights, encode_weights, load_weights

__all__ = ["sse_sum", "darknettwn_ternarize", "ternarize_layers", "ternarize_weights"]

_F = np.float32


def sse_sum(values: np.ndarray) -> np.float32:
    """Σ values in float32 as darknetTWN's -Ofast build adds them: 4 sequential lanes, (l0+l2)+(l1+l3), tail."""
    a = np.ascontiguousarray(values, _F).reshape(-1)
    head = len(a) // 4 * 4
    lanes = np.add.accumulate(a[:head].reshape(-1, 4), axis=0, dtype=_F)[-1] if head else np.zeros(4, _F)
    total = _F(_F(lanes[0] + lanes[2]) + _F(lanes[1] + lanes[3]))
    for v in a[head:]:
        total = _F(total + v)
    return total


def darknettwn_ternarize(weights: np.ndarray) -> tuple[np.ndarray, np.float32, np.float32]:
    """(α·T shaped like ``weights``, α, Δ) of one layer, exactly as darknetTWN computes them."""
    w = np.asarray(weights, _F)
    a = np.abs(w)
    mean = _F(sse_sum(a) / _F(a.size))
    delta = _F(0.7 * np.float64(mean))
    kept = a > delta
    count = int(kept.sum())
    # darknet divides by the count even when it is 0 (an all-zero layer): 0/0 = NaN; keep such a layer at 0
    alpha = _F(sse_sum(np.where(kept, a, _F(0))) / _F(count)) if count else _F(0)
    out = np.zeros_like(w)
    out[w > delta] = alpha
    out[w < -delta] = -alpha
    return out, alpha, delta


def ternarize_layers(infos, layers: Mapping) -> dict:
    """``{layer: arrays}`` with the weights of every ``ternary=1`` conv replaced by darknetTWN's α·T."""
    out = {}
    for index, arrays in layers.items():
        arrays = dict(arrays)
        if infos[index].type == "convolutional" and infos[index].ternary:
            arrays["weights"] = darknettwn_ternarize(arrays["weights"])[0]
        out[index] = arrays
    return out


def ternarize_weights(cfg, weights, out=None) -> DarknetWeights:
    """darknetTWN's ternarized copy of a float ``.weights`` file: α·T for the ``ternary=1`` convs, everything else
    (header, ``seen``, biases, batch norm, other layers) as read. Writes it to ``out`` when given; the bytes are
    the ones darknetTWN's ``save_weights`` writes after a ternary forward pass."""
    sections = cfg if isinstance(cfg, list) else parse_cfg(cfg)
    w = weights if isinstance(weights, DarknetWeights) else load_weights(sections, weights)
    result = DarknetWeights(w.header, ternarize_layers(infer_layers(sections), w.layers), w.filled, w.end_layer,
                            str(out) if out is not None else None)
    if out is not None:
        Path(out).write_bytes(encode_weights(sections, result, keep_header=True))
    return result
