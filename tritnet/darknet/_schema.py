"""What darknet accepts in a .cfg: section names, keys, value kinds and defaults.

Source of truth: pjreddie/darknet @ f6afaab, ``src/parser.c`` (``string_to_layer_type``, ``parse_*``,
``parse_net_options``), ``src/activations.c`` (``get_activation``) and ``src/cost_layer.c``
(``get_cost_type``), plus the one key the darknetTWN fork adds (``ternary`` in ``[convolutional]``).
Where darknet silently falls back (an unknown activation becomes ReLU, an unknown policy becomes
constant, ``atoi("abc")`` is 0), tritnet refuses instead; see ``cfg.py``.

No torch, no numpy: this module is plain data.
"""
from __future__ import annotations

# Section header (inside the brackets) -> canonical type name. Names are case sensitive, as in darknet.
SECTION_ALIASES = {
    "net": "net", "network": "net",
    "conv": "convolutional", "convolutional": "convolutional",
    "conn": "connected", "connected": "connected",
    "max": "maxpool", "maxpool": "maxpool",
    "avg": "avgpool", "avgpool": "avgpool",
    "soft": "softmax", "softmax": "softmax",
    "dropout": "dropout",
    "route": "route",
    "shortcut": "shortcut",
    "upsample": "upsample",
    "reorg": "reorg",
    "region": "region",
    "yolo": "yolo",
    "cost": "cost",
    "crop": "crop",
    "batchnorm": "batchnorm",
    "activation": "activation",
}

# Sections pjreddie darknet knows but tritnet does not implement (refused with a clear message).
DARKNET_UNSUPPORTED_SECTIONS = {
    "local", "deconv", "deconvolutional", "logistic", "l2norm", "crnn", "gru", "lstm", "rnn",
    "detection", "iseg", "lrn", "normalization",
}

# src/activations.c get_activation (pjreddie). AlexeyAB's extra names (relu6, swish, mish, gelu, ...)
# are not in this list: pjreddie darknet would silently run them as ReLU.
ACTIVATIONS = (
    "logistic", "loggy", "relu", "elu", "selu", "relie", "plse", "hardtan", "lhtan",
    "linear", "ramp", "leaky", "tanh", "stair",
)

# src/parser.c get_policy
POLICIES = ("random", "poly", "constant", "step", "exp", "sigmoid", "steps")

# src/cost_layer.c get_cost_type
COST_TYPES = ("seg", "sse", "masked", "smooth", "L1", "wgan")

# Keys that parse_network_cfg reads for every layer section, whatever its type.
COMMON_LAYER_KEYS = {
    "truth": ("int", 0),
    "onlyforward": ("int", 0),
    "stopbackward": ("int", 0),
    "dontsave": ("int", 0),
    "dontload": ("int", 0),
    "numload": ("int", 0),
    "dontloadscales": ("int", 0),
    "learning_rate": ("float", 1.0),  # per-layer learning_rate_scale
    "smooth": ("float", 0.0),
}


def _net_inputs(p):
    return p("height") * p("width") * p("channels")


def _ratio(key):
    def f(p):
        w = p("width")
        return p(key) / w if w else 0.0
    return f


# Value kinds: int, float, str, ints, floats, activation, policy, cost.
# A default may be a callable taking ``p`` (p(key) -> resolved value of another key of the section).
SCHEMA = {
    "net": {
        "batch": ("int", 1),
        "learning_rate": ("float", 0.001),
        "momentum": ("float", 0.9),
        "decay": ("float", 0.0001),
        "subdivisions": ("int", 1),
        "time_steps": ("int", 1),
        "notruth": ("int", 0),
        "random": ("int", 0),
        "adam": ("int", 0),
        "B1": ("float", 0.9),
        "B2": ("float", 0.999),
        "eps": ("float", 1e-7),
        "height": ("int", 0),
        "width": ("int", 0),
        "channels": ("int", 0),
        "inputs": ("int", _net_inputs),
        "max_crop": ("int", lambda p: p("width") * 2),
        "min_crop": ("int", lambda p: p("width")),
        "max_ratio": ("float", _ratio("max_crop")),
        "min_ratio": ("float", _ratio("min_crop")),
        "center": ("int", 0),
        "clip": ("float", 0.0),
        "angle": ("float", 0.0),
        "aspect": ("float", 1.0),
        "saturation": ("float", 1.0),
        "exposure": ("float", 1.0),
        "hue": ("float", 0.0),
        "policy": ("policy", "constant"),
        "burn_in": ("int", 0),
        "power": ("float", 4.0),
        "step": ("int", 1),
        "scale": ("float", 1.0),
        "steps": ("ints", None),
        "scales": ("floats", None),
        "gamma": ("float", 1.0),
        "max_batches": ("int", 0),
        # darknetTWN augmentation keys (methods.md 1.5); pjreddie darknet does not read them.
        "flip": ("int", 1),
        "blur": ("int", 0),
        "mixup": ("int", 0),
        "letter_box": ("int", 0),
    },
    "convolutional": {
        "filters": ("int", 1),
        "size": ("int", 1),
        "stride": ("int", 1),
        "pad": ("int", 0),
        "padding": ("int", 0),
        "groups": ("int", 1),
        "activation": ("activation", "logistic"),
        "batch_normalize": ("int", 0),
        "binary": ("int", 0),
        "xnor": ("int", 0),
        "flipped": ("int", 0),
        "dot": ("float", 0.0),
        "ternary": ("int", 0),   # darknetTWN
        "dilation": ("int", 1),  # AlexeyAB; pjreddie ignores it, tritnet refuses values other than 1
    },
    "connected": {
        "output": ("int", 1),
        "activation": ("activation", "logistic"),
        "batch_normalize": ("int", 0),
    },
    "maxpool": {
        "stride": ("int", 1),
        "size": ("int", lambda p: p("stride")),
        "padding": ("int", lambda p: p("size") - 1),
    },
    "avgpool": {},
    "softmax": {
        "groups": ("int", 1),
        "temperature": ("float", 1.0),
        "tree": ("str", None),
        "spatial": ("float", 0.0),
        "noloss": ("int", 0),
    },
    "dropout": {
        "probability": ("float", 0.5),
    },
    "route": {
        "layers": ("ints", None),
    },
    "shortcut": {
        "from": ("int", None),
        "activation": ("activation", "linear"),
        "alpha": ("float", 1.0),
        "beta": ("float", 1.0),
    },
    "upsample": {
        "stride": ("int", 2),
        "scale": ("float", 1.0),
    },
    "reorg": {
        "stride": ("int", 1),
        "reverse": ("int", 0),
        "flatten": ("int", 0),
        "extra": ("int", 0),
    },
    "region": {
        "coords": ("int", 4),
        "classes": ("int", 20),
        "num": ("int", 1),
        "log": ("int", 0),
        "sqrt": ("int", 0),
        "softmax": ("int", 0),
        "background": ("int", 0),
        "max": ("int", 30),
        "jitter": ("float", 0.2),
        "rescore": ("int", 0),
        "thresh": ("float", 0.5),
        "classfix": ("int", 0),
        "absolute": ("int", 0),
        "random": ("int", 0),
        "coord_scale": ("float", 1.0),
        "object_scale": ("float", 1.0),
        "noobject_scale": ("float", 1.0),
        "mask_scale": ("float", 1.0),
        "class_scale": ("float", 1.0),
        "bias_match": ("int", 0),
        "tree": ("str", None),
        "map": ("str", None),
        "anchors": ("floats", None),
    },
    "yolo": {
        "classes": ("int", 20),
        "num": ("int", 1),
        "mask": ("ints", None),
        "max": ("int", 90),
        "jitter": ("float", 0.2),
        "ignore_thresh": ("float", 0.5),
        "truth_thresh": ("float", 1.0),
        "random": ("int", 0),
        "map": ("str", None),
        "anchors": ("floats", None),
    },
    "cost": {
        "type": ("cost", "sse"),
        "scale": ("float", 1.0),
        "ratio": ("float", 0.0),
        "noobj": ("float", 1.0),
        "thresh": ("float", 0.0),
    },
    "crop": {
        "crop_height": ("int", 1),
        "crop_width": ("int", 1),
        "flip": ("int", 0),
        "angle": ("float", 0.0),
        "saturation": ("float", 1.0),
        "exposure": ("float", 1.0),
        "noadjust": ("int", 0),
        "shift": ("float", 0.0),
    },
    "batchnorm": {},
    "activation": {
        "activation": ("activation", "linear"),
    },
}


# ---- sane limits ---------------------------------------------------------------------------------------
# Darknet reads these with atoi and allocates whatever they imply: filters=1000000000 asks for 100 GB. tritnet
# refuses values no real network uses, at the line that sets them. The bounds are generous (the shared cfgs,
# yolov3 and yolov2-voc at 608x608 included, stay 16x or more below each); what a combination of sane values
# implies is bounded by MAX_PARAMS and MAX_ACTIVATIONS (checked in shapes.py, layer by layer).
MAX_SIDE = 16384        # pixels: width, height, strides (8K video is 7680 wide)
MAX_COUNT = 65536       # channels, filters, outputs, classes, anchors, boxes (real cfgs: 1024 filters, 9418 classes)
MAX_WINDOW = 1024       # kernel and pool sizes, padding (real cfgs: 11 in AlexNet, 13 in SPP's maxpool)
MAX_INT = 2**31 - 1     # darknet's int: larger counts overflow inside darknet itself
MAX_PARAMS = 2**31      # floats in the network (8 GiB as float32; yolov3-voc has 6.2e7): darknet's int l.nweights
MAX_ACTIVATIONS = 2**31  # floats of layer outputs for one image (8 GiB; yolov3-voc at 608x608 needs 0.45 GiB)

# (section type -> key -> (lowest, highest)); a key absent here is not bounded (indices, flags, floats).
LIMITS = {
    "net": {
        "width": (0, MAX_SIDE), "height": (0, MAX_SIDE), "channels": (0, MAX_COUNT),   # 0: unset ([net] inputs=)
        "inputs": (0, MAX_ACTIVATIONS), "batch": (1, MAX_COUNT), "subdivisions": (1, MAX_COUNT),
        "max_batches": (0, MAX_INT), "burn_in": (0, MAX_INT),
    },
    "convolutional": {"filters": (1, MAX_COUNT), "size": (1, MAX_WINDOW), "stride": (1, MAX_SIDE),
                      "padding": (0, MAX_WINDOW), "groups": (1, MAX_COUNT), "numload": (0, MAX_COUNT)},
    "connected": {"output": (1, MAX_COUNT)},
    "maxpool": {"size": (1, MAX_WINDOW), "stride": (1, MAX_SIDE), "padding": (0, MAX_WINDOW)},
    "softmax": {"groups": (1, MAX_COUNT)},
    "upsample": {"stride": (-MAX_SIDE, MAX_SIDE)},      # negative: downsample (0 is refused in shapes.py)
    "reorg": {"stride": (1, MAX_SIDE), "extra": (0, MAX_ACTIVATIONS)},
    "region": {"classes": (1, MAX_COUNT), "num": (1, MAX_COUNT), "coords": (1, MAX_COUNT), "max": (1, MAX_COUNT)},
    "yolo": {"classes": (1, MAX_COUNT), "num": (1, MAX_COUNT), "max": (1, MAX_COUNT)},
    "crop": {"crop_height": (1, MAX_SIDE), "crop_width": (1, MAX_SIDE)},
}


def key_limits(section_type: str, key: str):
    """(lowest, highest) accepted for ``key`` in a section of ``section_type``, or None when unbounded."""
    return LIMITS.get(section_type, {}).get(key)


def key_spec(section_type: str, key: str):
    """(kind, default) of ``key`` in a section of ``section_type``, or None when darknet does not read it."""
    spec = SCHEMA[section_type].get(key)
    if spec is None and section_type != "net":
        spec = COMMON_LAYER_KEYS.get(key)
    return spec


def known_keys(section_type: str):
    keys = list(SCHEMA[section_type])
    if section_type != "net":
        keys += [k for k in COMMON_LAYER_KEYS if k not in SCHEMA[section_type]]
    return keys
