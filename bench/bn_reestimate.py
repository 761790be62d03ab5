"""Benchmark (BENCHMARKS.md 9h): top-1 of trained CIFAR classifiers with their BN running averages as training left
them, and with every BN statistic re-estimated from the final weights over N training batches.

Training normalises with batch statistics; the running averages evaluation uses trail the weights (momentum 0.1),
and a ternary network's codes keep flipping until the last step. This measures what re-estimating them is worth
(``bn_eval`` of ``tritnet classifier train`` does it before every evaluation).

    python bench/bn_reestimate.py --train-per-class 1000 --seed 0 --batches 20,78 --out F CHECKPOINT...
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _meta import mean_std, run_info  # noqa: E402
from tritnet.atomic import write_text_atomic  # noqa: E402
from tritnet.data import build_classification_loaders  # noqa: E402
from tritnet.eval.classify import evaluate  # noqa: E402
from tritnet.train import load_classifier  # noqa: E402
from tritnet.train.calibrate import recalibrate_batchnorm  # noqa: E402
from tritnet.train.classifier import input_format  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="+", help="tritnet classifier checkpoints (weights/last.pt of a run)")
    ap.add_argument("--data", default="../shared/data/cifar10/cifar10-jpeg.tar.gz")
    ap.add_argument("--train-per-class", type=int, default=5000, help="the training images the runs used")
    ap.add_argument("--valid-per-class", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0, help="the runs' seed (their image subset and order)")
    ap.add_argument("--batches", default="20", help="comma-separated numbers of batches of 128 to average over")
    ap.add_argument("--cache-dir", default="/tmp/tritnet-cache")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    counts = [int(n) for n in a.batches.split(",")]
    data, rows = None, []
    for path in a.checkpoints:
        model, state = load_classifier(path)
        if data is None:
            data = build_classification_loaders(a.data, batch_size=128, workers=0, train_per_class=a.train_per_class,
                                                valid_per_class=a.valid_per_class, cache_dir=a.cache_dir,
                                                seed=a.seed, **input_format(state["arch"]))
        row = {"checkpoint": path, "ternary_layers": len(state.get("ternary") or []),
               "top1_as_trained": evaluate(model, data.valid)["top1"]}
        for n in counts:
            m = copy.deepcopy(model)
            recalibrate_batchnorm(m, data.train, n)
            row[f"top1_bn_{n}"] = evaluate(m.eval(), data.valid)["top1"]
        rows.append(row)
        print(f"{'ternary' if row['ternary_layers'] else 'float  '} {path}: " +
              " ".join(f"{k[5:]} {v:.2f}" for k, v in row.items() if k.startswith("top1")), flush=True)
    summary = {}
    for kind, chosen in (("ternary", [r for r in rows if r["ternary_layers"]]),
                         ("float", [r for r in rows if not r["ternary_layers"]])):
        if chosen:
            summary[kind] = {f"gain_bn_{n}": mean_std([r[f"top1_bn_{n}"] - r["top1_as_trained"] for r in chosen])
                             for n in counts}
    out = {**run_info(), "benchmark": "BN statistics re-estimated after training (CIFAR-10 top-1)",
           "train_per_class": a.train_per_class, "valid_per_class": a.valid_per_class, "seed": a.seed,
           "batch_size": 128, "summary": summary, "runs": rows}
    write_text_atomic(a.out, json.dumps(out, indent=2))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
