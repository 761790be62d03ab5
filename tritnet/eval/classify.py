"""Classifier evaluation: loss, top-1 and top-5 over a loader."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def topk_correct(logits: torch.Tensor, target: torch.Tensor, ks=(1, 5)) -> list[int]:
    k_max = min(max(ks), logits.shape[1])
    top = logits.topk(k_max, dim=1).indices
    hit = top.eq(target[:, None])
    return [int(hit[:, :min(k, k_max)].any(dim=1).sum()) for k in ks]


@torch.no_grad()
def evaluate(model, loader, device="cpu", progress=None) -> dict:
    """{'loss', 'top1', 'top5', 'images'} of ``model`` in eval mode (percentages for top-k)."""
    was_training = model.training
    model.eval()
    n = loss = c1 = c5 = 0
    for x, y in (progress(loader) if progress else loader):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        out = model(x)
        loss += float(F.cross_entropy(out, y, reduction="sum"))
        a, b = topk_correct(out, y)
        c1, c5, n = c1 + a, c5 + b, n + len(y)
    model.train(was_training)
    if n == 0:
        raise ValueError("evaluation set is empty")
    return {"loss": loss / n, "top1": 100.0 * c1 / n, "top5": 100.0 * c5 / n, "images": n}
