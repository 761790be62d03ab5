"""Benchmark: staged vs direct TWN ternarization of ttt5_224_160 on BCCD (blood cells, 3 classes).

1. float: ttt5_224_160 (classes=3) trained float on BCCD trainval from darknet_ttt's 7-layer backbone
   ``ttt5_pre_141_conv7.weights``, as a one-stage plan with no ternary layer (``--float-iters``).
2. staged: the automatic 4-stage plan from the float weights (``--stage-iters`` iterations a stage), ending
   with every conv ternary. Stages chain on their last weights (``--chain``): the seeds' min-loss rule
   needs long stages; on 35-iteration stages the smoothed loss was lowest after 4 to 7 iterations, so
   every stage passed on barely trained weights.
3. direct: every conv ternary at once, trained for the same total (4 x ``--stage-iters``) iterations.
``--only float`` stops after step 1; a later run skips it (the runner remembers finished stages).

Scores: mAP@0.5 (VOC2007 11-point) and average IoU on BCCD's test split (72 images). Rerunning the script
skips every finished stage (the runner resumes), so a long benchmark can be run in pieces.

    python bench/staged_bccd.py --float-iters 150 --stage-iters 35 --out runs/bench/staged_bccd

``--float-weights W`` starts from a float detector trained elsewhere (bench/detector_bccd.py's) instead of
step 1; ``--stage-iters 600,1200,1800,2400`` gives the stages different budgets; ``--per-channel`` uses one
TWN scale per output channel in every stage and in the direct run.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tritnet.stage import auto_plan, plan_from_dict, run_plan

SHARED = Path("../shared/data")


def bccd_data(out: Path) -> Path:
    data = out / "data" / "bccd.data"
    if not data.is_file():
        from tritnet.yolo import voc_label
        voc_label([SHARED / "bccd"], out / "data", ["trainval"], ["test"], ["RBC", "WBC", "Platelets"], "bccd")
    return data


def schedule(iters: int, batch: int, subdivisions: int, lr: float, burn_in: int) -> dict:
    """darknet [net] keys: steps ×0.1 at 80% and 90%, as the seeds' runs."""
    return {"batch": batch, "subdivisions": subdivisions, "learning_rate": lr, "burn_in": burn_in,
            "max_batches": iters, "policy": "steps", "steps": [max(1, int(.8 * iters)), max(2, int(.9 * iters))],
            "scales": [.1, .1]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cfg", default=str(SHARED / "darknet/cfg/ttt5_224_160.cfg"))
    ap.add_argument("--backbone", default=str(SHARED / "darknet/weights/ttt5_pre_141_conv7.weights"))
    ap.add_argument("--float-iters", type=int, default=150)
    ap.add_argument("--float-lr", type=float, default=0.002)
    ap.add_argument("--stage-iters", default="35", help="iterations a stage, or one number per stage")
    ap.add_argument("--float-weights", default=None, help="skip step 1: the float detector to start from")
    ap.add_argument("--per-channel", action="store_true")
    ap.add_argument("--stage-lr", type=float, default=0.001)
    ap.add_argument("--chain", choices=["minloss", "best", "last"], default="last")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--subdivisions", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--only", choices=["float", "all"], default="all",
                    help="float: only train the float detector (a later run reuses it)")
    ap.add_argument("--out", default="runs/bench/staged_bccd")
    a = ap.parse_args()
    out = Path(a.out).resolve()
    data = bccd_data(out)
    times = {}

    if a.float_weights:
        float_weights, fl = str(Path(a.float_weights).resolve()), None
    else:
        t = time.time()
        float_plan = plan_from_dict({
            "name": "ttt5-bccd", "model": a.cfg, "classes": 3, "data": str(data), "weights": a.backbone,
            "chain": "last", "stages": [{"name": "float", "layers": [], "train": schedule(
                a.float_iters, a.batch, a.subdivisions, a.float_lr, max(1, a.float_iters // 10))}]})
        fl = run_plan(float_plan, out / "float", workers=a.workers, progress=False)   # skipped when finished
        times["float"] = time.time() - t
        float_weights = str(out / "float" / "float" / "ttt5-bccd_float.weights")
        if a.only == "float":
            return

    iters = [int(v) for v in a.stage_iters.split(",")]
    iters = iters * 4 if len(iters) == 1 else iters
    plan = auto_plan(a.cfg, stages=len(iters), classes=3, data=str(data), weights=float_weights, chain=a.chain,
                     train=schedule(iters[0], a.batch, a.subdivisions, a.stage_lr, max(1, iters[0] // 10)),
                     name="ttt5-bccd")
    for stage, n in zip(plan.stages, iters):
        stage.train = {**schedule(n, a.batch, a.subdivisions, a.stage_lr, max(1, n // 10)),
                       **({"per_channel": True} if a.per_channel else {})}
    t = time.time()
    staged = run_plan(plan, out / "staged", workers=a.workers, progress=False)
    times["staged"] = time.time() - t
    t = time.time()
    direct = run_plan(plan, out / "direct", direct=True, workers=a.workers, progress=False)
    times["direct"] = time.time() - t

    keep = ("stage", "ternary_layers", "map", "avg_iou", "packed_2bit_bytes", "train_seconds", "budget")
    f = fl["rows"][-1] if fl else staged["rows"][0]          # the float start, scored by the staged run
    s, d = staged["rows"][-1], direct["rows"][-1]
    summary = {"budget": {"float_iterations": a.float_iters if fl else a.float_weights, "stage_iterations": iters,
                          "per_channel": a.per_channel,
                          "direct_iterations": d["budget"], "batch": a.batch, "subdivisions": a.subdivisions,
                          "float_lr": a.float_lr, "stage_lr": a.stage_lr, "chain": a.chain,
                          "train_images": "BCCD trainval (292)",
                          "test_images": "BCCD test (72)"},
               "float": {k: f[k] for k in keep}, "staged": [{k: r[k] for k in keep} for r in staged["rows"][1:]],
               "direct": {k: d[k] for k in keep}, "staged_minus_float_map": s["map"] - f["map"],
               "staged_minus_direct_map": s["map"] - d["map"], "wall_seconds": times}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
