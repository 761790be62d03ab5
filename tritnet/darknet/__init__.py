"""Darknet compatibility: the .cfg is the model, the .weights file holds its floats.

The cfg, weights and .data readers are torch-free (numpy only), so the CPU runtime can reuse them::

    from tritnet import darknet as dn
    cfg = dn.parse_cfg("cfg/ttt5_224_160.cfg")
    print(dn.layer_table(cfg))                       # darknet's layer table, with a ternary column
    w = dn.load_weights(cfg, "ttt5_pre_141_conv7.weights", prefix=True)   # a backbone: w.filled == 4
    cfg.dialect                                      # "pjreddie" or "alexeyab" (yolov4-tiny.cfg), decided by the file
    dn.ternarize_weights("yolov2-voc_M3.cfg", "float.weights", "tern.weights")   # darknetTWN's file, byte for byte
    dn.set_ternary(cfg, [6, 7, 8, 9])
    open("M1.cfg", "w").write(dn.dump_cfg(cfg))
    dn.partial("ttt5_pre.cfg", "ttt5_pre.weights", "ttt5_pre_7.weights", 7)

The PyTorch side (imported on first use, so the readers above work without torch)::

    net = dn.build_darknet("yolov3-tiny.cfg", "yolov3-tiny.weights")       # method="twn" for ternary=1
    dets = dn.detect_image(net, "dog.jpg", thresh=.24, nms=.45, names=dn.read_names("coco.names"))
    net.save_weights("out.weights")                   # ternary layers written as α·T
    dn.predict_darknet_classifier("cifar_minin.cfg", "cifar_minin.weights", "x.png", "labels5.txt", top=3)
"""
import importlib

from .cfg import (DIALECTS, Cfg, CfgError, CfgWarning, Option, Section, detect_dialect, dump_cfg, is_cfg_name,
                  parse_cfg, parse_cfg_string, set_ternary, ternary_layers, validate_cfg)
from .cfgedit import set_classes, set_schedule
from .datafile import names_from_data, read_data_cfg, read_names, resolve_data_path
from .shapes import (LayerInfo, LayerRow, LayerTable, count_params, darknet_layers, infer_layers, layer_features,
                     layer_table)
from .twn import darknettwn_ternarize, ternarize_weights
from .weights import (DarknetWeights, WeightsError, WeightsHeader, encode_weights, layer_layout, load_weights,
                      partial, save_weights)

__all__ = [
    "Cfg", "CfgError", "CfgWarning", "Option", "Section", "parse_cfg", "parse_cfg_string", "dump_cfg",
    "validate_cfg", "set_ternary", "ternary_layers", "detect_dialect", "DIALECTS", "is_cfg_name",
    "LayerInfo", "LayerRow", "LayerTable", "infer_layers", "count_params", "layer_table", "layer_features",
    "darknet_layers",
    "DarknetWeights", "WeightsError", "WeightsHeader", "layer_layout", "load_weights", "encode_weights",
    "save_weights", "partial", "read_data_cfg", "read_names", "names_from_data", "resolve_data_path",
    "darknettwn_ternarize", "ternarize_weights", "set_classes", "set_schedule",
]

# torch-importing names, loaded on first access (not in __all__: `import *` stays torch-free)
_LAZY = {
    "DarknetNet": "network", "build_darknet": "network",
    "detect_image": "predict", "network_input": "predict", "predict_darknet_classifier": "predict", "top_k": "predict",
    "format_classifier_line": "predict", "classifier_input": "predict",
    "LAYERS": "layers", "register_section": "layers", "DarknetLayer": "layers", "DarknetBatchNorm2d": "layers",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'tritnet.darknet' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
