"""Benchmark: staged vs direct TWN ternarization of the pretrained CIFAR-10 ResNet-20 (JPEG CIFAR-10).

Float is the pretrained network as it is. Staged is the automatic 4-stage plan (15%, 40%, 90%, 100% of the
20 weight layers in the seeds' order: last blocks first, first conv and classifier last), each stage
fine-tuned for ``--epochs-per-stage`` epochs from the previous stage's last checkpoint. Direct makes all 20
layers ternary at once and trains for the same total budget (stages x epochs over the same images, same
optimiser, one cosine schedule). Every row is scored on the same test images (``--valid-per-class``).
Float fine-tuned trains the float network for the same total budget: the pretrained weights were trained
on the original PNG images, so part of what fine-tuning gains is adaptation to the JPEG copies, and
this row separates that gain from ternarization. Rerunning skips every finished run (the runner resumes).

    python bench/staged_cifar.py --train-per-class 200 --valid-per-class 200 --out runs/bench/staged_cifar

``--stage-epochs 2,4,6,8`` gives the stages different shares of the budget (the last, all-ternary stage the
most). ``--reuse bench/results/classify_methods.json`` takes the float fine-tuned and direct rows from the
methods benchmark (float and TWN from the same weights, with the same data, optimiser and total epochs),
which are the same runs, instead of training them again.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from tritnet.stage import auto_plan, plan_from_dict, run_plan

DATA = "../shared/data/cifar10/cifar10-jpeg.tar.gz"
PRETRAINED = "../shared/data/pretrained/resnet_cifar10"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--weights", default=PRETRAINED)
    ap.add_argument("--stages", type=int, default=4)
    ap.add_argument("--epochs-per-stage", type=int, default=1)
    ap.add_argument("--stage-epochs", default=None, help="epochs of each stage, e.g. 2,4,6,8 (instead of equal)")
    ap.add_argument("--train-per-class", type=int, default=200)
    ap.add_argument("--valid-per-class", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--reuse", default=None, help="classify_methods JSON with the float and twn rows")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--cache-dir", default="/tmp/tritnet-cache")
    ap.add_argument("--out", default="runs/bench/staged_cifar")
    a = ap.parse_args()

    stage_epochs = ([int(e) for e in a.stage_epochs.split(",")] if a.stage_epochs
                    else [a.epochs_per_stage] * a.stages)
    total = sum(stage_epochs)
    train = {"epochs": stage_epochs[0], "train_per_class": a.train_per_class,
             "valid_per_class": a.valid_per_class, "batch_size": a.batch_size, "lr": a.lr,
             "schedule": "cosine", "cache_dir": a.cache_dir}
    plan = auto_plan("resnet20", stages=len(stage_epochs), method="twn", chain="last", data=a.data,
                     weights=a.weights, train=train, name="resnet20-cifar10")
    for stage, epochs in zip(plan.stages, stage_epochs):
        stage.train = {"epochs": epochs}
    out = Path(a.out)
    keep = ("stage", "ternary_layers", "top1", "top5", "packed_2bit_bytes", "train_seconds")
    t0 = time.time()
    staged = run_plan(plan, out / "staged", workers=0, progress=False)
    t1 = time.time()
    if a.reuse:
        prior = json.loads(Path(a.reuse).read_text())
        if (prior["epochs"] != total or prior.get("lr") != a.lr or prior["train_images"] != 10 * a.train_per_class
                or a.valid_per_class < 1000 or a.batch_size != 128):      # classify_methods: 128, full test set
            raise SystemExit(f"{a.reuse}: {prior['epochs']} epochs of {prior['train_images']} images at lr "
                             f"{prior.get('lr')}; this run: {total} of {10 * a.train_per_class} at lr {a.lr}")
        res = prior["results"]
        one = {"stage": "direct", "ternary_layers": 20, "top1": res["twn"]["top1"], "top5": res["twn"]["top5"],
               "packed_2bit_bytes": res["twn"]["packed_2bit_bytes"], "train_seconds": 60 * res["twn"]["train_minutes"],
               "budget": total, "from": a.reuse}
        tuned = {"stage": "float fine-tuned", "ternary_layers": 0, "top1": res["float"]["top1"],
                 "top5": res["float"]["top5"], "packed_2bit_bytes": res["float"]["packed_2bit_bytes"],
                 "train_seconds": 60 * res["float"]["train_minutes"], "from": a.reuse}
        direct = {"rows": [one]}
        t2 = t3 = t1
    else:
        direct = run_plan(plan, out / "direct", direct=True, workers=0, progress=False)
        t2 = time.time()
        tuned_plan = plan_from_dict({"name": "resnet20-cifar10", "model": "resnet20", "data": a.data,
                                     "weights": a.weights, "train": {**train, "epochs": total},
                                     "stages": [{"name": "float", "layers": []}]})
        tuned = run_plan(tuned_plan, out / "float_finetuned", workers=0, progress=False)["rows"][-1]
        t3 = time.time()

    float_row, last, one = staged["rows"][0], staged["rows"][-1], direct["rows"][-1]
    summary = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "torch_threads": torch.get_num_threads(),
        "budget": {"train_images_per_epoch": 10 * a.train_per_class, "epochs_staged": stage_epochs,
                   "epochs_direct": direct["rows"][-1]["budget"], "test_images": 10 * a.valid_per_class,
                   "batch_size": a.batch_size, "lr": a.lr, "schedule": "cosine per stage / per run"},
        "float_top1": float_row["top1"], "float_top5": float_row["top5"],
        "float_finetuned": {k: tuned[k] for k in keep},
        "reused_from": a.reuse,
        "staged": [{k: r[k] for k in keep} for r in staged["rows"][1:]],
        "direct": {k: one[k] for k in keep},
        "staged_minus_float": last["top1"] - float_row["top1"], "staged_minus_direct": last["top1"] - one["top1"],
        "staged_minus_float_finetuned": last["top1"] - tuned["top1"],
        "wall_seconds": {"staged": t1 - t0, "direct": t2 - t1, "float_finetuned": t3 - t2},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
