"""Model zoo: a registry of builders (CIFAR ResNets, their STTN variant, ImageNet ResNets) and checkpoints."""
from . import resnet, resnet_cifar, resnet_sttn  # noqa: F401  (registers the models)
from .checkpoint import (CheckpointError, load_into, load_pretrained, model_checkpoint, read_checkpoint,
                         save_atomic)
from .info import ModelInfo
from .registry import create_model, get_model_info, list_models, register_model
from .load import Loaded, load_classifier, load_model, source_kind
