"""PyTorch modules for darknet's layer types, one small file per family, one registry (``LAYERS``)
from cfg section type to module class. Importing this package registers every type."""
from . import conv, heads, pool, wiring  # noqa: F401  (registration side effects)
from .activations import ACTIVATIONS, Activation
from .base import LAYERS, BuildContext, DarknetLayer, build_layer, register_section
from .conv import DarknetBatchNorm2d

__all__ = ["LAYERS", "BuildContext", "DarknetLayer", "build_layer", "register_section", "Activation",
           "ACTIVATIONS", "DarknetBatchNorm2d"]
