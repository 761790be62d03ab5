"""Which layer's ternarization costs most: ttt5_224_160 on BCCD, one conv ternary at a time (issue 17).

Every row starts from the same float detector, makes one conv ternary (TWN, ``--per-channel``), re-estimates
the batch-norm statistics from that layer on, trains ``--iters`` iterations (``--iters 1``: the cost before any
training), and scores mAP@0.5 (VOC2007 11-point) on BCCD's 72 test images, against the float start's score. The
same stage runner as bench/staged_bccd.py (one one-stage plan a row), so its numbers read beside section 10's.
The control row (``--control``, or ``--layers none`` alone) makes no layer ternary: what the same training alone
moves the score by.

    python bench/ablation_bccd.py --float-weights runs/bench/float_start/ttt5_bccd_float_4000.weights \\
        --iters 1,300 --per-channel --seeds 0 --control
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from _meta import mean_std, run_info, write_results
from staged_bccd import SHARED, bccd_data, log_seconds, schedule
from tritnet.darknet import parse_cfg
from tritnet.stage import Plan, Stage, run_plan


def conv_layers(cfg_path, classes: int) -> list:
    """(index, description) of every convolutional layer of the cfg set to ``classes``, in order."""
    from tritnet.yolo import set_classes
    cfg = parse_cfg(cfg_path)
    set_classes(cfg, classes)
    out = []
    for i, s in enumerate(cfg.layers):
        if s.type == "convolutional":
            out.append((i, f"{i} conv {s.param('filters')} {s.param('size')}x{s.param('size')}/{s.param('stride')}"))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cfg", default=str(SHARED / "darknet/cfg/ttt5_224_160.cfg"))
    ap.add_argument("--float-weights", required=True, help="the float detector every row starts from")
    ap.add_argument("--iters", default="1,300", help="comma-separated budgets, each a row per layer")
    ap.add_argument("--lr", type=float, default=0.001)
    ap.add_argument("--per-channel", action="store_true")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--subdivisions", type=int, default=2)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--layers", default=None,
                    help="comma-separated conv indices, or none (the control: no layer ternary); default every conv")
    ap.add_argument("--control", action="store_true", help="also the control row (--layers none alone)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--runs", default="runs/bench/ablation_bccd")
    ap.add_argument("--out", default="bench/results/ablation_bccd.json")
    a = ap.parse_args()
    runs = Path(a.runs).resolve()
    data = bccd_data(runs)
    weights = str(Path(a.float_weights).resolve())
    convs = conv_layers(a.cfg, 3)
    if a.layers == "none":
        convs = [(None, "no layer ternary (control)")]
    elif a.layers:
        keep = {int(v) for v in a.layers.split(",")}
        convs = [c for c in convs if c[0] in keep]
    if a.control and a.layers != "none":
        convs = [(None, "no layer ternary (control)")] + convs
    budgets = [int(v) for v in a.iters.split(",")]
    seeds = [int(v) for v in a.seeds.split(",")]
    quiet = dict(workers=a.workers, progress=False, echo=lambda s: None)
    results, start = {}, None
    for iters in budgets:
        train = {**schedule(iters, a.batch, a.subdivisions, a.lr, max(1, min(50, iters // 6))),
                 **({"per_channel": True} if a.per_channel else {})}
        for index, name in convs:
            row = f"{name}, {iters} it"
            for seed in seeds:
                plan = Plan(name="ttt5-bccd", model=a.cfg, classes=3, data=str(data), weights=weights, chain="last",
                            train=train, stages=[Stage(name=f"L{index}", layers=[] if index is None else [index])])
                t = time.time()
                folder = runs / f"seed{seed}" / f"iters{iters}" / f"L{index}"
                r = run_plan(plan, folder, overrides={"seed": seed}, **quiet)
                start = start or (r["rows"][0] if r["rows"][0]["stage"].startswith("start") else None)
                last = r["rows"][-1]
                results.setdefault(row, []).append({"seed": seed, "layer": index, "iterations": iters,
                                                    "map": last["map"], "avg_iou": last["avg_iou"],
                                                    "wall_seconds": time.time() - t, **log_seconds(folder)})
                print(row, f"seed {seed}: mAP@0.5 {last['map']:.2f}", flush=True)
    summary = {k: {"map": mean_std([x["map"] for x in v]), "avg_iou": mean_std([x["avg_iou"] for x in v]),
                   "train_seconds": mean_std([x["train_seconds"] for x in v]),
                   "map_below_float": (start["map"] - mean_std([x["map"] for x in v])["mean"]) if start else None}
               for k, v in results.items()}
    out = {**run_info(), "benchmark": "BCCD ttt5_224_160: one conv ternary at a time from the float detector",
           "budget": {"iterations": budgets, "lr": a.lr, "batch": a.batch, "subdivisions": a.subdivisions,
                      "per_channel": a.per_channel, "seeds": seeds, "float_weights": weights,
                      "bn_recalibrate": "the stage runner's default", "test_images": "BCCD test (72)"},
           "start": {k: start[k] for k in ("map", "avg_iou")} if start else None,
           "summary": summary, "runs": results}
    write_results(a.out, out, "map", "mAP@0.5", ("avg_iou", "avg IoU"), "iteration")


if __name__ == "__main__":
    main()
