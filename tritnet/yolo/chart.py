"""The training chart (AlexeyAB's chart.png): loss and its running average against iterations on linear axes,
mAP@0.5 in percent on its own axis wherever it was measured, and in the title the current iteration, loss,
mAP and the time left. ``chart_figure`` returns the figure (tests read its texts); ``plot_chart`` writes it
atomically (``tritnet.train.runs.save_figure``)."""
from __future__ import annotations

import math

from ..train.runs import duration_text, save_figure

__all__ = ["chart_figure", "plot_chart", "chart_title"]


def _col(rows, key):
    xs, ys = [], []
    for r in rows:
        if r.get(key) not in (None, ""):
            xs.append(int(r["iteration"]))
            ys.append(float(r[key]))
    return xs, ys


def seconds_left(rows: list, max_batches: int | None, window: int = 50) -> float | None:
    """The mean time of the last ``window`` iterations times the iterations left."""
    if not rows or not max_batches:
        return None
    recent = [float(r["seconds"]) for r in rows[-window:] if r.get("seconds") not in (None, "")]
    if not recent:
        return None
    return max(max_batches - int(rows[-1]["iteration"]), 0) * sum(recent) / len(recent)


def chart_title(rows: list, title: str = "", max_batches: int | None = None) -> str:
    """``title`` and a second line: iteration i/max, loss and avg loss, last and best mAP, the time left."""
    last = rows[-1]
    parts = [f"iteration {last['iteration']}" + (f"/{max_batches}" if max_batches else "")]
    if last.get("loss") not in (None, ""):
        parts.append(f"loss {float(last['loss']):.3f} (avg {float(last['avg_loss']):.3f})")
    _, maps = _col(rows, "map")
    if maps:
        parts.append(f"mAP@0.5 {maps[-1]:.1f}% (best {max(maps):.1f}%)")          # the log holds percent
    left = seconds_left(rows, max_batches)
    if left is not None:
        parts.append("done" if left == 0 else f"{duration_text(left)} left")
    return (title + "\n" if title else "") + ", ".join(parts)


def chart_figure(rows: list, title: str = "", max_batches: int | None = None):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(8, 5))
    xs, loss = _col(rows, "loss")
    ax.plot(xs, loss, color="#9bb7d4", lw=0.8, label="loss")
    ax.plot(*_col(rows, "avg_loss"), color="#1f4e8c", lw=1.6, label="avg loss")
    ax.set_xlabel("iteration")
    ax.set_ylabel("training loss")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    finite = sorted(v for v in loss if math.isfinite(v))
    if finite:
        # linear axis: the first iterations' loss (often 10x the rest) would flatten the curve; the top is the
        # 95th percentile of the loss, so the running average and the current values stay readable
        top = finite[min(len(finite) - 1, int(0.95 * len(finite)))]
        ax.set_ylim(min(0.0, finite[0]), 1.1 * top if top > 0 else 1.0)
    if max_batches:
        ax.set_xlim(0, max_batches)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    mx, my = _col(rows, "map")
    if mx:
        ax2 = ax.twinx()
        pct = my                                                           # percent in the log
        ax2.plot(mx, pct, "o-", color="#c0392b", label="mAP@0.5 (%, valid set)")
        ax2.set_ylabel("mAP@0.5 on the valid set (%)", color="#c0392b")
        ax2.set_ylim(0, min(100.0, max(5.0, 10 * math.ceil(1.15 * max(pct) / 10))))
        for m, p in zip(mx[-1:], pct[-1:]):
            ax2.annotate(f"{p:.1f}%", (m, p), textcoords="offset points", xytext=(4, 4), color="#c0392b")
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, loc="upper right")
    ax.set_title(chart_title(rows, title, max_batches) if rows else title)
    fig.tight_layout()
    return fig


def plot_chart(rows: list, path, title: str = "", max_batches: int | None = None) -> None:
    if not rows:
        return
    save_figure(chart_figure(rows, title, max_batches), path, dpi=90)
