"""What a loader and a trainer need to know about a model's inputs (size, mean, std, classes): the registry's
entries, and the same facts for a darknet classifier built from its cfg."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch.nn as nn


@dataclass(frozen=True)
class ModelInfo:
    name: str
    builder: Callable[..., nn.Module]
    input_size: tuple[int, int, int] = (3, 32, 32)
    num_classes: int = 10
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    pretrained_glob: str | None = None  # file name pattern of its pretrained weights inside a folder
    notes: str = ""
    extra: dict = field(default_factory=dict)
