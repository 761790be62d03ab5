"""Darknet compatibility: the .cfg is the model, the .weights file holds its floats.

Torch-free (numpy only), so the CPU runtime can reuse it::

    from tritnet import darknet as dn
    cfg = dn.parse_cfg("cfg/ttt5_224_160.cfg")
    print(dn.layer_table(cfg))                       # darknet's layer table, with a ternary column
    w = dn.load_weights(cfg, "ttt5_pre_141_conv7.weights")   # a 7-layer prefix: w.filled == 4
    dn.set_ternary(cfg, [6, 7, 8, 9])
    open("M1.cfg", "w").write(dn.dump_cfg(cfg))
    dn.partial("ttt5_pre.cfg", "ttt5_pre.weights", "ttt5_pre_7.weights", 7)
"""
from .cfg import (Cfg, CfgError, CfgWarning, Option, Section, dump_cfg, parse_cfg, parse_cfg_string, set_ternary,
                  ternary_layers, validate_cfg)
from .shapes import LayerInfo, LayerRow, LayerTable, count_params, infer_layers, layer_table
from .weights import (DarknetWeights, WeightsError, WeightsHeader, encode_weights, layer_layout, load_weights,
                      partial, save_weights)

__all__ = [
    "Cfg", "CfgError", "CfgWarning", "Option", "Section", "parse_cfg", "parse_cfg_string", "dump_cfg",
    "validate_cfg", "set_ternary", "ternary_layers",
    "LayerInfo", "LayerRow", "LayerTable", "infer_layers", "count_params", "layer_table",
    "DarknetWeights", "WeightsError", "WeightsHeader", "layer_layout", "load_weights", "encode_weights",
    "save_weights", "partial",
]
