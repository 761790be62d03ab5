"""Run a darknet network on one image, as ``darknet detector test`` and ``classifier predict`` do.

Both letterbox the image to the network size (``tritnet_rt.detect.letterbox``, bit-exact with darknet),
run the network, and then either decode the region/yolo heads (thresholds, NMS, the printed list) or
rank the output with darknet's ``top_k``.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from tritnet_rt.detect import Head, do_nms_obj, do_nms_sort, get_network_boxes, letterbox, load_image, select_detections
from .datafile import read_names
from .network import DarknetNet, build_darknet

__all__ = ["network_input", "detect_image", "top_k", "predict_darknet_classifier", "format_classifier_line"]


def network_input(net: DarknetNet, image) -> tuple[torch.Tensor, int, int]:
    """(1, C, H, W) letterboxed tensor for ``image`` (a path or a (3, H, W) float32 array), and the image w, h."""
    im = load_image(image) if not isinstance(image, np.ndarray) else np.asarray(image, np.float32)
    x = letterbox(im, net.width, net.height)
    p = next(net.parameters(), None)
    t = torch.from_numpy(x)[None]
    if p is not None:
        t = t.to(p.device, p.dtype)
    return t, im.shape[2], im.shape[1]


def detect_image(net: DarknetNet, image, thresh: float = 0.24, nms: float = 0.45,
                 names: Optional[Sequence[str]] = None, nms_kind: str = "sort"):
    """Darknet's detections for one image, in the order ``detector test`` prints them.

    ``nms_kind``: "sort" (per class, ``detector test``), "obj" (by objectness, python/darknet.py) or
    "none". ``hier_thresh`` does not exist here: it only matters for softmax trees, which tritnet refuses.
    """
    if not net.head_indices:
        raise ValueError("this network has no [region] or [yolo] layer to detect with")
    x, im_w, im_h = network_input(net, image)
    with torch.no_grad():
        outs = net.forward_all(x)
    heads = [Head.from_layer(info, out[0]) for info, out in net.heads(outs)]
    cands = get_network_boxes(heads, im_w, im_h, net.width, net.height, thresh)
    if nms and nms_kind != "none":
        cands = {"sort": do_nms_sort, "obj": do_nms_obj}[nms_kind](cands, nms)
    return select_detections(cands, thresh, im_w, im_h, names)


def top_k(values, k: int) -> list:
    """Darknet's ``top_k``: indices of the k largest values; strict ``>``, so an earlier index wins ties."""
    index = [-1] * k
    for i, v in enumerate(values):
        cur = i
        for j in range(k):
            if index[j] < 0 or values[cur] > values[index[j]]:
                cur, index[j] = index[j], cur
    return [i for i in index if i >= 0]


def predict_darknet_classifier(cfg_path, weights_path, image_path, labels=None, top: int = 5,
                               method: Optional[str] = "twn") -> list:
    """[(name, value)] of the ``top`` best classes, what ``darknet classifier predict`` prints.

    The value is the network output itself (darknet prints it ×100 as "%"); for a cfg without a
    ``[softmax]`` such as ``cifar_minin`` it is not a probability and can be negative or above 1.
    ``labels``: a list of names, a file with one name per line, or None (names are the indices).
    """
    net = build_darknet(cfg_path, weights_path, method)
    x, _, _ = network_input(net, image_path)
    with torch.no_grad():
        out = net(x)[0].reshape(-1).float().cpu().numpy()
    if labels is not None and not isinstance(labels, (list, tuple)):
        labels = read_names(labels)
    names = list(labels) if labels is not None else [str(i) for i in range(out.size)]
    if len(names) < out.size:
        raise ValueError(f"{len(names)} labels for a network with {out.size} outputs")
    return [(names[i], float(out[i])) for i in top_k(out.tolist(), min(top, out.size))]


def format_classifier_line(name: str, value: float) -> str:
    """One line as ``classifier predict`` prints it: ``%5.2f%%: %s`` of the float32 ``value*100``."""
    return f"{float(np.float32(value) * np.float32(100)):5.2f}%: {name}"
