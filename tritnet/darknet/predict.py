"""Run a darknet network on one image, as ``darknet detector test`` and ``classifier predict`` do.

pjreddie's darknet letterboxes the image to the network size (``tritnet_rt.detect.letterbox``, bit-exact with
darknet) for both. AlexeyAB's ``detector test`` stretches it (``resize_image``) unless ``-letter_box`` or
``[net] letter_box=1``, and its ``classifier predict`` scales the shorter side to the network width and crops the
centre. Then the network runs and either the region/yolo heads are decoded (thresholds, NMS, the printed list;
AlexeyAB's differences in ``detect_alexeyab.py``) or the output is ranked with darknet's ``top_k``.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from tritnet_rt.detect import (Head, do_nms_obj, do_nms_sort, get_network_boxes, letterbox, load_image, resize_image,
                               select_detections)
from . import detect_alexeyab as aab
from .datafile import read_names
from .network import DarknetNet, build_darknet

__all__ = ["network_input", "uses_letterbox", "detect_image", "top_k", "predict_darknet_classifier",
           "format_classifier_line", "classifier_input"]


def _image(image) -> np.ndarray:
    return load_image(image) if not isinstance(image, np.ndarray) else np.asarray(image, np.float32)


def _tensor(net: DarknetNet, x: np.ndarray) -> torch.Tensor:
    p = next(net.parameters(), None)
    t = torch.from_numpy(x)[None]
    return t.to(p.device, p.dtype) if p is not None else t


def uses_letterbox(net: DarknetNet, letter_box: Optional[bool] = None) -> bool:
    """Whether ``detector test`` letterboxes: always in pjreddie's darknet; in AlexeyAB's with ``-letter_box``
    (``letter_box=True``) or ``[net] letter_box=1``."""
    if net.dialect != "alexeyab":
        return True
    return bool(letter_box) or bool(net.cfg.net.param("letter_box"))


def network_input(net: DarknetNet, image, letter_box: Optional[bool] = None) -> tuple[torch.Tensor, int, int]:
    """(1, C, H, W) tensor ``detector test`` feeds for ``image`` (a path or a (3, H, W) float32 array): letterboxed
    or, in AlexeyAB's darknet without letter_box, resized; and the image w, h."""
    im = _image(image)
    fit = letterbox if uses_letterbox(net, letter_box) else resize_image
    return _tensor(net, fit(im, net.width, net.height)), im.shape[2], im.shape[1]


def detect_image(net: DarknetNet, image, thresh: float = 0.24, nms: float = 0.45,
                 names: Optional[Sequence[str]] = None, nms_kind: str = "sort", letter_box: Optional[bool] = None):
    """Darknet's detections for one image, in the order ``detector test`` prints them.

    ``nms_kind``: "sort" (what ``detector test`` runs: per class; in AlexeyAB's darknet the last [yolo]'s
    ``nms_kind``), "obj" (by objectness, python/darknet.py) or "none". ``letter_box`` is AlexeyAB's
    ``-letter_box`` flag. ``hier_thresh`` does not exist here: it only matters for softmax trees, which tritnet
    refuses.
    """
    if not net.head_indices:
        raise ValueError("this network has no [region] or [yolo] layer to detect with")
    letter = uses_letterbox(net, letter_box)
    x, im_w, im_h = network_input(net, image, letter_box)
    with torch.no_grad():
        outs = net.forward_all(x)
    if net.dialect == "alexeyab":
        pairs = [(info, out[0]) for info, out in net.heads(outs)]
        cands = aab.get_network_boxes(pairs, im_w, im_h, net.width, net.height, thresh, letter)
        if nms and nms_kind == "sort":
            last = pairs[-1][0].attrs
            cands = aab.nms_alexeyab(cands, nms, last.get("nms_kind", "default"), last.get("beta_nms", 0.6))
        elif nms and nms_kind == "obj":
            cands = do_nms_obj(cands, nms)
        return aab.select_detections_v3(cands, thresh, im_w, im_h, names)
    heads = [Head.from_layer(info, out[0]) for info, out in net.heads(outs)]
    cands = get_network_boxes(heads, im_w, im_h, net.width, net.height, thresh)
    if nms and nms_kind != "none":
        cands = {"sort": do_nms_sort, "obj": do_nms_obj}[nms_kind](cands, nms)
    return select_detections(cands, thresh, im_w, im_h, names)


def classifier_input(net: DarknetNet, image) -> torch.Tensor:
    """(1, C, H, W) tensor ``classifier predict`` feeds: pjreddie letterboxes; AlexeyAB (``predict_classifier``)
    runs ``resize_min`` (the shorter side to the network width) and crops the centre (``crop_image``, which
    repeats the edge pixels where the crop leaves the image)."""
    im = _image(image)
    if net.dialect != "alexeyab":
        return _tensor(net, letterbox(im, net.width, net.height))
    _, h, w = im.shape
    side = net.width
    if w < h:
        nw, nh = side, (h * side) // w
    else:
        nw, nh = (w * side) // h, side
    if (nw, nh) != (w, h):
        im = resize_image(im, nw, nh)
    dx, dy = int((nw - net.width) / 2), int((nh - net.height) / 2)       # C division: toward zero
    rows = np.clip(np.arange(net.height) + dy, 0, nh - 1)
    cols = np.clip(np.arange(net.width) + dx, 0, nw - 1)
    return _tensor(net, np.ascontiguousarray(im[:, rows][:, :, cols]))


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
                               method: Optional[str] = "twn", dialect: Optional[str] = None) -> list:
    """[(name, value)] of the ``top`` best classes, what ``darknet classifier predict`` prints.

    The value is the network output itself (darknet prints it ×100 as "%"); for a cfg without a
    ``[softmax]`` such as ``cifar_minin`` it is not a probability and can be negative or above 1.
    ``labels``: a list of names, a file with one name per line, or None (names are the indices).
    """
    net = build_darknet(cfg_path, weights_path, method, dialect=dialect)
    x = classifier_input(net, image_path)
    with torch.no_grad():
        out = net(x)[0].reshape(-1).float().cpu().numpy()
    source = labels if labels is not None and not isinstance(labels, (list, tuple)) else "the labels given"
    if labels is not None and not isinstance(labels, (list, tuple)):
        labels = read_names(labels)
    names = list(labels) if labels is not None else [str(i) for i in range(out.size)]
    if len(names) < out.size:
        raise ValueError(f"{source}: {len(names)} labels for the {out.size} outputs of {cfg_path}")
    return [(names[i], float(out[i])) for i in top_k(out.tolist(), min(top, out.size))]


def format_classifier_line(name: str, value: float) -> str:
    """One line as ``classifier predict`` prints it: ``%5.2f%%: %s`` of the float32 ``value*100``."""
    return f"{float(np.float32(value) * np.float32(100)):5.2f}%: {name}"
