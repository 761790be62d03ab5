"""Benchmark: staged vs direct ternarization of the pretrained CIFAR-10 ResNet-20, with and without knowledge
transfer from the float network, at one budget (issue 17).

Every row starts from the pretrained ResNet-20 (81.03% on the JPEG test set), ends with all 20 weight layers
ternary (TWN unless ``--method ttn``, one scale per output channel unless ``--per-layer``) and trains
``--epochs`` epochs in all:

    float fine-tuned   the float network trained the same budget (separates JPEG adaptation from ternarization)
    direct             every layer ternary at once, ``--epochs`` epochs
    direct+kt          the same with the float network as teacher (``distill``)
    staged             the automatic 4-stage plan (15%, 40%, 90%, 100% of the layers in the seeds' order), the
                       budget split equally (``--protocol equal``; ``seeds`` gives every stage the whole budget)
    staged+kt          the same with the float start as every stage's teacher
    direct+kt (ft)     direct+kt with the float fine-tuned row of the same seed as teacher: the pretrained start
    staged+kt (ft)     scores 81% on the JPEG test set, below what ternary students reach here (~84%), so it
                       teaches less than the float network trained on the same images (``--rows`` to add them)
    float+kt (ft)      the float network trained with that teacher: what transfer gives float, when the teacher is
                       another network (``--teacher-runs``: the float_finetuned row of e.g. ``--model resnet56``)

Every run re-estimates batch-norm statistics from its first new ternary layer on and restarts its schedule with
its warm-up (``--warmup`` of each run). ``--seeds 0,1,2`` repeats every row per seed and reports mean ± std of
top-1. The JSON (``--out``) records the command line, CPU, threads and date; run folders go under ``--runs``
and a rerun skips every finished run (the stage runner resumes).

    python bench/staged_cifar.py --epochs 8 --train-per-class 1000 --seeds 0,1,2
"""
from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

from _meta import mean_std, run_info, write_results
from tritnet.stage import auto_plan, plan_from_dict, run_plan
from tritnet.train import ClassifierTrainConfig

DATA = "../shared/data/cifar10/cifar10-jpeg.tar.gz"
PRETRAINED = "../shared/data/pretrained/resnet_cifar10"
ROWS = ("float_finetuned", "direct", "direct_kt", "staged", "staged_kt", "direct_kt_ft", "staged_kt_ft",
        "float_kt_ft")


def run_seconds(folder: Path) -> dict:
    """Training time of every run under ``folder`` from its results.csv: seconds, teacher seconds, images/s."""
    total = teacher = 0.0
    rates = []
    for path in sorted(folder.rglob("results.csv")):
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                total += float(r["epoch_time_s"])
                teacher += float(r["teacher_s"]) if r.get("teacher_s") else 0.0
                rates.append(float(r["images_per_s"]))
    return {"train_seconds": total, "teacher_seconds": teacher,
            "teacher_overhead": teacher / (total - teacher) if total > teacher else None,
            "images_per_s": sum(rates) / len(rates) if rates else None}


def _finished(folder: Path) -> bool:
    """A run folder whose every stage is done (the runner writes report.csv when the last one ends)."""
    state = folder / "state.json"
    if not (folder / "report.csv").is_file() or not state.is_file():
        return False
    import json
    stages = json.loads(state.read_text())["stages"].values()
    return bool(stages) and all(s.get("status") == "done" for s in stages)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--weights", default=PRETRAINED)
    ap.add_argument("--model", default="resnet20", help="the architecture of every row (a registered CIFAR model)")
    ap.add_argument("--teacher-runs", default=None,
                    help="where the _kt_ft rows find their teacher, seedN/float_finetuned of any architecture "
                         "(default: --runs)")
    ap.add_argument("--epochs", type=int, default=8, help="the budget: the direct run's epochs (and float's)")
    ap.add_argument("--stages", type=int, default=4)
    ap.add_argument("--protocol", choices=["equal", "seeds"], default="equal",
                    help="staged rows: the budget split over the stages, or every stage the whole budget")
    ap.add_argument("--stage-epochs", default=None,
                    help="instead of a protocol: each stage's epochs, e.g. 1,1,2,4 (direct and float then train "
                         "their sum, issue 5's comparison)")
    ap.add_argument("--train-per-class", type=int, default=1000)
    ap.add_argument("--valid-per-class", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--warmup", type=float, default=0.05, help="warm-up fraction of every run and stage")
    ap.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--threshold", type=float, default=None,
                    help="threshold factor (the method's default: TWN 0.7, TTN 0.05)")
    ap.add_argument("--method", choices=["twn", "ttn"], default="twn", help="the ternarizer of every row")
    ap.add_argument("--per-layer", action="store_true", help="one TWN scale per layer (default: per channel)")
    ap.add_argument("--chain", choices=["last", "best", "minloss"], default="last")
    ap.add_argument("--distill-alpha", type=float, default=None)
    ap.add_argument("--distill-temperature", type=float, default=None)
    ap.add_argument("--rows", default=",".join(ROWS[:5]), help=f"any of {', '.join(ROWS)}")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds, e.g. 0,1,2")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--collect-only", action="store_true",
                    help="train nothing: write the results of the runs that finished (runs of other processes)")
    ap.add_argument("--cache-dir", default="/tmp/tritnet-cache")
    ap.add_argument("--runs", default="runs/bench/staged_cifar_kt", help="run folders")
    ap.add_argument("--out", default="bench/results/staged_cifar_kt.json")
    a = ap.parse_args()
    rows = [r.strip() for r in a.rows.split(",") if r.strip()]
    unknown = set(rows) - set(ROWS)
    if unknown:
        raise SystemExit(f"--rows: unknown {sorted(unknown)}; choose among {', '.join(ROWS)}")
    seeds = [int(s) for s in a.seeds.split(",") if s.strip()]
    stage_epochs = [int(e) for e in a.stage_epochs.split(",")] if a.stage_epochs else None
    if stage_epochs:
        a.stages, a.epochs, a.protocol = len(stage_epochs), sum(stage_epochs), None

    train = {"epochs": a.epochs, "train_per_class": a.train_per_class, "valid_per_class": a.valid_per_class,
             "batch_size": a.batch_size, "lr": a.lr, "schedule": "cosine", "warmup": a.warmup,
             "optimizer": a.optimizer, "weight_decay": a.weight_decay, "per_channel": not a.per_layer,
             "cache_dir": a.cache_dir,
             **({"threshold": a.threshold} if a.threshold is not None else {})}
    kt = {"distill": True, **({"distill_alpha": a.distill_alpha} if a.distill_alpha is not None else {}),
          **({"distill_temperature": a.distill_temperature} if a.distill_temperature is not None else {})}
    plan = auto_plan(a.model, stages=a.stages, method=a.method, chain=a.chain, data=a.data, weights=a.weights,
                     train=train, name=f"{a.model}-cifar10")
    for stage, epochs in zip(plan.stages, stage_epochs or []):
        stage.train = {"epochs": epochs}
    budget = dict(protocol=a.protocol, budget=a.epochs) if a.protocol else {}
    float_plan = plan_from_dict({"name": f"{a.model}-cifar10", "model": a.model, "data": a.data,
                                 "weights": a.weights, "train": train, "stages": [{"name": "float", "layers": []}]})
    runs = Path(a.runs)
    teacher_runs = Path(a.teacher_runs or a.runs)
    quiet = dict(workers=a.workers, progress=False, echo=lambda s: None)
    results, start = {r: [] for r in rows}, None
    for seed in seeds:
        for row in rows:
            folder = runs / f"seed{seed}" / row
            if a.collect_only and not _finished(folder):
                print(f"{row} seed {seed}: not finished, left out (--collect-only)", flush=True)
                continue
            over = {"seed": seed, **(kt if "_kt" in row else {})}
            if row.endswith("_kt_ft"):                  # the teacher: this seed's float fine-tuned network
                found = sorted((teacher_runs / f"seed{seed}" / "float_finetuned" / "float").glob("*_float.pt"))
                if not found:
                    raise SystemExit(f"{row}: run the float_finetuned row of seed {seed} under {teacher_runs} "
                                     "first (its teacher)")
                over["teacher"] = str(found[0])
            t = time.time()
            if row.startswith("float"):
                r = run_plan(float_plan, folder, overrides=over, **quiet)
            elif row.startswith("direct"):
                r = run_plan(plan, folder, overrides=over, direct=True, **budget, **quiet)
            else:
                r = run_plan(plan, folder, overrides=over, **budget, **quiet)
            last = r["rows"][-1]
            start = start or (r["rows"][0] if r["rows"][0]["stage"].startswith("start") else None)
            results[row].append({"seed": seed, "top1": last["top1"], "top5": last["top5"],
                                 "teacher": over.get("teacher", "the float start") if "_kt" in row else None,
                                 "packed_2bit_bytes": last["packed_2bit_bytes"],
                                 "stages": [{"stage": x["stage"], "ternary_layers": x["ternary_layers"],
                                             "top1": x["top1"], "epochs": x["budget"]} for x in r["rows"][1:]],
                                 "wall_seconds": time.time() - t, **run_seconds(folder)})
            print(row, f"seed {seed}: top-1 {last['top1']:.2f}", flush=True)

    summary = {k: {"top1": mean_std([x["top1"] for x in v]), "top5": mean_std([x["top5"] for x in v]),
                   "train_seconds": mean_std([x["train_seconds"] for x in v])} for k, v in results.items() if v}
    if "direct" in results and "direct_kt" in results and results["direct"] and results["direct_kt"]:
        # the transfer's cost measured both ways: teacher share inside the run, and run against run
        summary["transfer_cost"] = {
            "teacher_overhead_in_run": mean_std([x["teacher_overhead"] for x in results["direct_kt"]]),
            "direct_kt_over_direct_time": mean_std([k["train_seconds"] / d["train_seconds"]
                                                    for k in results["direct_kt"] for d in results["direct"]
                                                    if d["seed"] == k["seed"]])}
    out = {**run_info(), "benchmark": f"CIFAR-10 {a.model}: staged vs direct, with and without knowledge transfer",
           "model": a.model, "teacher_runs": str(teacher_runs),
           "budget": {"epochs": a.epochs, "stages": a.stages, "protocol": a.protocol or f"stage epochs {stage_epochs}",
                      "train_images_per_epoch": 10 * a.train_per_class, "test_images": 10 * a.valid_per_class,
                      "batch_size": a.batch_size, "lr": a.lr, "schedule": "cosine", "warmup": a.warmup,
                      "method": a.method, "optimizer": a.optimizer, "weight_decay": a.weight_decay,
                      "threshold": a.threshold or "method default",
                      "per_channel": not a.per_layer, "chain": a.chain, "seeds": seeds,
                      "bn_eval_batches": ClassifierTrainConfig.bn_eval,
                      "distill": {k: v for k, v in kt.items() if k != "distill"} or "defaults"},
           "start": {k: start[k] for k in ("top1", "top5")} if start else None,
           "summary": summary, "runs": results}
    write_results(a.out, out, "top1", "top-1", ('top5', 'top-5'), "step")


def main_for(arguments: list) -> None:
    """Run this benchmark with ``arguments`` from a script that changed the trainer first (bench/cifar_*.py):
    the results file records that script's command line, not this one's."""
    global run_info
    import shlex
    import sys
    command = " ".join(shlex.quote(a) for a in ["python"] + sys.argv)
    recorded = run_info
    run_info = lambda: {**recorded(), "command": command}  # noqa: E731
    sys.argv = sys.argv[:1] + list(arguments)
    main()


if __name__ == "__main__":
    main()
