"""Benchmark: float fine-tuning vs TWN, TTN and STTN (all layers ternary) from the pretrained CIFAR ResNet-20.

Every method gets the same budget (epochs over the same training images, same optimiser and schedule) and is
scored on the full CIFAR-10 JPEG test set. Also times one training step of each, interleaved in rounds on the
same batch, and reports the ternary/float ratio.

    python bench/classify_methods.py --epochs 2 --out bench/results/classify_methods.json

A method name with ``-pc`` (``twn-pc``, ``ttn-pc``) uses one scale per output channel; ``+kt`` (``twn-pc+kt``,
``sttn+kt``) adds knowledge transfer from the pretrained float network (``distill``, its default weights). The
JSON records the command line, CPU, threads and date.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import tritnet
from tritnet.nn.size import model_size
from tritnet.train import ClassifierTrainConfig, train_classifier

from _meta import run_info

DATA = "../shared/data/cifar10/cifar10-jpeg.tar.gz"
PRETRAINED = "../shared/data/pretrained/resnet_cifar10"


def parse_method(m: str) -> tuple:
    """'twn-pc+kt' → ('twn', per_channel=True, distill=True); 'float' → (None, False, False)."""
    base, kt = (m[:-3], True) if m.endswith("+kt") else (m, False)
    pc = base.endswith("-pc")
    base = base.removesuffix("-pc")
    return (None if base == "float" else base), pc, kt


def step_times(methods, rounds: int, batch: int = 128) -> dict:
    """Median seconds of one SGD step (forward, backward, update) per method, interleaved round by round."""
    torch.manual_seed(0)
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
    setups = {}
    teacher = tritnet.create_model("resnet20").eval()
    for m in methods:
        method, pc, kt = parse_method(m)
        model = tritnet.create_model("resnet20")
        if method:
            tritnet.ternarize_(model, method=method, **({"per_channel": True} if pc else {}))
        setups[m] = (model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), kt)
    times = {m: [] for m in methods}
    for r in range(rounds + 2):
        for m, (model, opt, kt) in setups.items():
            t = time.perf_counter()
            out = model(x)
            if kt:      # the teacher's forward and the mixed loss (distill.py), as the trainer runs them
                from tritnet.train.distill import DistillConfig, classifier_loss
                with torch.no_grad():
                    soft = teacher(x)
                loss = classifier_loss(out, soft, y, DistillConfig())[0]
            else:
                loss = F.cross_entropy(out, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if r >= 2:  # two warm-up rounds
                times[m].append(time.perf_counter() - t)
    return {m: statistics.median(v) for m, v in times.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--train-per-class", type=int, default=None, help="default: all 5,000")
    ap.add_argument("--valid-per-class", type=int, default=None, help="default: all 1,000")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--methods", nargs="+", default=["float", "twn", "ttn", "sttn"])
    ap.add_argument("--step-rounds", type=int, default=15)
    ap.add_argument("--steps-only", action="store_true", help="only time the training steps")
    ap.add_argument("--cache-dir", default="/tmp/tritnet-cache")
    ap.add_argument("--project", default="runs/bench_classify")
    ap.add_argument("--merge", nargs="*", default=[], help="JSON outputs of other runs to merge in the table")
    ap.add_argument("--out", default="bench/results/classify_methods.json")
    a = ap.parse_args()

    steps = step_times(["float"] + [m for m in a.methods if m != "float"], a.step_rounds) if a.step_rounds else {}
    for m in a.methods:
        parse_method(m)
    if a.steps_only:
        print(json.dumps({m: {"step_ms": round(1000 * t, 1), "ratio_vs_float": round(t / steps["float"], 3)}
                          for m, t in steps.items()}, indent=2))
        return
    results = {}
    for m in a.methods:
        t0 = time.time()
        method, pc, kt = parse_method(m)
        r = train_classifier(ClassifierTrainConfig(
            data=DATA, model="resnet20", weights=PRETRAINED, method=method, per_channel=pc, layers="all",
            distill=kt, epochs=a.epochs, lr=a.lr, train_per_class=a.train_per_class, valid_per_class=a.valid_per_class,
            cache_dir=a.cache_dir, workers=0, project=a.project, name=m, progress=False))
        size = model_size(r["model"])
        results[m] = {"top1": round(r["top1"], 2), "top5": round(r["top5"], 2),
                      "best_top1": round(r["best_top1"], 2), "train_minutes": round((time.time() - t0) / 60, 1),
                      "packed_2bit_bytes": size["packed_2bit_bytes"], "float32_bytes": size["float32_bytes"],
                      "run_dir": r["run_dir"], "train_step_ms": round(r.get("step_ms", 0.0), 1)}
        if kt:
            results[m].update(teacher_ms=round(r["teacher_ms"], 1), transfer_overhead=round(r["overhead"], 3))
        if steps:
            results[m].update(step_ms=round(1000 * steps[m], 1), step_ratio_vs_float=round(steps[m] / steps["float"], 3))
        print(m, results[m], flush=True)
    if a.merge:  # results of other invocations (e.g. methods run in parallel processes)
        for path in a.merge:
            results = {**json.loads(Path(path).read_text())["results"], **results}
    ref = results.get("float", {}).get("top1")
    for m, r in results.items():
        r["gap_to_float"] = round(ref - r["top1"], 2) if ref is not None else None
    out = {**run_info(), "machine": f"{platform.processor() or platform.machine()}, "
           f"{torch.get_num_threads()} threads, torch {torch.__version__}", "epochs": a.epochs,
           "train_images": (a.train_per_class or 5000) * 10, "lr": a.lr, "results": results}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2))
    print("| method | top-1 | top-5 | gap to float | weights (2-bit packed) | train minutes |")
    print("|---|---|---|---|---|---|")
    for m, r in results.items():
        gap = f"{r['gap_to_float']:+.2f}" if r["gap_to_float"] is not None else "-"
        print(f"| {m} | {r['top1']:.2f} | {r['top5']:.2f} | {gap} | {r['packed_2bit_bytes']:,} | {r['train_minutes']} |")


if __name__ == "__main__":
    main()
