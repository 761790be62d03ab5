"""Benchmark (BENCHMARKS.md 9k): what making one layer (or a group) ternary costs a trained CIFAR classifier, before
any training: TWN with one scale per channel on the chosen layers only, BN statistics re-estimated from that layer
on over 20 training batches, top-1 on the test images. The CIFAR counterpart of ``bench/ablation_bccd.py``.
``--method``/``--threshold``/``--t-ex`` choose another ternarizer for the groups (TTN, its residual expansion).

    python bench/cifar_layer_cost.py --seed 1 --groups each --out F CHECKPOINT
    python bench/cifar_layer_cost.py --seed 1 --groups conv1 linear conv1,linear --out F CHECKPOINT
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _meta import run_info  # noqa: E402
from tritnet.atomic import write_text_atomic  # noqa: E402
from tritnet.data import build_classification_loaders  # noqa: E402
from tritnet.eval.classify import evaluate  # noqa: E402
from tritnet.nn.swap import ternarize_, ternary_report  # noqa: E402
from tritnet.quant.configs import ternarizer_options  # noqa: E402
from tritnet.train import load_classifier  # noqa: E402
from tritnet.train.calibrate import BN_BATCHES, batchnorms_after, recalibrate_batchnorm  # noqa: E402
from tritnet.train.classifier import input_format  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", help="a tritnet classifier checkpoint (weights/last.pt of a run)")
    ap.add_argument("--groups", nargs="+", default=["each"],
                    help="comma-separated layer names made ternary together, one group per argument; 'each': "
                         "every float layer of the checkpoint alone")
    ap.add_argument("--method", default="twn", choices=["twn", "ttn"])
    ap.add_argument("--threshold", type=float, default=None, help="the method's threshold factor (default its own)")
    ap.add_argument("--t-ex", type=int, default=1, choices=[1, 2, 4], help="TTN's residual expansion")
    ap.add_argument("--data", default="../shared/data/cifar10/cifar10-jpeg.tar.gz")
    ap.add_argument("--train-per-class", type=int, default=5000)
    ap.add_argument("--valid-per-class", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", default="/tmp/tritnet-cache")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    model, state = load_classifier(a.checkpoint)
    data = build_classification_loaders(a.data, batch_size=128, workers=0, train_per_class=a.train_per_class,
                                        valid_per_class=a.valid_per_class, cache_dir=a.cache_dir, seed=a.seed,
                                        **input_format(state["arch"]))
    float_layers = [r.name for r in ternary_report(model) if not r.ternary]
    groups = [[n] for n in float_layers] if a.groups == ["each"] else [g.split(",") for g in a.groups]
    base = evaluate(model, data.valid)["top1"]
    print(f"as saved ({len(float_layers)} float layers): {base:.2f}", flush=True)
    options = ternarizer_options(a.method, per_channel=True, threshold=a.threshold, t_ex=a.t_ex)
    rows = []
    for group in groups:
        m = copy.deepcopy(model)
        ternarize_(m, method=a.method, layers=group, **options)
        first = min((m.get_submodule(n) for n in group), key=lambda mod: list(m.modules()).index(mod))
        recalibrate_batchnorm(m, data.train, BN_BATCHES, only=batchnorms_after(m, first))
        top1 = evaluate(m.eval(), data.valid)["top1"]
        weights = sum(m.get_submodule(n).weight.numel() for n in group)
        rows.append({"layers": group, "weights": weights, "top1": top1, "cost": round(base - top1, 2)})
        print(f"{','.join(group):30s} {weights:8,d} weights  top-1 {top1:.2f}  cost {base - top1:+.2f}", flush=True)
    out = {**run_info(), "benchmark": "cost of one layer group made ternary, before training",
           "ternarizer": {"method": a.method, **options},
           "checkpoint": a.checkpoint, "train_per_class": a.train_per_class, "valid_per_class": a.valid_per_class,
           "seed": a.seed, "bn_batches": BN_BATCHES, "top1_as_saved": base, "rows": rows}
    write_text_atomic(a.out, json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
