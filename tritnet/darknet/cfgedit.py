"""The cfg edits darknet users make by hand to train on their own data, as functions.

``set_classes(cfg, 3)`` sets ``classes=3`` in every [region]/[yolo] section and ``filters`` of the
[convolutional] feeding each one: num·(classes + 5) for a region head, len(mask)·(classes + 5) for a yolo
head (``(5 + 3)·5 = 40`` for ttt5's five anchors). ``set_schedule`` changes [net] keys (batch, max_batches,
...) the same way a user edits the file.
"""
from __future__ import annotations

from .cfg import Cfg, validate_cfg

__all__ = ["set_classes", "set_schedule"]


def set_classes(cfg: Cfg, classes: int) -> Cfg:
    """Edit ``cfg`` in place for ``classes`` classes (returns it); CfgError if a head is not fed by a conv."""
    if classes < 1:
        raise ValueError(f"classes must be >= 1, got {classes}")
    body = cfg.layers
    for i, sec in enumerate(body):
        if sec.type not in ("region", "yolo"):
            continue
        if i == 0 or body[i - 1].type != "convolutional":
            raise sec.error("the layer before this head is not a [convolutional]; set its filters by hand")
        if sec.type == "region":
            per_cell = sec.param("num")
        else:
            mask = sec.param("mask")
            per_cell = len(mask) if mask is not None else sec.param("num")
        sec.set("classes", classes)
        body[i - 1].set("filters", per_cell * (classes + 5))
    validate_cfg(cfg)
    return cfg


def set_schedule(cfg: Cfg, **keys) -> Cfg:
    """Set [net] keys (``batch=64, subdivisions=4, max_batches=500, steps=[400, 450]``) and re-check the cfg."""
    for k, v in keys.items():
        cfg.net.set(k, v)
    validate_cfg(cfg)
    return cfg
