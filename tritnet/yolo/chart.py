"""The training chart (AlexeyAB's chart.png): loss and its running average against iterations, and mAP@0.5
on a second axis wherever it was measured. Written atomically, so a viewer never sees half a PNG."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["plot_chart"]


def _col(rows, key):
    xs, ys = [], []
    for r in rows:
        if r.get(key) not in (None, ""):
            xs.append(int(r["iteration"]))
            ys.append(float(r[key]))
    return xs, ys


def plot_chart(rows: list, path, title: str = "", max_batches: int | None = None) -> None:
    if not rows:
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    ax.plot(*_col(rows, "loss"), color="#9bb7d4", lw=0.8, label="loss")
    ax.plot(*_col(rows, "avg_loss"), color="#1f4e8c", lw=1.6, label="avg loss")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    if max_batches:
        ax.set_xlim(0, max_batches)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    xs, ys = _col(rows, "map")
    if xs:
        ax2 = ax.twinx()
        ax2.plot(xs, [100 * y for y in ys], "o-", color="#c0392b", label="mAP@0.5 (%)")
        ax2.set_ylabel("mAP@0.5 (%)")
        ax2.set_ylim(0, 100)
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, loc="upper right")
    ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, path)
