"""What training leaves in the backup folder, and how a network starts.

Darknet files (``<base>`` = the cfg's name without folder and extension), all atomic (temporary file, then
rename), ternary layers written as α·T so stock darknet runs them:

    <base>_last.weights        every 100 iterations (AlexeyAB's name for pjreddie's .backup)
    <base>_<i>.weights         darknetTWN's schedule: i % 10000 == 0, every 400 from 1000 to 10000, every
                               4000 after (or every ``save_every`` iterations)
    <base>.minloss.weights     the minimum of the smoothed loss after burn-in (methods.md §1.6): what the
                               staged method chains on; ``minloss_epochs`` also keeps <base>_<epoch>.minloss
    <base>_best.weights        the best mAP@0.5 (with --map)
    <base>_final.weights       at the end

and ``<base>.ckpt``: the full state (float shadow weights, SGD momentum, counters, RNG position) that
``--resume`` continues from after a kill; darknet itself can only restart from weights.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch

from ..atomic import write_bytes_atomic
from ..models.checkpoint import save_atomic
from ..models.load import DETECTOR_FORMAT as CHECKPOINT_FORMAT, load_detector_state as load_state

__all__ = ["save_weights_atomic", "darknet_init_", "periodic_save", "CHECKPOINT_FORMAT", "save_state", "load_state"]



def save_weights_atomic(net, path, seen: int) -> Path:
    """``net.save_weights`` through a temporary file and a rename."""
    return write_bytes_atomic(path, net.encode_weights(seen=seen))


def periodic_save(iteration: int, every: int | None = None) -> bool:
    """Whether ``<base>_<iteration>.weights`` is written at this iteration."""
    if every:
        return iteration % every == 0
    return iteration % 10000 == 0 or (1000 <= iteration < 10000 and iteration % 400 == 0) or \
        (iteration > 10000 and iteration % 4000 == 0)


def darknet_init_(net, seed: int = 0) -> None:
    """Darknet's initial values: conv/connected weights ~ N(0, 2/fan_in) (``scale·rand_normal()`` with
    scale = sqrt(2/(size²·c/groups))), biases 0, batch-norm scale 1 and shift 0. Layers a weights file
    fills are overwritten afterwards."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in net.layers:
            for name, p in layer.named_parameters():
                if name.startswith("bn."):
                    p.fill_(1.0 if name.endswith("weight") else 0.0)
                elif name.endswith("bias"):
                    p.zero_()
                elif p.dim() >= 2:
                    fan_in = p[0].numel()
                    p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float32).to(p) * math.sqrt(2.0 / fan_in))
            if getattr(getattr(getattr(layer, "conv", None), "config", None), "method", None) == "sttn":
                layer.conv._split_into_pair()      # STTN: rebuild the binary pair from the new weight


def save_state(path, net, optimizer, **state) -> None:
    save_atomic({"format": CHECKPOINT_FORMAT, "model": net.state_dict(), "optimizer": optimizer.state_dict(),
                 **state}, path)
