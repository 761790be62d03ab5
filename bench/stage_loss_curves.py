"""Training-loss curves of direct and staged runs side by side, read from their run folders (issue 17's "why
does staging not help"): the detector trainer's ``results.csv`` of a direct run, or of every stage of a staged
run in stage order, on one iteration axis.

    python bench/stage_loss_curves.py --out bench/results/stage_loss_curves_bccd.json \\
        direct_kt=runs/bench/kt_weights/head1/seed0/direct_kt \\
        staged_kt=runs/bench/kt_weights/staged/seed0/staged_equal_kt

Each NAME=FOLDER is a stage-runner folder (``direct/`` or ``M0/``, ``M1/``, ... inside, each with
``train/results.csv``). The JSON holds, per run, the stage boundaries and the means of the loss, the transfer's
head term, recall and average IoU over windows of ``--window`` iterations; the PNG beside it (``--png``) plots
the windowed loss with the stage boundaries.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

from _meta import run_info

COLUMNS = ("loss", "distill_head", "recall", "avg_iou")


def read_run(folder: Path) -> tuple:
    """(rows of every stage in order, the iterations where stages begin) of one stage-runner folder."""
    stages = sorted((p for p in folder.iterdir() if p.is_dir() and (p / "train" / "results.csv").is_file()),
                    key=lambda p: (p.name != "direct", len(p.name), p.name))
    if not stages:
        raise SystemExit(f"{folder}: no stage folder with train/results.csv")
    rows, starts = [], []
    for stage in stages:
        starts.append(len(rows))
        with open(stage / "train" / "results.csv", newline="") as f:
            rows += [{k: float(r[k] or 0) for k in COLUMNS} for r in csv.DictReader(f)]
    return rows, starts


def windows(rows: list, width: int) -> list:
    out = []
    for lo in range(0, len(rows) - width + 1, width):
        part = rows[lo:lo + width]
        out.append({"from": lo + 1, "to": lo + width,
                    **{k: sum(r[k] for r in part) / width for k in COLUMNS}})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="NAME=FOLDER")
    ap.add_argument("--window", type=int, default=250)
    ap.add_argument("--out", required=True)
    ap.add_argument("--png", default=None, help="default: --out with .png")
    a = ap.parse_args()
    result = {**run_info(), "window": a.window, "runs": {}}
    for spec in a.runs:
        name, _, folder = spec.partition("=")
        rows, starts = read_run(Path(folder))
        result["runs"][name] = {"folder": folder, "iterations": len(rows), "stage_starts": starts,
                                "windows": windows(rows, a.window)}
        last = result["runs"][name]["windows"][-1]
        print(f"{name:24s} {len(rows)} it, stages at {starts}: last {a.window} it loss {last['loss']:.2f}, "
              f"head {last['distill_head']:.3f}, recall {last['recall']:.3f}, avg IoU {last['avg_iou']:.3f}")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    import json
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(out)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(11, 5))
    colors = plt.cm.tab20.colors                     # distinct colours for up to 20 runs
    for k, (name, run) in enumerate(result["runs"].items()):
        x = [(w["from"] + w["to"]) / 2 for w in run["windows"]]
        line, = ax.plot(x, [w["loss"] for w in run["windows"]], marker="o", ms=3, label=name,
                        color=colors[2 * k % 20 + (2 * k // 20) % 2])
        for s in run["stage_starts"][1:]:
            ax.axvline(s, color=line.get_color(), ls=":", lw=1)
    ax.set_xlabel("iteration (dotted: a stage begins)")
    ax.set_ylabel(f"training loss, mean of {a.window} iterations")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, .5), fontsize=8)
    ax.grid(alpha=.3)
    fig.tight_layout()
    png = Path(a.png) if a.png else out.with_suffix(".png")
    fig.savefig(png, dpi=90)
    print(f"wrote {out} and {png}")


if __name__ == "__main__":
    main()
