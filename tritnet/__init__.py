"""tritnet: ternary-weight networks (TWN, TTN, STTN), darknet compatibility, staged ternarization.

    import tritnet
    model = tritnet.create_model("resnet20", pretrained="../shared/data/pretrained/resnet_cifar10")
    tritnet.ternarize(model, method="twn", layers="all")
    print(tritnet.format_report(tritnet.ternary_report(model)))
"""
from .nn import (TernaryActivation, TernaryConv2d, TernaryLinear, format_report, merge_sttn_, ternarize,
                 ternary_report)
from .models import create_model, list_models
from .quant import STTNConfig, TTNConfig, TWNConfig, make_config

__version__ = "0.1.0"
