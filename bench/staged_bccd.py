"""Benchmark: staged vs direct ternarization of ttt5_224_160 on BCCD (blood cells, 3 classes), with and without
knowledge transfer from the float detector, at one budget (issues 5 and 17).

Start: a float ttt5_224_160 (classes=3) trained on BCCD trainval, either given (``--float-weights``, e.g.
bench/detector_bccd.py's) or trained here first from darknet_ttt's 7-layer backbone (``--float-iters``, a
one-stage plan with no ternary layer). Every other row starts from it and ends with all 8 convs ternary (TWN;
``--per-channel``: one scale per output channel), ``--iters`` iterations being the budget B:

    direct            every conv ternary at once, B iterations
    direct_kt         the same with the float detector as teacher (head outputs; --distill-feature adds mimicking)
    staged_equal      the automatic 4-stage plan, B split equally over the stages (the same total cost)
    staged_seeds      the seeds' protocol: every stage B iterations (four times the cost)
    staged_equal_kt   the equal split with the float start as every stage's teacher
    float_ft          no layer ternary, B iterations: the float detector fine-tuned the same way, the reference
                      the ternary rows are held against (the restart alone moves the score)

Every stage re-estimates batch-norm statistics from its first ternary layer on and restarts its schedule with
its burn-in; steps ×0.1 at 80% and 90% of each stage. Scores: mAP@0.5 (VOC2007 11-point) and average IoU on
BCCD's test split (72 images). ``--seeds 0,1,2`` repeats every row (mean ± std). The JSON (``--out``) records
the command line, CPU, threads and date; a rerun skips finished runs (the stage runner resumes).

    python bench/staged_bccd.py --float-weights W --iters 6000 --per-channel --seeds 0,1,2

``--stage-iters 600,1200,1800,2400`` gives the stages budgets of their own instead (issue 5's comparison: the
direct rows then train the sum). ``--stage-layers "0,2,4,6;+10;+8;all"`` replaces the automatic plan's ternary
sets (darknet layer indices, ``;`` between stages, ``+`` adds to the previous stage's set), e.g. to make the
costly layers ternary first. ``--one-schedule`` runs the staged_equal rows under protocol continue: the stages
are the direct run's one schedule cut in N (burn-in once, steps at 80% and 90% of the whole), not N restarts.
"""
from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

from _meta import mean_std, run_info, write_results
from tritnet.stage import Plan, Stage, auto_plan, run_plan

SHARED = Path("../shared/data")
ROWS = ("direct", "direct_kt", "staged_equal", "staged_seeds", "staged_equal_kt", "float_ft")


def bccd_data(out: Path) -> Path:
    data = out / "data" / "bccd.data"
    if not data.is_file():
        from tritnet.yolo import voc_label
        voc_label([SHARED / "bccd"], out / "data", ["trainval"], ["test"], ["RBC", "WBC", "Platelets"], "bccd")
    return data


def schedule(iters: int, batch: int, subdivisions: int, lr: float, burn_in: int) -> dict:
    """darknet [net] keys: steps ×0.1 at 80% and 90%, as the seeds' runs (moved with each stage's budget)."""
    return {"batch": batch, "subdivisions": subdivisions, "learning_rate": lr, "burn_in": burn_in,
            "max_batches": iters, "policy": "steps", "steps": [max(1, int(.8 * iters)), max(2, int(.9 * iters))],
            "scales": [.1, .1]}


def train_float(a, data: Path, folder: Path) -> str:
    """The float detector every row starts from: ttt5_224_160 with 3 classes, ``detector train`` from the
    partial backbone (the darknet user's way); a finished run is reused, a killed one resumed."""
    from tritnet.darknet import dump_cfg, parse_cfg
    from tritnet.yolo import DetectorTrainConfig, set_classes, set_schedule, train_detector
    final = folder / "ttt5-bccd_float_final.weights"
    if final.is_file():
        return str(final)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = parse_cfg(a.cfg)
    set_classes(cfg, 3)
    set_schedule(cfg, **schedule(a.float_iters, a.batch, a.subdivisions, a.float_lr, max(1, a.float_iters // 30)))
    path = folder / "ttt5-bccd_float.cfg"
    path.write_text(dump_cfg(cfg))
    train_detector(DetectorTrainConfig(str(data), str(path), a.backbone, method=None, backup=str(folder),
                                       workers=a.workers, progress=False,
                                       resume=(folder / "ttt5-bccd_float.ckpt").is_file()))
    return str(final)


def parse_stage_layers(text: str) -> list:
    """'0,2,4,6;+10;all' -> [{layers: [0, 2, 4, 6]}, {add: [10]}, {layers: "all"}] (the plan's layer syntax)."""
    specs = []
    for part in text.split(";"):
        part = part.strip()
        if part == "all":
            specs.append({"layers": "all"})
            continue
        key, part = ("add", part[1:]) if part.startswith("+") else ("layers", part)
        try:
            specs.append({key: [int(x) for x in part.split(",")]})
        except ValueError:
            raise SystemExit(f"--stage-layers: {part!r} is not a comma-separated list of layer indices") from None
    return specs


def log_seconds(folder: Path) -> dict:
    """Training time of every run under ``folder`` from the trainers' logs: seconds, teacher seconds."""
    total = teacher = 0.0
    n = 0
    # the detector's run log (runs before the run-folder change: <cfg>_log.csv)
    for path in sorted(folder.rglob("results.csv")) or sorted(folder.rglob("*_log.csv")):
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                total += float(r["seconds"])
                teacher += float(r["teacher_seconds"]) if r.get("teacher_seconds") else 0.0
                n += 1
    return {"train_seconds": total, "teacher_seconds": teacher, "iterations": n,
            "teacher_overhead": teacher / (total - teacher) if total > teacher else None}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cfg", default=str(SHARED / "darknet/cfg/ttt5_224_160.cfg"))
    ap.add_argument("--backbone", default=str(SHARED / "darknet/weights/ttt5_pre_141_conv7.weights"))
    ap.add_argument("--float-weights", default=None, help="the float detector to start from (else trained here)")
    ap.add_argument("--float-iters", type=int, default=6000)
    ap.add_argument("--float-lr", type=float, default=0.002)
    ap.add_argument("--iters", type=int, default=6000, help="the budget B: the direct run's iterations")
    ap.add_argument("--stages", type=int, default=4)
    ap.add_argument("--stage-iters", default=None,
                    help="instead of the protocols: each stage's iterations, e.g. 600,1200,1800,2400 (direct then "
                         "trains their sum; rows direct, direct_kt, staged_equal (these budgets), staged_equal_kt)")
    ap.add_argument("--stage-layers", default=None,
                    help="instead of the automatic order: each stage's ternary set, e.g. '0,2,4,6;+10;+8;all' "
                         "(darknet layer indices; '+' adds to the previous stage's)")
    ap.add_argument("--lr", "--stage-lr", type=float, default=0.001, help="learning rate of the ternary runs")
    ap.add_argument("--burn-in", type=int, default=None, help="iterations of warm-up of every run and stage "
                    "(default: 2.5%% of the budget, a tenth of an equal-split stage)")
    ap.add_argument("--per-channel", action="store_true")
    ap.add_argument("--bn-eval", type=int, default=None,
                    help="sub-batches re-estimating BN statistics before evaluating and saving (the trainer's "
                         "default 200 when None; 0: darknet's rolling averages, as runs before it)")
    ap.add_argument("--chain", choices=["minloss", "best", "last", "shadow"], default="last")
    ap.add_argument("--one-schedule", action="store_true",
                    help="staged_equal rows: protocol continue (one schedule across the stages, no restarts)")
    ap.add_argument("--distill-head", type=float, default=None)
    ap.add_argument("--distill-feature", type=float, default=None)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--subdivisions", type=int, default=2)
    ap.add_argument("--rows", default=",".join(ROWS), help=f"any of {', '.join(ROWS)}")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds, e.g. 0,1,2")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--only", choices=["float", "all"], default="all",
                    help="float: only train the float detector (a later run reuses it)")
    ap.add_argument("--runs", default="runs/bench/staged_bccd_kt", help="run folders")
    ap.add_argument("--out", default="bench/results/staged_bccd_kt.json")
    a = ap.parse_args()
    rows = [r.strip() for r in a.rows.split(",") if r.strip()]
    unknown = set(rows) - set(ROWS)
    if unknown:
        raise SystemExit(f"--rows: unknown {sorted(unknown)}; choose among {', '.join(ROWS)}")
    seeds = [int(s) for s in a.seeds.split(",") if s.strip()]
    stage_iters = [int(n) for n in a.stage_iters.split(",")] if a.stage_iters else None
    if stage_iters:
        if "staged_seeds" in rows:
            raise SystemExit("--stage-iters gives the stages their own budgets: leave staged_seeds out of --rows")
        a.stages, a.iters = len(stage_iters), sum(stage_iters)
        if a.one_schedule:
            raise SystemExit("--one-schedule splits --iters equally; leave --stage-iters out")
    stage_layers = parse_stage_layers(a.stage_layers) if a.stage_layers else None
    if stage_layers:
        if stage_iters and len(stage_iters) != len(stage_layers):
            raise SystemExit(f"--stage-iters gives {len(stage_iters)} stages, --stage-layers {len(stage_layers)}")
        a.stages = len(stage_layers)
    runs = Path(a.runs).resolve()
    data = bccd_data(runs)
    quiet = dict(workers=a.workers, progress=False, echo=lambda s: None)

    if a.float_weights:
        float_weights = str(Path(a.float_weights).resolve())
    else:
        float_weights = train_float(a, data, runs / "float")
        if a.only == "float":
            return

    burn_in = a.burn_in if a.burn_in is not None else max(1, a.iters // 40)
    train = {**schedule(a.iters, a.batch, a.subdivisions, a.lr, burn_in),
             **({"per_channel": True} if a.per_channel else {}),
             **({"bn_eval": a.bn_eval} if a.bn_eval is not None else {})}
    kt = {"distill": True, **({"distill_head": a.distill_head} if a.distill_head is not None else {}),
          **({"distill_feature": a.distill_feature} if a.distill_feature is not None else {})}
    plan = auto_plan(a.cfg, stages=a.stages, classes=3, data=str(data), weights=float_weights, chain=a.chain,
                     train=train, name="ttt5-bccd")
    if stage_layers:
        plan.stages = [Stage(name=f"M{k}", **spec) for k, spec in enumerate(stage_layers)]
    for stage, n in zip(plan.stages, stage_iters or []):
        stage.train = schedule(n, a.batch, a.subdivisions, a.lr, burn_in)
    results, start = {r: [] for r in rows}, None
    for seed in seeds:
        for row in rows:
            folder = runs / f"seed{seed}" / row
            over = {"seed": seed, **(kt if row.endswith("_kt") else {})}
            protocol = "seeds" if row == "staged_seeds" else ("continue" if a.one_schedule else "equal")
            budget = {} if stage_iters else dict(protocol=protocol, budget=a.iters)
            t = time.time()
            if row == "float_ft":
                fine = Plan(name="ttt5-bccd", model=a.cfg, classes=3, data=str(data), weights=float_weights,
                            chain=a.chain, train=train, stages=[Stage(name="F", layers=[])])
                r = run_plan(fine, folder, overrides=over, **quiet)
            else:
                r = run_plan(plan, folder, overrides=over, direct=row.startswith("direct"), **budget, **quiet)
            last = r["rows"][-1]
            start = start or (r["rows"][0] if r["rows"][0]["stage"].startswith("start") else None)
            results[row].append({"seed": seed, "map": last["map"], "avg_iou": last["avg_iou"],
                                 "packed_2bit_bytes": last["packed_2bit_bytes"],
                                 "stages": [{"stage": x["stage"], "ternary_layers": x["ternary_layers"],
                                             "map": x["map"], "iterations": x["budget"]} for x in r["rows"][1:]],
                                 "wall_seconds": time.time() - t, **log_seconds(folder)})
            print(row, f"seed {seed}: mAP@0.5 {last['map']:.2f}", flush=True)

    summary = {k: {"map": mean_std([x["map"] for x in v]), "avg_iou": mean_std([x["avg_iou"] for x in v]),
                   "train_seconds": mean_std([x["train_seconds"] for x in v])} for k, v in results.items() if v}
    if results.get("direct") and results.get("direct_kt"):
        summary["transfer_cost"] = {
            "teacher_overhead_in_run": mean_std([x["teacher_overhead"] for x in results["direct_kt"]]),
            "direct_kt_over_direct_time": mean_std([k["train_seconds"] / d["train_seconds"] for k, d in
                                                    zip(results["direct_kt"], results["direct"])])}
    out = {**run_info(), "benchmark": "BCCD ttt5_224_160: staged vs direct, with and without knowledge transfer",
           "budget": {"iterations": a.iters, "stages": a.stages, "stage_iterations": stage_iters, "lr": a.lr,
                      "stage_layers": a.stage_layers or "automatic",
                      "burn_in": burn_in,
                      "batch": a.batch, "subdivisions": a.subdivisions, "per_channel": a.per_channel,
                      "chain": a.chain, "seeds": seeds, "float_weights": float_weights,
                      "staged_equal_protocol": "continue" if a.one_schedule else "equal",
                      "distill": {k: v for k, v in kt.items() if k != "distill"} or "defaults",
                      "train_images": "BCCD trainval (292)", "test_images": "BCCD test (72)"},
           "start": {k: start[k] for k in ("map", "avg_iou")} if start else None,
           "summary": summary, "runs": results}
    write_results(a.out, out, "map", "mAP@0.5", ('avg_iou', 'avg IoU'), "iteration")


if __name__ == "__main__":
    main()
