"""Run folders: every training run leaves weights, a CSV log, its settings and PNG plots a person can read.

    runs/<task>/<name>/            (name, name2, name3, … so earlier runs are never overwritten)
        args.yaml                  the settings the run was started with
        weights/last.pt, best.pt   checkpoints, written atomically
        results.csv                one row per epoch
        curves.png                 loss and accuracy curves
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

import yaml
from tritnet_rt.sources import new_run_dir  # noqa: F401  (one numbering for every run folder)


def write_args(run_dir: Path, args: dict):
    tmp = run_dir / "args.yaml.tmp"
    tmp.write_text(yaml.safe_dump(args, sort_keys=False))
    os.replace(tmp, run_dir / "args.yaml")


class CsvLog:
    """Append-only CSV, one row per epoch; on resume, rows past the resumed epoch are dropped."""

    def __init__(self, path: Path, fields: list[str]):
        self.path, self.fields = Path(path), fields

    def rows(self) -> list[dict]:
        if not self.path.exists():
            return []
        with open(self.path, newline="") as f:
            return list(csv.DictReader(f))

    def truncate_after(self, epoch: int):
        keep = [r for r in self.rows() if int(r["epoch"]) <= epoch]
        self._write(keep)

    def append(self, row: dict):
        self.extend([row])

    def extend(self, rows: list[dict]):
        self._write(self.rows() + [{k: row.get(k, "") for k in self.fields} for row in rows])

    def _write(self, rows):
        tmp = self.path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, self.fields)
            w.writeheader()
            w.writerows(rows)
        os.replace(tmp, self.path)


def plot_curves(rows: list[dict], path: Path, title: str = ""):
    """Loss (train and valid) and accuracy (top-1, top-5) per epoch, side by side."""
    if not rows:
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [int(r["epoch"]) for r in rows]
    col = lambda k: [float(r[k]) if r.get(k) not in (None, "") else float("nan") for r in rows]  # noqa: E731
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(ep, col("train_loss"), "o-", label="train")
    a.plot(ep, col("valid_loss"), "s-", label="valid")
    a.set_xlabel("epoch"), a.set_ylabel("cross-entropy loss"), a.legend(), a.grid(alpha=0.3)
    b.plot(ep, col("top1"), "o-", label="top-1")
    b.plot(ep, col("top5"), "s-", label="top-5")
    b.set_xlabel("epoch"), b.set_ylabel("accuracy (%)"), b.legend(), b.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
