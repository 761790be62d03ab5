"""Anchors from the training boxes, as AlexeyAB's ``darknet detector calc_anchors DATA -num_of_clusters N -width W
-height H``.

Every training box's width and height, relative to its image, is scaled to the network size (w·W, h·H). The boxes
are clustered with k-means whose distance is 1 − IoU of two boxes placed on the same centre
(IoU = min(w)·min(h) / (w₁h₁ + w₂h₂ − min(w)·min(h))), as darknet's ``do_kmeans``:

* start: N distinct boxes drawn at random (darknet prints "k-means++" but calls ``random_centers``);
* assign each box to the centre it is closest to (the first on a tie); stop when no box changes centre (every
  box starts assigned to centre 0, so a start where every box is closest to centre 0 stops at once, as in
  darknet), at most 1000 rounds;
* move each centre to the mean width and height of its boxes; a centre that loses all its boxes stays.

Darknet runs this once from a ``time(0)`` seed, so two runs can differ. tritnet seeds it (``seed``) and keeps the
best of ``restarts`` runs by average IoU (``restarts=1`` is darknet's single run). The anchors are sorted by
area, the average IoU is the mean over the boxes of the IoU with their closest anchor, in percent, and
``anchors.txt`` holds darknet's line: ``%3.0f,%3.0f`` pairs joined by ", " when the width is above 32, else
``%2.4f,%2.4f`` (a [region] layer's anchors, in grid cells, from ``-width 13 -height 13``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

__all__ = ["AnchorResult", "kmeans_iou", "format_anchors", "calc_anchors", "box_sizes"]


def _iou(boxes: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """(n, k) IoU of boxes (n, 2) and centres (k, 2), both as w, h on a shared centre."""
    inter = np.minimum(boxes[:, None, 0], centers[None, :, 0]) * np.minimum(boxes[:, None, 1], centers[None, :, 1])
    union = boxes[:, None, 0] * boxes[:, None, 1] + centers[None, :, 0] * centers[None, :, 1] - inter
    return inter / union


def _one_run(boxes: np.ndarray, k: int, rng: np.random.Generator, max_iter: int) -> tuple:
    centers = boxes[rng.permutation(len(boxes))[:k]].copy()
    assign = np.zeros(len(boxes), np.int64)

    def maximize():
        for j in range(k):
            members = boxes[assign == j]
            if len(members):
                new = members.mean(axis=0)
                centers[j] = np.where(new == 0, centers[j], new)
    if k == 1:
        maximize()
    rounds = 0
    while rounds < max_iter:
        closest = np.argmin(1 - _iou(boxes, centers), axis=1)
        if np.array_equal(closest, assign):
            break
        assign = closest
        maximize()
        rounds += 1
    return centers, rounds


def _avg_iou(boxes: np.ndarray, centers: np.ndarray) -> float:
    return float(_iou(boxes, centers).max(axis=1).mean())


def kmeans_iou(boxes, k: int, seed: int = 0, restarts: int = 10, max_iter: int = 1000) -> tuple:
    """(centres (k, 2) sorted by area, average IoU as a fraction, rounds of the kept run) of darknet's k-means on
    1 − IoU over ``boxes`` (n, 2) widths and heights; the best of ``restarts`` seeded runs."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 2)
    if k < 1:
        raise ValueError(f"num_of_clusters must be >= 1, got {k}")
    if len(boxes) < k:
        raise ValueError(f"{len(boxes)} boxes, fewer than the {k} clusters asked for")
    if not np.all(boxes > 0):
        raise ValueError("every box needs a width and height > 0")
    rng = np.random.default_rng(seed)
    best = None
    for _ in range(restarts):
        centers, rounds = _one_run(boxes, k, rng, max_iter)
        score = _avg_iou(boxes, centers)
        if best is None or score > best[1]:
            best = (centers, score, rounds)
    centers, score, rounds = best
    order = np.argsort(centers[:, 0] * centers[:, 1], kind="stable")
    return centers[order], score, rounds


def format_anchors(centers, width: int) -> str:
    """Darknet's anchors line (what ``anchors.txt`` holds)."""
    fmt = "{:3.0f},{:3.0f}" if width > 32 else "{:2.4f},{:2.4f}"
    return ", ".join(fmt.format(float(np.float32(w)), float(np.float32(h))) for w, h in centers)


@dataclass
class AnchorResult:
    anchors: np.ndarray                 # (k, 2) w, h in network pixels (or grid cells), by area
    avg_iou: float                      # fraction
    rounds: int
    boxes: int
    images: int
    counters_per_class: list = field(default_factory=list)
    line: str = ""                      # darknet's anchors line
    files: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"anchors": [[float(w), float(h)] for w, h in self.anchors], "anchors_line": self.line,
                "avg_iou_percent": 100 * self.avg_iou, "iterations": self.rounds, "boxes": self.boxes,
                "images": self.images, "counters_per_class": self.counters_per_class, "files": self.files}


def box_sizes(data, split: str = "train") -> tuple:
    """(wh (n, 2) relative to the image, classes (n,), images, class count) of a .data file's ``split`` boxes
    (difficult boxes left out, as darknet's label files leave them out)."""
    from .data import open_data
    d = open_data(data)
    records = [r.trainable() for r in d.records(split)]
    wh = np.concatenate([r.boxes[:, 2:4] for r in records]) if records else np.zeros((0, 2), np.float32)
    cls = np.concatenate([r.classes for r in records]) if records else np.zeros(0, np.int64)
    return wh, cls, len(records), d.classes


def calc_anchors(data, num_of_clusters: int, width: int, height: int, *, seed: int = 0, restarts: int = 10,
                 out: Optional[str] = "anchors.txt", show: Optional[str] = None) -> AnchorResult:
    """Darknet's ``calc_anchors``: the anchors, avg IoU and per-class counts of ``data``'s training boxes at
    ``width`` x ``height``; writes ``out`` (and ``counters_per_class.txt`` beside it) unless ``out`` is None,
    and with ``show`` a scatter plot of the boxes and anchors to that PNG."""
    wh, cls, images, classes = box_sizes(data)
    if len(wh) == 0:
        raise ValueError(f"{data}: no training boxes")
    boxes = wh.astype(np.float64) * np.array([width, height], np.float64)
    centers, score, rounds = kmeans_iou(boxes, num_of_clusters, seed, restarts)
    counts = np.bincount(cls, minlength=classes).tolist()
    r = AnchorResult(centers, score, rounds, len(boxes), images, counts, format_anchors(centers, width))
    if out:
        from ..atomic import write_text_atomic
        out = Path(out)
        write_text_atomic(out, r.line)
        counters = out.with_name("counters_per_class.txt")
        write_text_atomic(counters, ", ".join(map(str, counts)))
        r.files = {"anchors": str(out), "counters_per_class": str(counters)}
    if show:
        _plot(boxes, centers, width, height, score, show)
        r.files["plot"] = str(show)
    return r


def _plot(boxes, centers, width, height, score, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    assign = np.argmax(_iou(boxes, centers), axis=1)
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.scatter(boxes[:, 0], boxes[:, 1], c=assign, s=6, cmap="tab10", alpha=.6, label="training boxes")
    ax.scatter(centers[:, 0], centers[:, 1], marker="x", s=120, c="black", label="anchors")
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_xlabel(f"box width (network pixels of {width})")
    ax.set_ylabel(f"box height (network pixels of {height})")
    ax.set_title(f"{len(centers)} anchors, avg IoU {100 * score:.2f}%")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
