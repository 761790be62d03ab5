"""tritnet: ternary-weight networks (TWN, TTN, STTN), darknet compatibility, staged ternarization.

    import tritnet
    model = tritnet.create_model("resnet20", pretrained="../shared/data/pretrained/resnet_cifar10")
    tritnet.ternarize_(model, method="twn", layers="all")
    print(tritnet.format_report(tritnet.ternary_report(model)))

Names are imported on first use, so torch-free parts (``tritnet.darknet``'s cfg and weights readers,
``tritnet.quant.packing``) can be imported on a machine without torch.
"""
import importlib as _importlib

__version__ = "0.1.0"

_EXPORTS = {
    "ternarize_": "nn", "ternarize": "nn", "ternary_report": "nn", "format_report": "nn", "merge_sttn_": "nn",
    "TernaryConv2d": "nn", "TernaryLinear": "nn", "TernaryActivation": "nn",
    "create_model": "models", "list_models": "models",
    "TWNConfig": "quant", "TTNConfig": "quant", "STTNConfig": "quant", "make_config": "quant",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(_importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'tritnet' has no attribute {name!r}")


def __dir__():
    """The lazily imported API is part of dir(tritnet), as it would be if imported eagerly."""
    return sorted(set(globals()) | set(__all__))
