"""Re-estimate batch-norm statistics after ternarization.

Ternarizing a trained network changes every layer's output distribution, so the BatchNorm running means and
variances learnt in float no longer fit: the ternary ResNet-20 scores ~11% on CIFAR-10 with the float
statistics and ~46% after re-estimating them, before any training. Training alone fixes this too, but slowly
(momentum 0.1 per step); a few forward passes fix it at once.
"""
from __future__ import annotations

from typing import Iterable, Optional

import torch
import torch.nn as nn

BN_BATCHES = 20     # batches a re-estimation averages over (classifier default; the stage runner's for darknet)


def batchnorms_after(model: nn.Module, first: nn.Module) -> list:
    """The batch norms defined at or after ``first`` in the model's module order: the ones whose input can
    change when ``first`` does (the CIFAR ResNets and darknet networks define their modules in forward order;
    darknet routes only read earlier layers)."""
    mods = list(model.modules())
    at = next((i for i, m in enumerate(mods) if m is first), None)
    if at is None:
        raise ValueError(f"{type(first).__name__} is not a module of the model")
    return [m for m in mods[at:] if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, loader, batches: int = BN_BATCHES, device="cpu",
                          only: Optional[Iterable[nn.Module]] = None) -> int:
    """Replace BN running statistics by their plain average over ``batches`` batches; returns images seen.

    ``only``: re-estimate just these batch norms (the others keep their statistics; they still normalise with
    the batch statistics during the passes, as in training). The loader yields (images, ...) tuples.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    chosen = bns if only is None else [m for m in bns if any(m is o for o in only)]
    if not chosen:
        return 0
    saved = [(m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone()) for m in bns]
    was_training = model.training
    for m in bns:
        if any(m is c for c in chosen):
            m.reset_running_stats()
            m.momentum = None  # cumulative average instead of an exponential one
        else:
            m.momentum = 0.0   # running = 1·running + 0·batch: untouched
    model.train()
    seen = 0
    for i, batch in enumerate(loader):
        if i >= batches:
            break
        x = batch[0]
        model(x.to(device))
        seen += len(x)
    for m, (momentum, count) in zip(bns, saved):
        m.momentum = momentum
        if count is not None and not any(m is c for c in chosen):
            m.num_batches_tracked.copy_(count)
    model.train(was_training)
    return seen
