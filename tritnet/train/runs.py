"""Run folders, shared by the classifier and the detector trainers: every training run leaves its settings, a CSV
log, a smoothed min-loss record and PNG plots a person can read, in a folder no later run overwrites.

    runs/<task>/<name>/            (name, name2, name3, … so earlier runs are never overwritten; one numbering,
                                    ``tritnet_rt.sources.new_run_dir``, for every run and prediction folder)
        args.yaml                  the settings the run was started with (PyYAML: None reads back as null)
        results.csv                one row per epoch (classifier) or iteration (detector), appended
        curves.png / chart.png     loss and accuracy (classifier), loss and mAP (detector)

Everything here is written through ``tritnet.atomic``: a kill leaves the old file or the new one.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import yaml
from tritnet_rt.files import TEXT_LIMIT, read_text
from tritnet_rt.sources import new_run_dir  # noqa: F401  (one numbering for every run folder)

from ..atomic import atomic_open, write_text_atomic

__all__ = ["new_run_dir", "write_args", "read_args", "CsvLog", "MinLoss", "save_figure", "curves_figure",
           "plot_curves", "duration_text"]


def _plain(v):
    """A value PyYAML's safe dumper writes: paths and other objects as text, containers walked."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return str(v)


def write_args(run_dir: Path, args: dict, name: str = "args.yaml") -> Path:
    """The run's settings as YAML (``None`` → ``null``, paths as strings), written atomically."""
    return write_text_atomic(Path(run_dir) / name, yaml.safe_dump(_plain(args), sort_keys=False))


def read_args(path) -> dict:
    return yaml.safe_load(read_text(path, "args.yaml", TEXT_LIMIT)) or {}


class CsvLog:
    """A CSV log: rows are appended to the file (never rewritten), each flushed; ``truncate_after`` (on resume)
    drops the rows past the resumed point, the one time the file is rewritten (atomically). A file whose header
    differs from ``fields`` (an older run's) is rewritten once with the new header, its rows kept."""

    def __init__(self, path: Path, fields: list[str]):
        self.path, self.fields = Path(path), list(fields)
        self._header_ok = False

    def rows(self) -> list[dict]:
        if not self.path.exists():
            return []
        with open(self.path, newline="") as f:
            return list(csv.DictReader(f))

    def _header(self):
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return None
        with open(self.path, newline="") as f:
            return next(csv.reader(f), None)

    def truncate_after(self, value: float, key: str = "epoch"):
        self._rewrite([r for r in self.rows() if float(r[key]) <= value])

    def append(self, row: dict):
        self.extend([row])

    def extend(self, rows: list[dict]):
        if not self._header_ok:                  # once per log: the detector appends a row every iteration
            header = self._header()
            if header is not None and header != self.fields:
                self._rewrite(self.rows())
            elif header is None:
                self._rewrite([])
            self._header_ok = True
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.fields).writerows({k: row.get(k, "") for k in self.fields} for row in rows)
            f.flush()

    def _rewrite(self, rows):
        with atomic_open(self.path, "w") as f:
            w = csv.DictWriter(f, self.fields, extrasaction="ignore")
            w.writeheader()
            w.writerows({k: r.get(k, "") for k in self.fields} for r in rows)


class MinLoss:
    """darknet's smoothed loss (avg = .9·avg + .1·loss, starting at the first loss) and its minimum so far: the
    min-loss weights are saved whenever ``improved`` says the average fell below every earlier one."""

    def __init__(self, avg: float = -1.0, min: float = 1e10):
        self.avg, self.min = float(avg), float(min)

    def update(self, loss: float) -> float:
        self.avg = loss if self.avg < 0 else 0.9 * self.avg + 0.1 * loss
        return self.avg

    def improved(self, eligible: bool = True) -> bool:
        """True (and the minimum moves) when eligible and the average is below the minimum."""
        if eligible and self.avg < self.min:
            self.min = self.avg
            return True
        return False

    def state(self) -> dict:
        return {"avg_loss": self.avg, "min_avg_loss": self.min}


def save_figure(fig, path, dpi: int = 100) -> Path:
    """A matplotlib figure as PNG, written atomically (a viewer never sees half a file); the figure is closed."""
    import matplotlib.pyplot as plt
    path = Path(path)
    try:
        with atomic_open(path, "wb") as f:
            fig.savefig(f, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return path


def duration_text(seconds: float) -> str:
    """3h 05m, 12m 30s, 45s."""
    s = int(round(max(seconds, 0)))
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 60}m {s % 60:02d}s" if s >= 60 else f"{s}s"


def curves_figure(rows: list[dict], title: str = ""):
    """Loss (train and validation) and accuracy (validation top-1, top-5) per epoch, side by side, x ticks at
    whole epochs; the title carries the last epoch's figures."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    ep = [int(r["epoch"]) for r in rows]
    col = lambda k: [float(r[k]) if r.get(k) not in (None, "") else float("nan") for r in rows]  # noqa: E731
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(ep, col("train_loss"), "o-", label="train")
    a.plot(ep, col("valid_loss"), "s-", label="validation")
    a.set_xlabel("epoch"), a.set_ylabel("cross-entropy loss"), a.legend(), a.grid(alpha=0.3)
    b.plot(ep, col("top1"), "o-", label="top-1 (validation)")
    b.plot(ep, col("top5"), "s-", label="top-5 (validation)")
    b.set_xlabel("epoch"), b.set_ylabel("validation accuracy (%)"), b.legend(), b.grid(alpha=0.3)
    for ax in (a, b):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(ep) == 1:
            ax.set_xticks(ep)
    if rows:
        top1 = col("top1")[-1]
        if not math.isnan(top1):
            title = f"{title}  epoch {ep[-1]}: validation top-1 {top1:.2f}%".strip()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_curves(rows: list[dict], path: Path, title: str = ""):
    """``curves_figure`` written to ``path`` (nothing without rows)."""
    if not rows:
        return None
    return save_figure(curves_figure(rows, title), path)
