"""Output heads in numpy, applied after the network ran (identically for the runtime, PyTorch and ONNX):
darknet's region/yolo activations, softmax, and decoding into detections (``tritnet_rt.detect``, numpy)."""
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
    y[:, 0:2] = _sigmoid(y[:, 0:2])
    if op == "yolo":
        y[:, 4:] = _sigmoid(y[:, 4:])
    elif a["background"] and a["softmax"]:
        y[:, 4:] = _softmax(y[:, 4:], 1)
    else:
        if not a["background"]:
            y[:, 4:5] = _sigmoid(y[:, 4:5])
        y[:, 5:] = _softmax(y[:, 5:], 1) if a["softmax"] else _sigmoid(y[:, 5:])
    return y


def detect(heads, outputs, im_w, im_h, net_w, net_h, thresh=0.24, nms=0.45, names=None):
    """Darknet's detections (``detector test`` order) from the raw head inputs of one image."""
    with np.errstate(over="ignore", invalid="ignore"):      # exp overflow saturates as darknet's does
        return _detect(heads, outputs, im_w, im_h, net_w, net_h, thresh, nms, names)


def _detect(heads, outputs, im_w, im_h, net_w, net_h, thresh, nms, names):
    from .detect import Head, do_nms_sort, get_network_boxes, select_detections
    hs = []
    for node, raw in zip(heads, outputs):
        a = node["attrs"]
        y = activate(node, raw)
        anchors = a["anchors"] if a.get("anchors") is not None else [0.5] * (2 * a["num"])
        hs.append(Head(node["op"], y, raw.shape[1], raw.shape[2], a["classes"], list(anchors), a.get("mask"),
                       bool(a.get("background", False))))
    cands = get_network_boxes(hs, im_w, im_h, net_w, net_h, thresh)
    if nms:
        cands = do_nms_sort(cands, nms)
    return select_detections(cands, thresh, im_w, im_h, names)
