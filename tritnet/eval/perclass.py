"""Per-class detection results beyond darknet's ``map``: the table (images, instances, P, R, AP50, AP50-95),
the confusion matrix, and the precision-recall and F1-confidence curves, with figures built by functions that
return them (``*_figure``) and written by ``save_plots``.

Ranking and matching are darknet's (``tritnet.eval.detection``): per class, detections ranked by probability,
each matched to its best-overlapping truth of that class, a hit when IoU > t and no higher-ranked detection
took the truth; difficult truths are neither counted nor scored. AP is the area under the precision envelope at
every recall (AlexeyAB's default, the ``map`` of ``MapResult``); AP50-95 is its mean over IoU .50, .55, …, .95
(COCO's thresholds). P and R are darknet's counts at ``conf_thresh`` (``ClassResult.tp``/``fp``).

Numbers are fractions here; ``format_table`` prints percent.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from tritnet_rt.detect import box_iou

from .detection import IOU_THRESHOLDS, MapResult, Ranked, _truth, rank_detections

__all__ = ["IOU_THRESHOLDS", "Ranked", "rank_detections", "class_table", "format_table", "confusion_matrix",
           "confusion_figure", "pr_figure", "f1_figure", "save_plots", "TableRow"]

@dataclass
class TableRow:
    name: str
    images: int
    instances: int
    precision: float
    recall: float
    ap50: float
    ap50_95: float

    def to_dict(self, percent: bool = False) -> dict:
        d = asdict(self)
        if percent:
            for k in ("precision", "recall", "ap50", "ap50_95"):
                d[k] = 100 * d[k]
        return d


def class_table(ranked: list, result: MapResult, images: int) -> list:
    """The rows of the table: "all" first (every image, every instance, darknet's overall P and R, the mean APs),
    then one per class. ``result``: ``evaluate_map`` at IoU .5 on the same detections (its TP/FP counts)."""
    rows = []
    for r, c in zip(ranked, result.classes):
        p = c.tp / (c.tp + c.fp) if c.tp + c.fp else 0.0
        rows.append(TableRow(c.name, r.images, r.truths, p, c.tp / r.truths if r.truths else 0.0, r.ap(0.5),
                             float(np.mean([r.ap(t) for t in IOU_THRESHOLDS]))))
    mean = lambda k: float(np.mean([getattr(x, k) for x in rows])) if rows else 0.0  # noqa: E731
    return [TableRow("all", images, sum(x.instances for x in rows), result.precision, result.recall, mean("ap50"),
                     mean("ap50_95"))] + rows


def format_table(rows: list) -> str:
    """Ultralytics' layout, in percent."""
    w = max([len("class")] + [len(r.name) for r in rows])
    head = f"{'class':>{w}} {'images':>7} {'instances':>9} {'P':>7} {'R':>7} {'AP50':>7} {'AP50-95':>8}"
    lines = [head]
    for r in rows:
        lines.append(f"{r.name:>{w}} {r.images:>7d} {r.instances:>9d} {100 * r.precision:>6.1f}% "
                     f"{100 * r.recall:>6.1f}% {100 * r.ap50:>6.1f}% {100 * r.ap50_95:>7.1f}%")
    return "\n".join(lines)


def confusion_matrix(detections: Sequence, truths: Sequence, classes: int, conf_thresh: float = 0.25,
                     iou_thresh: float = 0.5) -> np.ndarray:
    """(classes + 1) x (classes + 1) counts, rows predicted, columns true, the last row and column background.
    A detection counts with its most probable class when that probability > ``conf_thresh``; detections and
    truths pair up greedily by IoU (> ``iou_thresh``, highest first, each once) whatever their classes;
    unpaired truths are missed (background row), unpaired detections false alarms (background column).
    Difficult truths and the detections paired with them are left out."""
    m = np.zeros((classes + 1, classes + 1), np.int64)
    for (d_boxes, d_prob), t in zip(detections, truths):
        t_boxes, t_cls, t_diff = _truth(t)
        d_prob = np.asarray(d_prob).reshape(len(d_boxes), classes)
        keep = np.flatnonzero(d_prob.max(1, initial=0) > conf_thresh) if len(d_boxes) else np.zeros(0, int)
        d_cls = d_prob[keep].argmax(1) if keep.size else np.zeros(0, int)
        pairs = []
        for a, k in enumerate(keep):
            ious = box_iou(d_boxes[k], t_boxes) if len(t_boxes) else np.zeros(0)
            pairs += [(float(v), a, j) for j, v in enumerate(ious) if v > np.float32(iou_thresh)]
        used_d, used_t = set(), set()
        for _, a, j in sorted(pairs, key=lambda x: -x[0]):
            if a in used_d or j in used_t:
                continue
            used_d.add(a), used_t.add(j)
            if not t_diff[j]:
                m[d_cls[a], t_cls[j]] += 1
        for j in range(len(t_cls)):
            if j not in used_t and not t_diff[j]:
                m[classes, t_cls[j]] += 1
        for a in range(len(keep)):
            if a not in used_d:
                m[d_cls[a], classes] += 1
    return m


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def confusion_figure(matrix: np.ndarray, names: Sequence[str], conf_thresh: float = 0.25, iou_thresh: float = 0.5):
    plt = _plt()
    labels = list(names) + ["background"]
    n = len(labels)
    fig, ax = plt.subplots(figsize=(2.5 + 0.7 * n, 2 + 0.6 * n))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("true class")
    ax.set_ylabel("predicted class")
    top = matrix.max() if matrix.size else 0
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center",
                    color="white" if top and matrix[i, j] > top / 2 else "black")
    ax.set_title(f"confusion matrix (confidence > {conf_thresh:g}, IoU > {iou_thresh:g})")
    fig.tight_layout()
    return fig


def pr_figure(ranked: list, names: Sequence[str], iou_thresh: float = 0.5):
    """Precision against recall per class; the legend gives each class's AP and the title the mean."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 5.5))
    aps = []
    for r, name in zip(ranked, names):
        _, precision, recall = r.curve(iou_thresh)
        aps.append(r.ap(iou_thresh))
        ax.plot(np.concatenate([[0.0], recall]), np.concatenate([[1.0], precision]), lw=1.2,
                label=f"{name} {100 * aps[-1]:.1f}%")
    mean = float(np.mean(aps)) if aps else 0.0
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1), ax.set_ylim(0, 1.02), ax.grid(alpha=0.3)
    ax.legend(loc="lower left", title=f"AP@{iou_thresh:g}")
    ax.set_title(f"precision-recall (IoU > {iou_thresh:g}): mAP@{iou_thresh:g} {100 * mean:.1f}%")
    fig.tight_layout()
    return fig


def f1_curves(ranked: list, iou_thresh: float = 0.5, grid=None):
    """(confidences, [F1 per class]) with each class's F1 at every confidence of the grid: the scores of the
    detections above it."""
    grid = np.linspace(0, 1, 101) if grid is None else np.asarray(grid)
    out = []
    for r in ranked:
        prob, precision, recall = r.curve(iou_thresh)
        f1 = np.zeros(len(grid))
        for g, conf in enumerate(grid):
            n = int(np.sum(prob > conf))               # ranked best first: the first n are above conf
            if n:
                p, rc = precision[n - 1], recall[n - 1]
                f1[g] = 2 * p * rc / (p + rc) if p + rc else 0.0
        out.append(f1)
    return grid, out


def f1_figure(ranked: list, names: Sequence[str], iou_thresh: float = 0.5):
    """F1 against the confidence threshold per class and their mean; the title names the best threshold."""
    plt = _plt()
    grid, curves = f1_curves(ranked, iou_thresh)
    fig, ax = plt.subplots(figsize=(7, 5.5))
    for f1, name in zip(curves, names):
        ax.plot(grid, f1, lw=1.0, label=name)
    mean = np.mean(curves, 0) if curves else np.zeros(len(grid))
    best = int(np.argmax(mean))
    ax.plot(grid, mean, lw=2.5, color="#1f4e8c", label=f"all classes {mean[best]:.2f} at {grid[best]:.2f}")
    ax.set_xlabel("confidence threshold")
    ax.set_ylabel("F1")
    ax.set_xlim(0, 1), ax.set_ylim(0, 1.02), ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    ax.set_title(f"F1-confidence (IoU > {iou_thresh:g}): best F1 {mean[best]:.2f} at confidence {grid[best]:.2f}")
    fig.tight_layout()
    return fig


def save_plots(folder, ranked: list, matrix: np.ndarray, names: Sequence[str], conf_thresh: float = 0.25,
               iou_thresh: float = 0.5) -> dict:
    """confusion_matrix.png, PR_curve.png and F1_curve.png in ``folder``: {what: path}."""
    from pathlib import Path

    from ..train.runs import save_figure
    folder = Path(folder)
    return {"confusion_matrix": str(save_figure(confusion_figure(matrix, names, conf_thresh, iou_thresh),
                                                folder / "confusion_matrix.png")),
            "pr_curve": str(save_figure(pr_figure(ranked, names, iou_thresh), folder / "PR_curve.png")),
            "f1_curve": str(save_figure(f1_figure(ranked, names, iou_thresh), folder / "F1_curve.png"))}
