"""The detection loss of a whole network: every [region]/[yolo] head's darknet deltas, turned into a
PyTorch loss whose gradient is exactly what darknet back-propagates.

Darknet does not differentiate a loss: each head writes ``delta`` (−gradient) into its input and the
layers below back-propagate it. The same happens here through a surrogate: for a head input ``z`` and
darknet's gradient ``g`` (numpy, no graph), ``L = −Σ g·z / batch``, so ∂L/∂z = −g / batch. The division by
the images per update (``batch`` in [net]) turns darknet's update rule (W += lr/batch · Σ updates, with
decay·batch) into plain SGD with momentum and weight decay (see ``schedule.py``).

The printed loss is darknet's: per sub-batch the mean over the heads of Σ delta², summed over the
sub-batches and divided by the images of the iteration.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from .region_loss import RegionSettings, region_loss
from .yolo_loss import YoloSettings, yolo_loss

__all__ = ["HeadInputs", "DetectionLoss", "head_settings"]


def head_settings(net):
    """[(layer index, 'region'|'yolo', settings)] of a DarknetNet's heads."""
    out = []
    if net.cfg.dialect == "alexeyab":
        _refuse_bad_label_filters(net.cfg.net)
    for i in net.head_indices:
        info = net.infos[i]
        s = RegionSettings.from_info(info) if info.type == "region" else YoloSettings.from_info(info)
        out.append((i, info.type, s))
    if not out:
        raise ValueError(f"{net.cfg.path}: the network has no [region] or [yolo] layer to train")
    return out


def _refuse_bad_label_filters(net_section):
    """[net] keys with which AlexeyAB's yolo layer zeroes deltas late in training (bad-label rejection, the
    equidistant point): not implemented, refused at their line instead of silently training without them."""
    for key in ("equidistant_point", "badlabels_rejection_percentage", "num_sigmas_reject_badlabels"):
        if net_section.param(key):
            raise net_section.error(f"{key}={net_section.param(key)} (AlexeyAB's late-training delta filter in "
                                    f"the yolo loss) is not supported in training; remove it", key)


class HeadInputs(nn.Module):
    """Runs the network and returns (input, activated output) of each head: what the loss needs. A module
    of its own so DistributedDataParallel can wrap it."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        outs = self.net.forward_all(x)
        return [(outs[i - 1], outs[i]) for i in self.net.head_indices]


class DetectionLoss:
    def __init__(self, net):
        self.heads = head_settings(net)

    @property
    def max_boxes(self) -> int:
        """Truth rows per image: the last head's ``max`` (darknet's ``args.num_boxes = l.max_boxes``)."""
        return self.heads[-1][2].max_boxes

    def __call__(self, pairs, truth: torch.Tensor, seen: int, net_w: int, net_h: int, batch: int):
        """(surrogate loss tensor, darknet cost of this sub-batch, per-head stats)."""
        truth_np = truth.detach().cpu().numpy()
        surrogate, costs, stats = 0.0, [], []
        for (index, kind, s), (z, act) in zip(self.heads, pairs):
            b, _, h, w = act.shape
            out = act.detach().float().cpu().numpy().reshape(b, -1, s.classes + 5, h, w)
            with np.errstate(over="ignore", invalid="ignore"):   # darknet's expf: an exploding w/h is inf, silently
                if kind == "region":
                    res = region_loss(out, truth_np, s, seen)
                else:
                    res = yolo_loss(out, truth_np, s, net_w, net_h)
            g = torch.from_numpy(res.grad.reshape(act.shape)).to(z.device, z.dtype)
            surrogate = surrogate - (z * g).sum() / batch
            costs.append(res.cost)
            stats.append(res.stats)
        return surrogate, float(np.mean(costs)), stats
