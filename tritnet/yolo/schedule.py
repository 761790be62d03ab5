"""The [net] training schedule: darknet's learning-rate policies and its SGD update as a torch optimizer.

``learning_rate(net, batch_num)`` is ``get_current_rate`` (``network.c``): during ``burn_in`` batches the rate
is lr·(b/burn_in)^power, then the policy:

    constant  lr                         steps  lr·Π scales[k] over steps[k] ≤ b
    step      lr·scale^(b/step)          exp    lr·gamma^b
    poly      lr·(1 − b/max_batches)^power
    sigmoid   lr/(1 + exp(gamma·(b − step)))
    random    lr·U(0,1)^power

Darknet's update (``update_convolutional_layer``) with B = batch (images per update), per layer:
u += −Σ gradients; u += −decay·B·W; W += (lr/B)·u; u ×= momentum. With the loss divided by B
(``loss.py``) this is exactly ``torch.optim.SGD(momentum, weight_decay=decay, dampening=0)``. Biases and
batch-norm scales get no decay. A layer's ``learning_rate=`` key scales its rate. With N processes darknet
multiplies the rate by N (``-gpus``).
"""
from __future__ import annotations

import math
import random

import torch

__all__ = ["learning_rate", "make_optimizer", "set_rate"]


def learning_rate(net, batch_num: int, rng: random.Random | None = None) -> float:
    """Darknet's ``get_current_rate`` for a [net] section at batch ``batch_num``."""
    p = net.param
    lr, power = p("learning_rate"), p("power")
    burn_in = p("burn_in")
    if burn_in and batch_num < burn_in:
        return lr * math.pow(batch_num / burn_in, power)
    policy = p("policy")
    if policy == "constant":
        return lr
    if policy == "step":
        return lr * math.pow(p("scale"), batch_num // p("step"))
    if policy == "steps":
        rate = lr
        for step, scale in zip(p("steps"), p("scales")):
            if step > batch_num:
                return rate
            rate *= scale
        return rate
    if policy == "exp":
        return lr * math.pow(p("gamma"), batch_num)
    if policy == "poly":
        max_batches = p("max_batches")
        return lr * math.pow(max(1 - batch_num / max_batches, 0.0), power) if max_batches else lr
    if policy == "sigmoid":
        return lr * (1.0 / (1.0 + math.exp(p("gamma") * (batch_num - p("step")))))
    if policy == "random":
        # darknet draws rand_uniform() each iteration; drawn from the iteration number here, so a resumed
        # run repeats the rates of an uninterrupted one
        return lr * math.pow((rng or random.Random(batch_num)).random(), power)
    raise ValueError(f"{net.where('policy')}: unknown policy {policy!r}")


def make_optimizer(net) -> torch.optim.SGD:
    """SGD with darknet's momentum and decay: one group per layer and kind (weights decay, the rest not);
    each group remembers its layer's rate scale in ``lr_scale``."""
    cfg = net.cfg.net
    groups = []
    for layer, info in zip(net.layers, net.infos):
        scale = info.section.param("learning_rate")
        decayed, plain = [], []
        for name, param in layer.named_parameters():
            if not param.requires_grad:
                continue
            is_weight = name.split(".")[-1] in ("weight", "weight2") and not name.startswith("bn.")
            (decayed if is_weight else plain).append(param)
        if decayed:
            groups.append({"params": decayed, "weight_decay": cfg.param("decay"), "lr_scale": scale})
        if plain:
            groups.append({"params": plain, "weight_decay": 0.0, "lr_scale": scale})
    return torch.optim.SGD(groups, lr=cfg.param("learning_rate"), momentum=cfg.param("momentum"), dampening=0.0)


def set_rate(optimizer: torch.optim.Optimizer, rate: float) -> None:
    for g in optimizer.param_groups:
        g["lr"] = rate * g.get("lr_scale", 1.0)
