"""How many bytes a model's weights take: float32, and with its ternary layers packed at 2 or 1.6 bits.

Ternary layers count their codes packed (4 weights per byte, or 5 per byte) plus one float32 per scale; STTN
pairs count once (the merged ternary filter). Everything else (float layers, biases, batch-norm statistics)
counts 4 bytes a value, as in a float32 file.
"""
from __future__ import annotations

import torch.nn as nn

from ..quant import packed_bytes
from .layers import is_ternary


def model_size(model: nn.Module) -> dict:
    float32 = packed2 = packed16 = 0
    ternary_params, second_of_pair = set(), set()
    for m in model.modules():
        if is_ternary(m):
            for codes, scale in m.ternary_terms():
                packed2 += packed_bytes(codes.numel(), 2) + 4 * scale.numel()
                packed16 += packed_bytes(codes.numel(), 1.6) + 4 * scale.numel()
            ternary_params.add(id(m.weight))
            if hasattr(m, "weight2"):
                ternary_params.add(id(m.weight2))
                second_of_pair.add(id(m.weight2))
    for p in model.parameters():
        if id(p) in ternary_params:
            float32 += 0 if id(p) in second_of_pair else 4 * p.numel()
            continue
        float32 += 4 * p.numel()
        packed2 += 4 * p.numel()
        packed16 += 4 * p.numel()
    for name, b in model.named_buffers():
        if not name.endswith("num_batches_tracked"):
            float32 += 4 * b.numel()
            packed2 += 4 * b.numel()
            packed16 += 4 * b.numel()
    return {"float32_bytes": float32, "packed_2bit_bytes": packed2, "packed_1.6bit_bytes": packed16}

