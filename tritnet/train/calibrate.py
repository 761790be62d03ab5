"""Re-estimate batch-norm statistics after ternarization.

Ternarizing a trained network changes every layer's output distribution, so the BatchNorm running means and
variances learnt in float no longer fit: the ternary ResNet-20 scores ~11% on CIFAR-10 with the float
statistics and ~46% after re-estimating them, before any training. Training alone fixes this too, but slowly
(momentum 0.1 per step); a few forward passes fix it at once.
"""
from __future__ import annotations

import torch
import torch.nn as nn


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, loader, batches: int = 20, device="cpu") -> int:
    """Replace BN running statistics by their plain average over ``batches`` batches; returns images seen."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return 0
    saved = [(m.momentum, m.training) for m in bns]
    was_training = model.training
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average instead of an exponential one
    model.train()
    seen = 0
    for i, (x, _) in enumerate(loader):
        if i >= batches:
            break
        model(x.to(device))
        seen += len(x)
    for m, (momentum, _) in zip(bns, saved):
        m.momentum = momentum
    model.train(was_training)
    return seen
