"""What darknet accepts in a .cfg, for each dialect: section names, keys, value kinds and defaults.

Two dialects, two programs (the cfg format is the same; what the keys mean is not):

* ``pjreddie``: pjreddie/darknet @ f6afaab, ``src/parser.c`` (``string_to_layer_type``, ``parse_*``,
  ``parse_net_options``), ``src/activations.c`` (``get_activation``) and ``src/cost_layer.c`` (``get_cost_type``),
  plus what its fork darknetTWN (k5iogura/darknetTWN @ d87db6c) adds on top: ``ternary`` in ``[convolutional]``,
  the ``swish`` activation (convolutional layers only), ``[scale_channels]``, four ``[net]`` augmentation keys and
  the ``[yolo]`` keys it borrowed from AlexeyAB (``scale_x_y``, the loss normalizers).
* ``alexeyab``: AlexeyAB/darknet @ 59596d7 (``src/parser.c``, ``src/activations.c``): more sections and keys,
  other defaults (``[yolo] max=200``, ``[dropout] probability=.2``), other numerics (batch norm with the epsilon
  inside the square root, folded before inference), ``[shortcut]`` without ``alpha``/``beta``. ``ternary`` (the
  project's own key, darknetTWN's) is read here too, so an AlexeyAB cfg can be staged to ternary.

Where darknet silently falls back (an unknown activation becomes ReLU, an unknown policy becomes
constant, ``atoi("abc")`` is 0), tritnet refuses instead; see ``cfg.py``. Features a dialect reads that tritnet
does not implement are refused at their line (``REFUSED_SECTIONS``, ``REFUSED_VALUES``).

No torch, no numpy: this module is plain data.
"""
from __future__ import annotations

import copy

DIALECTS = ("pjreddie", "alexeyab")
PROGRAMS = {"pjreddie": "pjreddie's darknet", "alexeyab": "AlexeyAB's darknet"}
DESCRIPTIONS = {"pjreddie": "pjreddie's darknet and its fork darknetTWN", "alexeyab": "AlexeyAB's darknet"}

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
    "scale_channels": "scale_channels",   # darknetTWN (borrowed from AlexeyAB)
}

# AlexeyAB's string_to_layer_type, minus the sections refused below. Its [reorg] is pjreddie's reorg
# (reorg_old_layer.c); [reorg3d] is a different layer.
ALEXEYAB_SECTION_ALIASES = {
    **{k: v for k, v in SECTION_ALIASES.items()},
    "sam": "sam",
    "local_avg": "local_avgpool", "local_avgpool": "local_avgpool",
    "empty": "empty", "silence": "empty",
}

SECTION_ALIASES_BY_DIALECT = {"pjreddie": SECTION_ALIASES, "alexeyab": ALEXEYAB_SECTION_ALIASES}
ALL_SECTION_ALIASES = {**SECTION_ALIASES, **ALEXEYAB_SECTION_ALIASES}

# Sections the dialect's darknet knows but tritnet does not implement (refused with a clear message).
DARKNET_UNSUPPORTED_SECTIONS = {
    "local", "deconv", "deconvolutional", "logistic", "l2norm", "crnn", "gru", "lstm", "rnn",
    "detection", "iseg", "lrn", "normalization",
}
REFUSED_SECTIONS = {
    "pjreddie": {s: "" for s in DARKNET_UNSUPPORTED_SECTIONS},
    "alexeyab": {
        **{s: "" for s in ("local", "crnn", "gru", "lstm", "rnn", "detection", "lrn", "normalization", "conv_lstm",
                           "history", "Gaussian_yolo", "contrastive", "implicit", "reorg3d")},
        # AlexeyAB's region layer reorders its output to [cell][anchor][entry] and decodes boxes without the
        # letterbox correction (custom_get_region_detections): not pjreddie's layer under the same name
        "region": "AlexeyAB's [region] is not pjreddie's (another output layout and box decoding); "
                  "read a YOLOv2 cfg with --dialect pjreddie",
    },
}

# Activation names (get_activation). pjreddie's list, plus darknetTWN's swish; AlexeyAB's adds more.
# darknet silently runs an unknown name as ReLU; tritnet refuses it.
ACTIVATIONS = (
    "logistic", "loggy", "relu", "elu", "selu", "relie", "plse", "hardtan", "lhtan",
    "linear", "ramp", "leaky", "tanh", "stair", "swish",
)
ALEXEYAB_ACTIVATIONS = ACTIVATIONS + (
    "mish", "hard_mish", "relu6", "gelu", "revleaky",
    "normalize_channels", "normalize_channels_softmax", "normalize_channels_softmax_maxval",
)
ACTIVATIONS_BY_DIALECT = {"pjreddie": ACTIVATIONS, "alexeyab": ALEXEYAB_ACTIVATIONS}

# Activations a layer type computes only in some sections. darknetTWN computes swish in convolutional layers only
# (its activate() has no case for it and returns 0); AlexeyAB computes swish/mish/hard_mish in convolutional and
# shortcut layers (elsewhere activate() returns 0), and normalize_channels* (which mix channels) in convolutional
# layers only.
ACTIVATION_SECTIONS = {   # dialect -> (the program that computes them, {activation: sections})
    "pjreddie": ("darknetTWN", {"swish": ("convolutional",)}),
    "alexeyab": ("AlexeyAB's darknet", {
        "swish": ("convolutional", "shortcut"), "mish": ("convolutional", "shortcut"),
        "hard_mish": ("convolutional", "shortcut"), "normalize_channels": ("convolutional",),
        "normalize_channels_softmax": ("convolutional",), "normalize_channels_softmax_maxval": ("convolutional",)}),
}

# src/parser.c get_policy
POLICIES = ("random", "poly", "constant", "step", "exp", "sigmoid", "steps")
POLICIES_BY_DIALECT = {"pjreddie": POLICIES, "alexeyab": POLICIES + ("sgdr",)}

# src/cost_layer.c get_cost_type
COST_TYPES = ("seg", "sse", "masked", "smooth", "L1", "wgan")

# [yolo] iou_loss (darknetTWN and AlexeyAB: any other name silently means "iou")
IOU_LOSSES = ("mse", "iou", "giou", "diou", "ciou")

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


# Value kinds: int, float, str, ints, floats, activation, policy, cost, or a tuple of the accepted strings.
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
        # darknetTWN's borrowings from AlexeyAB: scale_x_y changes the output, the rest only the training loss
        "scale_x_y": ("float", 1.0),
        "max_delta": ("float", 3.4028234663852886e38),   # FLT_MAX
        "iou_normalizer": ("float", 0.75),
        "cls_normalizer": ("float", 1.0),
        "iou_loss": (IOU_LOSSES, "mse"),
        "focal_loss": ("int", 0),
        "iou_thresh": ("float", 1.0),
        "label_smooth_eps": ("float", 0.0),
        "counters_per_class": ("ints", None),
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
    "scale_channels": {      # darknetTWN
        "from": ("int", None),
        "scale_wh": ("int", 0),
        "activation": ("activation", "linear"),
    },
}


# ---- AlexeyAB's darknet -------------------------------------------------------------------------------------
_AAB_COMMON_LAYER_KEYS = {   # parse_network_cfg_custom, for every layer (no truth, dontsave, numload, smooth)
    "clip": ("float", 0.0),
    "onlyforward": ("int", 0),
    "dont_update": ("int", 0),
    "burnin_update": ("int", 0),
    "stopbackward": ("int", 0),
    "train_only_bn": ("int", 0),
    "dontload": ("int", 0),
    "dontloadscales": ("int", 0),
    "learning_rate": ("float", 1.0),
}


def _alexeyab_schema() -> dict:
    """AlexeyAB's parse_* functions: pjreddie's keys where it reads them too, with its own defaults and additions."""
    sc = copy.deepcopy(SCHEMA)
    net = sc["net"]
    for k in ("notruth", "random", "center", "clip", "max_ratio", "min_ratio"):   # not read by AlexeyAB
        del net[k]
    net["eps"] = ("float", 1e-6)
    net.update({
        "learning_rate_min": ("float", 1e-5), "sgdr_cycle": ("int", lambda p: p("max_batches")),
        "sgdr_mult": ("int", 2), "track": ("int", 0), "augment_speed": ("int", 2),
        "sequential_subdivisions": ("int", lambda p: p("subdivisions")), "try_fix_nan": ("int", 0),
        "weights_reject_freq": ("int", 0), "equidistant_point": ("int", 0),
        "badlabels_rejection_percentage": ("float", 0.0), "num_sigmas_reject_badlabels": ("float", 0.0),
        "ema_alpha": ("float", 0.0), "use_cuda_graph": ("int", 0), "loss_scale": ("float", 1.0),
        "dynamic_minibatch": ("int", 0), "optimized_memory": ("int", 0), "workspace_size_limit_MB": ("float", 1024.0),
        "gaussian_noise": ("int", 0), "cutmix": ("int", 0), "mosaic": ("int", 0), "mosaic_bound": ("int", 0),
        "contrastive": ("int", 0), "contrastive_jit_flip": ("int", 0), "contrastive_color": ("int", 0),
        "unsupervised": ("int", 0), "label_smooth_eps": ("float", 0.0), "resize_step": ("float", 32.0),
        "attention": ("int", 0), "adversarial_lr": ("float", 0.0), "max_chart_loss": ("float", 20.0),
        "seq_scales": ("floats", None), "show_receptive_field": ("float", 0.0),
    })
    conv = sc["convolutional"]
    conv.update({
        "dilation": ("int", 1), "stride_x": ("int", -1), "stride_y": ("int", -1), "antialiasing": ("int", 0),
        "assisted_excitation": ("float", 0.0), "share_index": ("int", None), "cbn": ("int", 0),
        "bin_output": ("int", 0), "sway": ("int", 0), "rotate": ("int", 0), "stretch": ("int", 0),
        "stretch_sway": ("int", 0), "angle": ("float", 15.0), "grad_centr": ("int", 0), "reverse": ("float", 0.0),
        "coordconv": ("int", 0), "stream": ("int", -1), "wait_stream": ("int", -1),
    })
    sc["maxpool"].update({
        "stride_x": ("int", lambda p: p("stride")), "stride_y": ("int", lambda p: p("stride")),
        "maxpool_depth": ("int", 0), "out_channels": ("int", 1), "antialiasing": ("int", 0),
        "maxpool_zero_nonmax": ("int", 0),
    })
    sc["local_avgpool"] = {
        "stride": ("int", 1), "stride_x": ("int", lambda p: p("stride")), "stride_y": ("int", lambda p: p("stride")),
        "size": ("int", lambda p: p("stride")), "padding": ("int", lambda p: p("size") - 1),
    }
    sc["dropout"] = {"probability": ("float", 0.2), "dropblock": ("int", 0), "dropblock_size_rel": ("float", 0.0),
                     "dropblock_size_abs": ("float", 0.0)}
    sc["route"].update({"groups": ("int", 1), "group_id": ("int", 0), "stream": ("int", -1),
                        "wait_stream": ("int", -1)})
    sc["shortcut"] = {
        "from": ("ints", None), "activation": ("activation", "linear"),
        "weights_type": (("none", "per_feature", "per_layer", "per_channel"), "none"),
        "weights_normalization": (("none", "relu", "avg_relu", "softmax"), "none"),
    }
    sc["sam"] = {"from": ("int", None), "activation": ("activation", "linear")}
    sc["empty"] = {}
    sc["reorg"] = {"stride": ("int", 1), "reverse": ("int", 0)}
    region = sc["region"]
    del region["background"]
    region.update({"max": ("int", 200), "focal_loss": ("int", 0), "resize": ("float", 1.0), "random": ("float", 0.0)})
    yolo = sc["yolo"]
    yolo.update({
        "max": ("int", 200), "show_details": ("int", 1), "objectness_smooth": ("int", 0), "new_coords": ("int", 0),
        "obj_normalizer": ("float", 1.0), "delta_normalizer": ("float", 1.0),
        "iou_thresh_kind": (("iou", "giou", "diou", "ciou"), "iou"), "beta_nms": ("float", 0.6),
        "nms_kind": (("default", "greedynms", "diounms"), "default"), "resize": ("float", 1.0),
        "random": ("float", 0.0), "track_history_size": ("int", 5), "sim_thresh": ("float", 0.8),
        "dets_for_track": ("int", 1), "dets_for_show": ("int", 1), "track_ciou_norm": ("float", 0.01),
        "embedding_layer": ("int", None),
    })
    cost = sc["cost"]
    del cost["noobj"], cost["thresh"]
    return sc


ALEXEYAB_SCHEMA = _alexeyab_schema()
SCHEMAS = {"pjreddie": SCHEMA, "alexeyab": ALEXEYAB_SCHEMA}
COMMON_KEYS_BY_DIALECT = {"pjreddie": COMMON_LAYER_KEYS, "alexeyab": _AAB_COMMON_LAYER_KEYS}

# Keys a dialect's darknet reads but tritnet does not implement: refused (at their line) unless they hold the
# value given here, which is the one that changes nothing. ``None``: refused whenever the key is present.
REFUSED_VALUES = {
    "pjreddie": {
        "convolutional": {"binary": (0, "binary weights"), "xnor": (0, "XNOR-net")},
    },
    "alexeyab": {
        "convolutional": {"binary": (0, "binary weights"), "xnor": (0, "XNOR-net"), "bin_output": (0, "XNOR-net"),
                          "antialiasing": (0, "anti-aliased (blurred) strides"),
                          "share_index": (None, "shared weights"),
                          "sway": (0, "deformable kernels"), "rotate": (0, "deformable kernels"),
                          "stretch": (0, "deformable kernels"), "stretch_sway": (0, "deformable kernels"),
                          "coordconv": (0, "CoordConv")},
        "maxpool": {"maxpool_depth": (0, "max over channels"), "antialiasing": (0, "anti-aliased (blurred) strides")},
        "yolo": {"embedding_layer": (None, "tracking embeddings")},
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
    "yolo": {"classes": (1, MAX_COUNT), "num": (1, MAX_COUNT), "max": (1, MAX_COUNT), "new_coords": (0, 1)},
    "crop": {"crop_height": (1, MAX_SIDE), "crop_width": (1, MAX_SIDE)},
    "route": {"groups": (1, MAX_COUNT), "group_id": (0, MAX_COUNT)},
    "local_avgpool": {"size": (1, MAX_WINDOW), "stride": (1, MAX_SIDE), "stride_x": (1, MAX_SIDE),
                      "stride_y": (1, MAX_SIDE), "padding": (0, MAX_WINDOW)},
}
# AlexeyAB's additions to the sections both read: strides per axis (below 1: unset, as AlexeyAB reads them in a
# conv), dilation
LIMITS["convolutional"].update({"stride_x": (-1, MAX_SIDE), "stride_y": (-1, MAX_SIDE), "dilation": (1, MAX_WINDOW)})
LIMITS["maxpool"].update({"stride_x": (1, MAX_SIDE), "stride_y": (1, MAX_SIDE)})


def key_limits(section_type: str, key: str):
    """(lowest, highest) accepted for ``key`` in a section of ``section_type``, or None when unbounded."""
    return LIMITS.get(section_type, {}).get(key)


def key_spec(section_type: str, key: str, dialect: str = "pjreddie"):
    """(kind, default) of ``key`` in a section of ``section_type``, or None when the dialect's darknet does not
    read it."""
    schema = SCHEMAS[dialect].get(section_type, {})
    spec = schema.get(key)
    if spec is None and section_type != "net":
        spec = COMMON_KEYS_BY_DIALECT[dialect].get(key)
        if spec is None and key == "ternary" and section_type == "convolutional":
            spec = SCHEMA["convolutional"]["ternary"]      # the project's key, read in both dialects
    return spec


def known_keys(section_type: str, dialect: str = "pjreddie"):
    keys = list(SCHEMAS[dialect].get(section_type, {}))
    if section_type != "net":
        keys += [k for k in COMMON_KEYS_BY_DIALECT[dialect] if k not in keys]
    if section_type == "convolutional" and "ternary" not in keys:
        keys.append("ternary")
    return keys


def reads_section(section_type: str, dialect: str) -> bool:
    return section_type in SCHEMAS[dialect]
