"""``detector map``, ``detector recall`` and ``detector valid``: a trained detector on the valid set of a
``.data`` file.

* :func:`map_detector`: per-class AP (VOC2007 11-point and area under the curve), mAP@0.5, and at one
  confidence threshold precision, recall, F1, TP/FP/FN and darknet's average IoU (AlexeyAB's ``map``).
* :func:`recall_detector`: pjreddie's ``recall`` report (proposals per image, recall of the truths).
* :func:`valid_detector`: detection files as ``darknet detector valid`` writes them, VOC
  (``comp4_det_test_<class>.txt``: ``id prob xmin ymin xmax ymax``, 1-based pixels) and COCO
  (``coco_results.json``), and COCO's mAP@[.5:.95] from pycocotools.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from ..atomic import write_text_atomic
from ..models.load import load_model
from .coco import coco_evaluate, coco_ground_truth, coco_results, read_coco
from .data import open_data, source_kind
from .evaluate import clipped, run_detector, score_classes, score_map, score_recall
from .labels import Issues
from .setup import check_heads

__all__ = ["load_detector", "map_detector", "recall_detector", "valid_detector", "voc_result_lines"]


def load_detector(data, cfg, weights, method: Optional[str] = "twn", per_channel: bool = False):
    """(data, network in eval mode) for a .data file, a cfg and its .weights (or training .ckpt).

    ``per_channel`` must match training: a per-channel ternary layer re-ternarized per layer is not the same
    layer (per-layer TWN of per-layer ternary values gives them back, §1.1 of methods.md)."""
    data = open_data(data) if not hasattr(data, "records") else data
    if not Path(weights).is_file():
        raise FileNotFoundError(f"{weights}: no such weights file")
    net = load_model(cfg, weights, method=method, per_channel=per_channel).model
    check_heads(net, data)
    return data, net


def _detect(data, net, split, workers, batch, letterbox, thresh, nms, nms_kind="sort", progress=False):
    issues = Issues()
    records = data.records(split, issues)
    dets = run_detector(net, records, thresh=thresh, nms=nms, nms_kind=nms_kind, letterbox=letterbox, batch=batch,
                        workers=workers, issues=issues, progress=progress)
    return records, dets, issues


def _speed(dets, n) -> dict:
    return {"seconds": dets.seconds, "images_per_s": n / dets.seconds if dets.seconds else 0.0,
            "network_images_per_s": n / dets.network_seconds if dets.network_seconds else 0.0}


def map_detector(data, cfg, weights, *, thresh: float = 0.25, iou_thresh: float = 0.5, method: Optional[str] = "twn",
                 per_channel: bool = False, letterbox: bool = True, batch: int = 8, workers: int = 2, progress: bool = False,
                 clip: bool = False, plots=None) -> dict:
    """``result``: darknet's figures (MapResult); ``classes``: the per-class table, curves and confusion matrix
    (ClassScores). ``clip``: score boxes clipped to the image as ``valid`` writes them (darknet's map: not).
    ``plots``: a folder for confusion_matrix.png, PR_curve.png, F1_curve.png."""
    data, net = load_detector(data, cfg, weights, method, per_channel)
    records, dets, issues = _detect(data, net, "valid", workers, batch, letterbox, 0.005, 0.45, progress=progress)
    if clip:
        dets = clipped(dets)
    result = score_map(dets, records, data.names, iou_thresh, thresh)
    scores = score_classes(dets, records, data.names, result, thresh, iou_thresh)
    out = {"result": result, "classes": scores, "boxes": "clipped" if clip else "unclipped", "skipped": len(issues),
           **_speed(dets, len(records))}
    if plots is not None:
        from ..eval.perclass import save_plots
        out["plots"] = save_plots(plots, scores.ranked, scores.matrix, data.names, thresh, iou_thresh)
    return out


def recall_detector(data, cfg, weights, *, thresh: float = 0.001, iou_thresh: float = 0.5, nms: float = 0.4,
                    method: Optional[str] = "twn", per_channel: bool = False, letterbox: bool = False, batch: int = 8,
                    workers: int = 2) -> dict:
    data, net = load_detector(data, cfg, weights, method, per_channel)
    records, dets, issues = _detect(data, net, "valid", workers, batch, letterbox, thresh, nms, "obj")
    return {**score_recall(dets, records, thresh, iou_thresh), "skipped": len(issues)}


def voc_result_lines(image_id: str, c, w: int, h: int, clip: bool = True) -> dict:
    """{class: [line]} of darknet's ``print_detector_detections`` for one image (boxes relative to it);
    ``clip=False`` leaves the corners where the network put them (1-based pixels still)."""
    out: dict = {}
    for box, prob in zip(c.boxes, c.prob):
        x, y, bw, bh = (float(v) * s for v, s in zip(box, (w, h, w, h)))
        xmin, xmax, ymin, ymax = x - bw / 2 + 1, x + bw / 2 + 1, y - bh / 2 + 1, y + bh / 2 + 1
        if clip:
            xmin, xmax, ymin, ymax = max(xmin, 1.0), min(xmax, float(w)), max(ymin, 1.0), min(ymax, float(h))
        for k, p in enumerate(prob):
            if p:
                out.setdefault(k, []).append(f"{image_id} {p:f} {xmin:f} {ymin:f} {xmax:f} {ymax:f}\n")
    return out


def _write(path: Path, text: str):
    write_text_atomic(path, text)


def valid_detector(data, cfg, weights, outdir="results", *, prefix: str = "comp4_det_test_", formats=("voc", "coco"),
                   thresh: float = 0.005, nms: float = 0.45, coco_eval: bool = True, method: Optional[str] = "twn",
                   per_channel: bool = False, letterbox: bool = True, batch: int = 8, workers: int = 2,
                   clip: bool = True) -> dict:
    """``clip``: boxes clipped to the image, as darknet's valid writes them (False: as ``map`` scores them)."""
    data, net = load_detector(data, cfg, weights, method, per_channel)
    records, dets, issues = _detect(data, net, "valid", workers, batch, letterbox, thresh, nms)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    kept = [(r, c, s) for r, c, s in zip(records, dets.images, dets.sizes) if c is not None]
    written = {}
    if "voc" in formats:
        lines = {k: [] for k in range(data.classes)}
        for r, c, (w, h) in kept:
            for k, rows in voc_result_lines(Path(r.image).stem, c, w, h, clip).items():
                lines[k] += rows
        for k, name in enumerate(data.names):
            path = outdir / f"{prefix}{name}.txt"
            _write(path, "".join(lines[k]))
            written[name] = str(path)
    out = {"written": written, "images": len(kept), "skipped": len(issues), "boxes": "clipped" if clip else "unclipped",
           **_speed(dets, len(records))}
    if "coco" in formats:
        category_ids = data.category_ids or list(range(1, data.classes + 1))
        results = coco_results([r for r, _, _ in kept], [c for _, c, _ in kept], [s for _, _, s in kept], category_ids,
                               clip)
        path = outdir / "coco_results.json"
        _write(path, json.dumps(results))
        out["coco_results"] = str(path)
        if coco_eval:
            src = data.source("valid")
            if source_kind(src) == "coco":
                gt = read_coco(src)
                keep_ids = {r.image_id for r, _, _ in kept}
                gt = {**gt, "images": [im for im in gt["images"] if im["id"] in keep_ids]}
            else:
                gt = coco_ground_truth([r for r, _, _ in kept], [s for _, _, s in kept], data.names, category_ids)
            out["coco"] = coco_evaluate(gt, results)
    return out
