"""Ternary layers (drop-in subclasses of the float layers) and the in-place model conversion."""
from .layers import TernaryActivation, TernaryConv2d, TernaryLinear, is_ternary
from .swap import (LayerReport, classifier_layers, format_report, merge_sttn_, select_layers, ternarize, ternarize_,
                   ternary_report, weight_layers)
