"""One registry of model builders: ``create_model(name)``, ``list_models()``, timm style.

Each entry carries the facts a loader and a trainer need about its inputs (size, mean, std, classes).
"""
from __future__ import annotations

import difflib
from pathlib import Path

import torch.nn as nn

from ..darknet.cfg import is_cfg_name
from .info import ModelInfo


_MODELS: dict[str, ModelInfo] = {}


def register_model(name: str, **info):
    def wrap(builder):
        if name in _MODELS:
            raise ValueError(f"model {name!r} registered twice")
        _MODELS[name] = ModelInfo(name, builder, **info)
        return builder
    return wrap


def list_models() -> list[str]:
    return sorted(_MODELS)


def get_model_info(name: str) -> ModelInfo:
    if name not in _MODELS:
        close = difflib.get_close_matches(name, _MODELS, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown model {name!r}{hint} Known models: {', '.join(list_models())}")
    return _MODELS[name]


def create_model(name, pretrained: str | Path | None = None, num_classes: int | None = None,
                 **kwargs) -> nn.Module:
    """Build a registered model, or a darknet classifier from a ``.cfg`` path or a parsed Cfg (``method=``,
    ``layers=`` and ternarizer options then go to :class:`~tritnet.models.darknet_classifier.DarknetClassifier`).
    ``pretrained``: a checkpoint file or a folder holding the model's file; for a cfg also darknet
    ``.weights`` (a prefix such as a ``partial`` backbone is fine)."""
    from ..darknet import Cfg
    if isinstance(name, Cfg) or is_cfg_name(name):
        from .darknet_classifier import DarknetClassifier
        model = DarknetClassifier(name, num_classes=num_classes, **kwargs)
        if pretrained and str(pretrained).endswith(".weights"):
            model.load_weights(pretrained)
        elif pretrained:
            from .checkpoint import load_into
            load_into(model, pretrained)
        return model
    info = get_model_info(name)
    model = info.builder(num_classes=num_classes or info.num_classes, **kwargs)
    model.model_info = info
    if pretrained:
        from .checkpoint import load_pretrained
        load_pretrained(model, pretrained, info)
    return model
