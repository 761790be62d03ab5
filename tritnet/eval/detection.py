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

from dataclasses import asdict, dataclass, field, replace
from typing import Sequence

import numpy as np

from tritnet_rt.detect import box_iou

__all__ = ["average_precision", "ClassResult", "MapResult", "evaluate_map", "Ranked", "rank_detections",
           "IOU_THRESHOLDS"]

IOU_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))      # COCO's .50:.95


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
    ranked: list = field(default_factory=list, repr=False, compare=False)   # Ranked per class: the curves

    def to_dict(self, percent: bool = False) -> dict:
        """The figures as a dict; ``percent``: APs, precision, recall, F1 and IoU in percent (the command line's
        convention, text and JSON alike), thresholds and counts as they are."""
        d = asdict(replace(self, ranked=[]))
        d.pop("ranked")
        if percent:
            for k in ("map11", "map", "map101", "precision", "recall", "f1", "avg_iou"):
                d[k] = 100 * d[k]
            for c in d["classes"]:
                for k in ("ap11", "ap", "ap101"):
                    c[k] = 100 * c[k]
        return d


def _truth(t):
    boxes, cls = np.asarray(t[0], np.float32).reshape(-1, 4), np.asarray(t[1], np.int64)
    diff = np.zeros(len(cls), bool) if len(t) < 3 or t[2] is None else np.asarray(t[2], bool)
    return boxes, cls, diff


@dataclass
class Ranked:
    """One class's detections over all images, best first: probability, image, best same-class truth (-1:
    none), its IoU, whether it is difficult; ``truths`` (non-difficult) and ``images`` (holding the class)."""
    prob: np.ndarray
    image: np.ndarray
    truth: np.ndarray
    iou: np.ndarray
    difficult: np.ndarray
    truths: int
    images: int

    def hits(self, iou_thresh: float):
        """(probabilities, hit?) of the scored detections at this IoU threshold (difficult matches dropped)."""
        t = float(np.float32(iou_thresh))
        above = self.iou > t
        keep = ~(self.difficult & above)
        taken, hits = set(), []
        for img, j, ok in zip(self.image[keep], self.truth[keep], above[keep]):
            hit = bool(ok) and j >= 0 and (img, j) not in taken
            if hit:
                taken.add((img, j))
            hits.append(hit)
        return self.prob[keep], np.asarray(hits, bool)

    def curve(self, iou_thresh: float = 0.5):
        """(confidence, precision, recall) along the ranking."""
        prob, hits = self.hits(iou_thresh)
        tp, fp = np.cumsum(hits), np.cumsum(~hits)
        recall = tp / self.truths if self.truths else np.zeros(len(hits))
        return prob, tp / np.maximum(tp + fp, 1), recall

    def ap(self, iou_thresh: float = 0.5, points: int = 0) -> float:
        _, precision, recall = self.curve(iou_thresh)
        return average_precision(recall, precision, points)


def rank_detections(detections: Sequence, truths: Sequence, classes: int) -> list:
    """``detections[i]``: (boxes (N, 4), prob (N, classes)); ``truths[i]``: (boxes, classes, difficult or None),
    as ``evaluate_map`` takes them. One ``Ranked`` per class."""
    per = [[] for _ in range(classes)]
    n_truth, n_images = np.zeros(classes, np.int64), np.zeros(classes, np.int64)
    for img, ((d_boxes, d_prob), t) in enumerate(zip(detections, truths)):
        t_boxes, t_cls, t_diff = _truth(t)
        n_truth += np.bincount(t_cls[~t_diff], minlength=classes)[:classes]
        n_images += np.bincount(np.unique(t_cls[~t_diff]), minlength=classes)[:classes]
        for k in range(len(d_boxes)):
            for c in np.flatnonzero(np.asarray(d_prob[k]) > 0):
                same = np.flatnonzero(t_cls == c)
                j, iou, diff = -1, 0.0, False
                if same.size:
                    ious = box_iou(d_boxes[k], t_boxes[same])
                    b = int(np.argmax(ious))
                    j, iou, diff = int(same[b]), float(ious[b]), bool(t_diff[same[b]])
                per[c].append((float(d_prob[k][c]), img, j, iou, diff))
    out = []
    for c in range(classes):
        rows = sorted(per[c], key=lambda d: -d[0])            # stable: ties keep the output order (darknet's)
        cols = list(zip(*rows)) if rows else [[]] * 5
        out.append(Ranked(np.asarray(cols[0], np.float64), np.asarray(cols[1], np.int64),
                          np.asarray(cols[2], np.int64), np.asarray(cols[3], np.float64), np.asarray(cols[4], bool),
                          int(n_truth[c]), int(n_images[c])))
    return out


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
    ranked = rank_detections(detections, truths, classes)
    n_truth = np.array([r.truths for r in ranked], np.int64)
    tp_c, fp_c = np.zeros(classes, np.int64), np.zeros(classes, np.int64)
    tp = fp = 0
    iou_sum = 0.0
    for (d_boxes, d_prob), t in zip(detections, truths):      # darknet's counts at conf_thresh, in output order
        t_boxes, t_cls, t_diff = _truth(t)
        matched = set()                           # truths this image's thresholded detections took
        for k in range(len(d_boxes)):
            for c in np.flatnonzero(np.asarray(d_prob[k]) > 0):
                j, iou, difficult = _match(d_boxes[k], t_boxes, t_cls, t_diff, c, iou_thresh)
                if float(d_prob[k][c]) > conf_thresh and not difficult:
                    if j >= 0 and j not in matched:
                        tp += 1
                        tp_c[c] += 1
                        iou_sum += iou
                    else:
                        fp += 1
                        fp_c[c] += 1
                if j >= 0:
                    matched.add(j)
    results = [ClassResult(names[c], r.ap(iou_thresh, 11), r.ap(iou_thresh, 0), r.ap(iou_thresh, 101), r.truths,
                           len(r.prob), int(tp_c[c]), int(fp_c[c])) for c, r in enumerate(ranked)]
    total = int(n_truth.sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / total if total else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    mean = (lambda k: float(np.mean([getattr(r, k) for r in results])) if results else 0.0)
    return MapResult(mean("ap11"), mean("ap"), mean("ap101"), results, conf_thresh, iou_thresh, tp, fp, total - tp,
                     precision, recall, f1, iou_sum / (tp + fp) if tp + fp else 0.0, len(truths),
                     sum(len(r.prob) for r in ranked), total, ranked)
