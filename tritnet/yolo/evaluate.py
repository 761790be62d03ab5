"""Run a detector over a set of images, darknet's way, and score it.

Each image is letterboxed to the cfg's size (``--no-letterbox``: stretched, as pjreddie's ``recall``
does), the heads are decoded with ``tritnet_rt.detect.get_network_boxes`` at a low threshold (.005, AlexeyAB's
``map``), and per-class NMS (``do_nms_sort``, .45) is applied. The boxes come back relative to the image.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from tqdm import tqdm

from tritnet_rt.detect import Candidates, Head, box_iou, do_nms_obj, do_nms_sort, get_network_boxes

from ..eval.detection import MapResult, evaluate_map
from .labels import Issues
from .loader import EvalSet, ImageStore, eval_loader

__all__ = ["Detections", "run_detector", "score_map", "score_recall"]


@dataclass
class Detections:
    """Per image (``None`` where the image could not be decoded): candidates after NMS, boxes relative to the
    image; the image sizes; wall time of the network and decoding."""
    images: list
    sizes: list
    seconds: float
    network_seconds: float


def run_detector(net, records, *, thresh: float = 0.005, nms: float = 0.45, nms_kind: str = "sort",
                 letterbox: bool = True, batch: int = 8, workers: int = 2, store: Optional[ImageStore] = None,
                 issues: Optional[Issues] = None, progress: bool = False, desc: str = "detect") -> Detections:
    issues = issues if issues is not None else Issues()
    store = store if store is not None else ImageStore([r.image for r in records], cache_mb=0, issues=issues)
    was_training = net.training
    net.eval()
    param = next(net.parameters(), None)
    device, dtype = (param.device, param.dtype) if param is not None else (torch.device("cpu"), torch.float32)
    ds = EvalSet(records, store, net.width, net.height, letterbox)
    images, sizes = [None] * len(records), [(0, 0)] * len(records)
    start, net_time = time.time(), 0.0
    try:
        bar = tqdm(eval_loader(ds, batch, workers), total=-(-len(ds) // batch), desc=desc, unit="batch",
                   disable=not progress, leave=False, dynamic_ncols=True)
        for x, idx, ws, hs, problems in bar:
            t0 = time.time()
            with torch.no_grad():
                outs = net.forward_all(x.to(device, dtype))
            heads = [(info, out.float().cpu().numpy()) for info, out in net.heads(outs)]
            net_time += time.time() - t0
            for b, i in enumerate(idx):
                if problems[b]:
                    issues.report(records[i].image, problems[b])
                    continue
                decoded = [Head.from_layer(info, out[b]) for info, out in heads]
                c = get_network_boxes(decoded, ws[b], hs[b], net.width, net.height, thresh) if letterbox else \
                    get_network_boxes(decoded, net.width, net.height, net.width, net.height, thresh)
                if nms and nms_kind == "sort":
                    c = do_nms_sort(c, nms)
                elif nms and nms_kind == "obj":
                    c = do_nms_obj(c, nms)
                images[i], sizes[i] = c, (ws[b], hs[b])
    finally:
        net.train(was_training)
    return Detections(images, sizes, time.time() - start, net_time)


def _kept(c: Candidates) -> tuple[np.ndarray, np.ndarray]:
    """Rows with any class probability (darknet's map takes every (box, class) with prob > 0)."""
    rows = np.flatnonzero((c.prob > 0).any(1))
    return c.boxes[rows], c.prob[rows]


def score_map(dets: Detections, records, names, iou_thresh: float = 0.5, conf_thresh: float = 0.25) -> MapResult:
    """mAP and darknet's threshold counts over the images that could be read."""
    pairs = [(_kept(c), (r.boxes, r.classes, r.difficult)) for c, r in zip(dets.images, records) if c is not None]
    return evaluate_map([p[0] for p in pairs], [p[1] for p in pairs], names, iou_thresh, conf_thresh)


def score_recall(dets: Detections, records, thresh: float = 0.001, iou_thresh: float = 0.5) -> dict:
    """darknet's ``detector recall``: proposals (objectness > thresh) per image, and for each truth the best
    IoU of any proposal; running lines (image, correct, total, RPs/img, IOU %, recall %) and the totals."""
    total = correct = proposals = 0
    iou_sum, lines, n = 0.0, [], 0
    for c, r in zip(dets.images, records):
        if c is None:
            continue
        live = c.objectness > np.float32(thresh)
        proposals += int(live.sum())
        boxes = c.boxes[live]
        for t, d in zip(r.boxes, r.difficult):
            if d:
                continue
            total += 1
            best = float(np.max(box_iou(t, boxes))) if len(boxes) else 0.0
            iou_sum += best
            correct += best > iou_thresh
        lines.append({"image": n, "correct": correct, "total": total, "rps_per_image": proposals / (n + 1),
                      "iou": 100 * iou_sum / max(total, 1), "recall": 100 * correct / max(total, 1)})
        n += 1
    last = lines[-1] if lines else {"correct": 0, "total": 0, "rps_per_image": 0.0, "iou": 0.0, "recall": 0.0}
    return {"images": n, "correct": last["correct"], "total": last["total"], "proposals": proposals,
            "rps_per_image": last["rps_per_image"], "avg_iou": last["iou"], "recall": last["recall"], "lines": lines}


def clip_boxes(c: Candidates) -> Candidates:
    """The candidates with their boxes clipped to the image (x, y, w, h relative to it), as darknet's ``valid``
    writes them (``print_detector_detections``, ``print_cocos``); darknet's ``map`` scores them unclipped."""
    import dataclasses
    b = np.asarray(c.boxes, np.float32)
    x0, x1 = np.clip(b[:, 0] - b[:, 2] / 2, 0, 1), np.clip(b[:, 0] + b[:, 2] / 2, 0, 1)
    y0, y1 = np.clip(b[:, 1] - b[:, 3] / 2, 0, 1), np.clip(b[:, 1] + b[:, 3] / 2, 0, 1)
    boxes = np.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], 1).astype(np.float32) if len(b) else b
    return dataclasses.replace(c, boxes=boxes)


def clipped(dets: Detections) -> Detections:
    return Detections([None if c is None else clip_boxes(c) for c in dets.images], dets.sizes, dets.seconds,
                      dets.network_seconds)


@dataclass
class ClassScores:
    ranked: list          # tritnet.eval.detection.Ranked per class (the MapResult's)
    table: list           # TableRow: "all", then one per class
    matrix: np.ndarray    # confusion matrix (classes + 1 square, rows predicted)


def score_classes(dets: Detections, records, names, result: MapResult, conf_thresh: float = 0.25,
                  iou_thresh: float = 0.5) -> ClassScores:
    """The per-class table, the ranking behind the PR/F1 curves and the confusion matrix, over the images that
    could be read; ``result``: ``score_map`` of the same detections."""
    from ..eval.perclass import class_table, confusion_matrix
    pairs = [(_kept(c), (r.boxes, r.classes, r.difficult)) for c, r in zip(dets.images, records) if c is not None]
    d, t = [p[0] for p in pairs], [p[1] for p in pairs]
    return ClassScores(result.ranked, class_table(result.ranked, result, len(pairs)),
                       confusion_matrix(d, t, len(names), conf_thresh, iou_thresh))
