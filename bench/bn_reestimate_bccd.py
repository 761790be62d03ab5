"""Benchmark (BENCHMARKS.md 10e): what re-estimating a trained detector's batch-norm statistics gives before
evaluation. The detector counterpart of ``bench/bn_reestimate.py``: darknet's rolling averages come from
multi-scale training at changing weights; here every BN statistic is replaced by its plain average over
``--batches`` sub-batches of training images at the network size, augmented as in training (as the stage
runner's boundary re-estimation draws them) or, ``--images plain``, prepared as the test images are (letterboxed,
no augmentation), and mAP@0.5 on the test split is compared before and after. Evaluation only.

    python bench/bn_reestimate_bccd.py --data D.data --out F CFG:WEIGHTS [CFG:WEIGHTS ...]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _meta import run_info  # noqa: E402
from tritnet.atomic import write_text_atomic  # noqa: E402
from tritnet.train.calibrate import recalibrate_batchnorm  # noqa: E402
from tritnet.yolo.evaluate import run_detector, score_map  # noqa: E402
from tritnet.yolo.labels import Issues  # noqa: E402
from tritnet.yolo import loader as yolo_loader  # noqa: E402
from tritnet.yolo.loss import DetectionLoss  # noqa: E402
from tritnet.yolo.setup import augmentation, multiscale_mode  # noqa: E402
from tritnet.yolo.validate import load_detector  # noqa: E402


def test_map(data, net) -> float:
    issues = Issues()
    records = data.records("valid", issues)
    dets = run_detector(net, records, thresh=0.005, nms=0.45, workers=0, issues=issues)
    return 100 * score_map(dets, records, data.names, 0.5, 0.25).map11


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", metavar="CFG:WEIGHTS", help="a detector's cfg and its .weights")
    ap.add_argument("--data", required=True, help="the darknet .data file (train list for BN, valid list scored)")
    ap.add_argument("--batches", type=int, default=20, help="sub-batches averaged (default 20, the stage runner's)")
    ap.add_argument("--batch", type=int, default=8, help="images a sub-batch")
    ap.add_argument("--images", choices=["augmented", "plain"], default="augmented",
                    help="training images as training draws them, or as the test images are prepared")
    ap.add_argument("--multiscale", choices=["off", "auto"], default="off",
                    help="augmented images at the network size, or at training's random sizes")
    ap.add_argument("--per-channel", action="store_true", help="the ternary layers have one scale per channel")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    rows = []
    for item in a.models:
        cfg, _, weights = item.partition(":")
        data, net = load_detector(a.data, cfg, weights, "twn", a.per_channel)
        before = test_map(data, net)
        issues = Issues()
        records = [r.trainable() for r in data.records("train", issues)]
        if a.images == "augmented":
            store = yolo_loader.ImageStore([r.image for r in records], 0, 0, issues)
            train_set = yolo_loader.TrainSet(records, store, augmentation(net), DetectionLoss(net).max_boxes)
            mode, stride = multiscale_mode(net, a.multiscale)
            sampler = yolo_loader.TrainSampler(len(records), a.batch, 1, 0, a.batches, a.seed + 7919, net.width,
                                               net.height, mode, stride, exclude=store.bad)
            loader = yolo_loader.train_loader(train_set, sampler, 0)
        else:
            order = torch.randperm(len(records)).tolist()
            shuffled = [records[i] for i in order]
            store = yolo_loader.ImageStore([r.image for r in shuffled], 0, 0, issues)
            plain = yolo_loader.EvalSet(shuffled, store, net.width, net.height, True)
            loader = yolo_loader.eval_loader(plain, a.batch, 0)
        recalibrate_batchnorm(net, loader, a.batches)
        after = test_map(data, net.eval())
        ternary = sum(1 for i in net.infos if i.ternary)
        rows.append({"cfg": cfg, "weights": weights, "ternary_convs": ternary, "map_as_saved": round(before, 2),
                     "map_bn_reestimated": round(after, 2), "gain": round(after - before, 2)})
        print(f"{weights}: {ternary} ternary convs, mAP@0.5 {before:.2f} -> {after:.2f} ({after - before:+.2f})",
              flush=True)
    gains = [r["gain"] for r in rows]
    out = {**run_info(), "benchmark": "detector BN statistics re-estimated before evaluation (BCCD test mAP@0.5)",
           "data": a.data, "images": a.images, "multiscale": a.multiscale, "batches": a.batches, "batch": a.batch,
           "seed": a.seed, "rows": rows,
           "mean_gain": round(sum(gains) / len(gains), 2)}
    write_text_atomic(a.out, json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
