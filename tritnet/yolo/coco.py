"""COCO JSON: annotations in (records for training and evaluation), detections out (``results.json``), and
COCO's mAP@[.5:.95] computed by pycocotools.

Classes are the JSON's categories in id order unless a ``.names`` list is given (then matched by name;
categories it does not list are left out). ``iscrowd`` annotations are kept as "difficult": never
trained on, and matched as crowd regions by the COCO evaluation.
"""
from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from tritnet_rt.files import MiB, read_text

from ..data.errors import UnknownClasses
from .labels import Issues, Record, check_box

__all__ = ["read_coco", "coco_records", "coco_results", "coco_ground_truth", "coco_evaluate", "darknet_image_id"]

COCO_STATS = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR1", "AR10", "AR100", "AR_small",
              "AR_medium", "AR_large")


def read_coco(path) -> dict:
    try:
        data = json.loads(read_text(path, "COCO annotation file", 1024 * MiB))   # train2017's is 448 MB
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"{path}: not a COCO instances file (no '{key}' list)")
    return data


def _category_index(data: dict, names: Optional[Sequence[str]], path) -> tuple[dict, list]:
    cats = sorted(data["categories"], key=lambda c: c["id"])
    if names is None:
        return {c["id"]: i for i, c in enumerate(cats)}, [c["name"] for c in cats]
    by_name = {c["name"]: c["id"] for c in cats}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f"{path}: the names list has classes the JSON does not define: {missing[:5]}")
    return {by_name[n]: i for i, n in enumerate(names)}, list(names)


def coco_records(path, issues: Issues, names: Optional[Sequence[str]] = None, images_dir=None) -> tuple[list, list]:
    """(records, class names) of a COCO instances file; images are ``images_dir/file_name`` (default: the
    JSON's folder, then its ``../images``)."""
    path = Path(path)
    data = read_coco(path)
    cat_index, class_names = _category_index(data, names, path)
    roots = [Path(images_dir)] if images_dir else [path.parent, path.parent.parent / "images"]
    anns: dict = {}
    for a in data["annotations"]:
        anns.setdefault(a.get("image_id"), []).append(a)
    out, unknown = [], UnknownClasses()
    category_name = {c.get("id"): str(c.get("name")) for c in data.get("categories", []) if isinstance(c, dict)}
    for im in data["images"]:
        w, h, name = im.get("width"), im.get("height"), im.get("file_name", "")
        image = next((r / name for r in roots if (r / name).is_file()), roots[0] / name)
        if not image.is_file():
            issues.report(image, f"image of COCO id {im.get('id')} missing")
            continue
        if not w or not h:
            issues.report(f"{path} (image {im.get('id')})", "image without width/height")
            continue
        boxes, ids, crowd = [], [], []
        for a in anns.get(im["id"], []):
            if a.get("category_id") not in cat_index:
                unknown.add(category_name.get(a.get("category_id"), f"category {a.get('category_id')}"), path)
                continue
            try:
                x, y, bw, bh = (float(v) for v in a["bbox"])
            except (KeyError, TypeError, ValueError):
                issues.report(f"{path} (annotation {a.get('id')})", "bbox is not [x, y, w, h]")
                continue
            box, problem = check_box((x + bw / 2) / w, (y + bh / 2) / h, bw / w, bh / h, cat_index[a["category_id"]],
                                     len(class_names))
            if problem:
                issues.report(f"{path} (annotation {a.get('id')}, image {name})", problem)
                continue
            boxes.append(box)
            ids.append(cat_index[a["category_id"]])
            crowd.append(bool(a.get("iscrowd", 0)))
        out.append(Record(str(image), boxes, ids, crowd, image_id=im["id"], size=(w, h)))
    unknown.report(issues, path)
    return out, class_names


def darknet_image_id(path: str) -> Optional[int]:
    """darknet's ``get_coco_image_id``: the number after the last '_' of the file name (None if there is none)."""
    m = re.search(r"_(\d+)$", Path(path).stem)
    return int(m.group(1)) if m else None


def image_ids(records: Sequence[Record]) -> list:
    """COCO ids of the records: their own, else darknet's file-name rule if it is unique, else 1..N."""
    if all(r.image_id is not None for r in records):
        return [r.image_id for r in records]
    ids = [darknet_image_id(r.image) for r in records]
    if None not in ids and len(set(ids)) == len(ids):
        return ids
    return list(range(1, len(records) + 1))


def coco_results(records, detections, image_sizes, category_ids: Sequence[int], clip: bool = True) -> list[dict]:
    """darknet's ``print_cocos`` as JSON: one entry per (box, class with prob > 0); bbox [x, y, w, h] in pixels,
    clipped to the image (``clip=False``: as the network predicted them, as darknet's ``map`` scores them)."""
    ids = image_ids(records)
    out = []
    for image_id, det, (w, h) in zip(ids, detections, image_sizes):
        for box, prob in zip(det.boxes, det.prob):
            x, y, bw, bh = (float(v) for v in box)
            xmin, xmax, ymin, ymax = (x - bw / 2) * w, (x + bw / 2) * w, (y - bh / 2) * h, (y + bh / 2) * h
            if clip:
                xmin, xmax, ymin, ymax = max(xmin, 0.0), min(xmax, float(w)), max(ymin, 0.0), min(ymax, float(h))
            for c in np.flatnonzero(prob):
                out.append({"image_id": image_id, "category_id": int(category_ids[c]),
                            "bbox": [round(xmin, 4), round(ymin, 4), round(xmax - xmin, 4), round(ymax - ymin, 4)],
                            "score": round(float(prob[c]), 6)})
    return out


def coco_ground_truth(records, image_sizes, names, category_ids) -> dict:
    """A COCO instances dict for records from YOLO or VOC labels (difficult boxes become crowd regions)."""
    ids = image_ids(records)
    images, anns = [], []
    for image_id, r, (w, h) in zip(ids, records, image_sizes):
        images.append({"id": image_id, "width": int(w), "height": int(h), "file_name": Path(r.image).name})
        for box, c, d in zip(r.boxes, r.classes, r.difficult):
            x, y, bw, bh = (float(v) for v in box)
            pw, ph = bw * w, bh * h
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": int(category_ids[c]),
                         "bbox": [(x - bw / 2) * w, (y - bh / 2) * h, pw, ph], "area": pw * ph, "iscrowd": int(d)})
    return {"images": images, "annotations": anns,
            "categories": [{"id": int(i), "name": n} for i, n in zip(category_ids, names)]}


def coco_evaluate(ground_truth: dict, results: list[dict]) -> dict:
    """COCO's 12 summary numbers (AP@[.5:.95], AP50, ...) from pycocotools; all -1 when there are no results."""
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise ValueError("COCO mAP needs pycocotools: pip install pycocotools") from None
    if not results:
        return {k: -1.0 for k in COCO_STATS}
    with contextlib.redirect_stdout(io.StringIO()):      # pycocotools prints its progress and table
        gt = COCO()
        gt.dataset = ground_truth
        gt.createIndex()
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {k: float(v) for k, v in zip(COCO_STATS, ev.stats)}
