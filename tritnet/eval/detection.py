"""Detection metrics as darknet (AlexeyAB's ``detector map``) reports them, numpy only.

Per class, the detections of all images are ranked by probability. A detection is a true positive when
its best-overlapping truth of the same class has IoU > ``iou_thresh`` and no higher-ranked detection took
that truth already; a second detection of the same object is a false positive. A detection whose best
match is a *difficult* truth is ignored (neither TP nor FP) and difficult truths are not counted, as the
VOC devkit does. Average precision from the precision/recall points:

* ``11``: VOC2007's 11-point rule, mean over r = 0, .1, …, 1 of the best precision at recall ≥ r;
* ``0``: the area under the curve at every distinct recall (VOC2010+, AlexeyAB's default);
* ``101``: COCO's 101 recall points (at this one IoU threshold).

mAP is the mean over all classes (a class without truths counts 0, as in darknet). At one confidence
threshold (``conf_thresh``, darknet's .25) darknet also counts TP/FP/FN, precision, recall, F1 and the
"average IoU": the summed IoU of the true positives divided by TP + FP. For those counts the detections of
an image are taken in their output order and a detection is a TP if its truth was not already matched by
an earlier detection of that image.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from tritnet_rt.detect import box_iou

__all__ = ["average_precision", "ClassResult", "MapResult", "evaluate_map"]


def average_precision(recall: np.ndarray, precision: np.ndarray, points: int) -> float:
    """AP of a ranked list's recall/precision arrays (``points``: 11, 101, or 0 for the area)."""
    recall, precision = np.asarray(recall, np.float64), np.asarray(precision, np.float64)
    if recall.size == 0:
        return 0.0
    if points:
        ap = 0.0
        for r in np.arange(points) / (points - 1):      # darknet's point/(points-1): 0.3 is exactly 3/10
            above = precision[recall >= r]
            ap += above.max() if above.size else 0.0
        return ap / points
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]               # precision envelope from the right
    step = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[step + 1] - mrec[step]) * mpre[step + 1]))


@dataclass
class ClassResult:
    name: str
    ap11: float            # VOC2007 11-point
    ap: float              # area under the curve (all points)
    ap101: float
    truths: int            # non-difficult truths
    detections: int        # detections ranked (prob > 0 after the network's threshold)
    tp: int                # at conf_thresh
    fp: int


@dataclass
class MapResult:
    map11: float
    map: float
    map101: float
    classes: list = field(default_factory=list)
    conf_thresh: float = 0.25
    iou_thresh: float = 0.5
    tp: int = 0
    fp: int = 0
    fn: int = 0
    precision: float = 0.0
    recall: float = 0.0
    f1: float = 0.0
    avg_iou: float = 0.0
    images: int = 0
    detections: int = 0
    truths: int = 0

    def to_dict(self, percent: bool = False) -> dict:
        """The figures as a dict; ``percent``: APs, precision, recall, F1 and IoU in percent (the command line's
        convention, text and JSON alike), thresholds and counts as they are."""
        d = asdict(self)
        if percent:
            for k in ("map11", "map", "map101", "precision", "recall", "f1", "avg_iou"):
                d[k] = 100 * d[k]
            for c in d["classes"]:
                for k in ("ap11", "ap", "ap101"):
                    c[k] = 100 * c[k]
        return d


def _match(box, t_boxes, t_cls, t_diff, c, iou_thresh):
    """(truth index or -1, its IoU, difficult?) of the best same-class truth above the threshold."""
    same = np.flatnonzero(t_cls == c)
    if same.size == 0:
        return -1, 0.0, False
    ious = box_iou(box, t_boxes[same])
    k = int(np.argmax(ious))
    if not ious[k] > np.float32(iou_thresh):
        return -1, 0.0, False
    return int(same[k]), float(ious[k]), bool(t_diff[same[k]])


def evaluate_map(detections: Sequence, truths: Sequence, names: Sequence[str], iou_thresh: float = 0.5,
                 conf_thresh: float = 0.25) -> MapResult:
    """``detections[i]``: (boxes (N, 4) x, y, w, h relative, prob (N, classes)) of image i in output order;
    ``truths[i]``: (boxes (K, 4), classes (K,), difficult (K,) or None)."""
    classes = len(names)
    ranked = [[] for _ in range(classes)]        # per class: (prob, image, truth index, iou, difficult)
    n_truth = np.zeros(classes, np.int64)
    tp_c, fp_c = np.zeros(classes, np.int64), np.zeros(classes, np.int64)
    tp = fp = 0
    iou_sum = 0.0
    n_det = 0
    for img, ((d_boxes, d_prob), t) in enumerate(zip(detections, truths)):
        t_boxes, t_cls = np.asarray(t[0], np.float32).reshape(-1, 4), np.asarray(t[1], np.int64)
        t_diff = np.zeros(len(t_cls), bool) if len(t) < 3 or t[2] is None else np.asarray(t[2], bool)
        n_truth += np.bincount(t_cls[~t_diff], minlength=classes)[:classes]
        matched = set()                           # truths this image's thresholded detections took
        for k in range(len(d_boxes)):
            for c in np.flatnonzero(np.asarray(d_prob[k]) > 0):
                p = float(d_prob[k][c])
                j, iou, difficult = _match(d_boxes[k], t_boxes, t_cls, t_diff, c, iou_thresh)
                ranked[c].append((p, img, j, difficult))
                n_det += 1
                if p > conf_thresh and not difficult:
                    if j >= 0 and j not in matched:
                        tp += 1
                        tp_c[c] += 1
                        iou_sum += iou
                    else:
                        fp += 1
                        fp_c[c] += 1
                if j >= 0:
                    matched.add(j)
    results = []
    for c in range(classes):
        dets = sorted(ranked[c], key=lambda d: -d[0])            # stable: ties keep the output order
        taken, hits = set(), []
        for p, img, j, difficult in dets:
            if difficult:
                continue
            hit = j >= 0 and (img, j) not in taken
            if hit:
                taken.add((img, j))
            hits.append(hit)
        hits = np.asarray(hits, bool)
        ctp, cfp = np.cumsum(hits), np.cumsum(~hits)
        recall = ctp / n_truth[c] if n_truth[c] else np.zeros(len(hits))
        precision = ctp / np.maximum(ctp + cfp, 1)
        results.append(ClassResult(names[c], average_precision(recall, precision, 11),
                                   average_precision(recall, precision, 0), average_precision(recall, precision, 101),
                                   int(n_truth[c]), len(dets), int(tp_c[c]), int(fp_c[c])))
    total = int(n_truth.sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / total if total else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    mean = (lambda k: float(np.mean([getattr(r, k) for r in results])) if results else 0.0)
    return MapResult(mean("ap11"), mean("ap"), mean("ap101"), results, conf_thresh, iou_thresh, tp, fp, total - tp,
                     precision, recall, f1, iou_sum / (tp + fp) if tp + fp else 0.0, len(truths), n_det, total)
