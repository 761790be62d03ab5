"""Output heads in numpy, applied after the network ran (identically for the runtime, PyTorch and ONNX):
darknet's region/yolo activations (yolo with AlexeyAB's ``scale_x_y`` and ``new_coords``), softmax, and
decoding into detections (``tritnet_rt.detect``, numpy; AlexeyAB's NMS kinds and order in
``tritnet_rt.detect.alexeyab``)."""
from __future__ import annotations

import numpy as np


HEADS_OPS = ("region", "yolo")


def _sigmoid(x):
    return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(np.float32)


def _softmax(x, axis):
    e = np.exp((x - x.max(axis=axis, keepdims=True)).astype(np.float64))
    return (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)


def activate(node, raw: np.ndarray) -> np.ndarray:
    """One image's raw head input (C, H, W) → darknet's layer output, [anchor][entry][row][col]."""
    a, op = node["attrs"], node["op"]
    if op == "softmax":
        flat = raw.reshape(a["groups"], -1) / a["temperature"]
        return _softmax(flat, 1).reshape(-1)
    c, h, w = raw.shape
    n = a["num"] if op == "region" else len(a["mask"])
    y = raw.reshape(n, -1, h, w).astype(np.float32).copy()
    if op == "yolo":
        if not a.get("new_coords"):          # AlexeyAB's new_coords: the conv's logistic already ran
            y[:, 0:2] = _sigmoid(y[:, 0:2])
            y[:, 4:] = _sigmoid(y[:, 4:])
        s = a.get("scale_x_y", 1.0)
        if s != 1:                           # darknet's scal_add_cpu: x·s + (float)(−0.5·(s − 1)), in float
            y[:, 0:2] = y[:, 0:2] * np.float32(s) + np.float32(-0.5 * (s - 1))
        return y
    y[:, 0:2] = _sigmoid(y[:, 0:2])
    if a["background"] and a["softmax"]:
        y[:, 4:] = _softmax(y[:, 4:], 1)
    else:
        if not a["background"]:
            y[:, 4:5] = _sigmoid(y[:, 4:5])
        y[:, 5:] = _softmax(y[:, 5:], 1) if a["softmax"] else _sigmoid(y[:, 5:])
    return y


def detect(heads, outputs, im_w, im_h, net_w, net_h, thresh=0.24, nms=0.45, names=None, dialect="pjreddie",
           letter=True):
    """Darknet's detections (``detector test`` order) from the raw head inputs of one image. ``dialect``
    "alexeyab" follows AlexeyAB's detector test: its box correction (``letter``: the input was letterboxed, not
    stretched), the last head's ``nms_kind`` and draw_detections_v3's order (``tritnet_rt.detect.alexeyab``)."""
    with np.errstate(over="ignore", invalid="ignore"):      # exp overflow saturates as darknet's does
        return _detect(heads, outputs, im_w, im_h, net_w, net_h, thresh, nms, names, dialect, letter)


def _detect(heads, outputs, im_w, im_h, net_w, net_h, thresh, nms, names, dialect, letter):
    from .detect import Head, do_nms_sort, get_network_boxes, select_detections
    from .detect import alexeyab as aab
    hs = []
    for node, raw in zip(heads, outputs):
        a = node["attrs"]
        y = activate(node, raw)
        anchors = a["anchors"] if a.get("anchors") is not None else [0.5] * (2 * a["num"])
        hs.append(Head(node["op"], y, raw.shape[1], raw.shape[2], a["classes"], list(anchors), a.get("mask"),
                       bool(a.get("background", False)), bool(a.get("new_coords", False))))
    if dialect == "alexeyab":
        last = heads[-1]["attrs"]
        cands = aab.get_network_boxes_alexeyab(hs, im_w, im_h, net_w, net_h, thresh, letter)
        if nms:
            cands = aab.nms_alexeyab(cands, nms, last.get("nms_kind", "default"), last.get("beta_nms", 0.6))
        return aab.select_detections_v3(cands, thresh, im_w, im_h, names)
    if any(h.new_coords for h in hs):
        raise ValueError("new_coords yolo heads are AlexeyAB's: decode them with dialect='alexeyab'")
    cands = get_network_boxes(hs, im_w, im_h, net_w, net_h, thresh)
    if nms:
        cands = do_nms_sort(cands, nms)
    return select_detections(cands, thresh, im_w, im_h, names)
