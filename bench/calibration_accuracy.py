"""Accuracy of int8 input scales calibrated at export (tritnet_rt.calibrate) against per-image scales and PyTorch.

CIFAR-10: the pretrained ResNet-20, every layer ternary (TWN per channel, batch-norm statistics re-estimated, no
training: tests/runtime/helpers.py), top-1 on the 10,000 test images with PyTorch, tritnet_rt with per-image
scales, and tritnet_rt calibrated on ``--cifar-images`` training images with each range statistic (the 1st/99th
percentiles of the per-image minima/maxima that ``calibrate`` uses, the extremes over all images, the mean of
the per-image ranges). BCCD (``--detector CFG WEIGHTS``, a trained ternary detector): the detections PyTorch
makes on the 72 test images that tritnet_rt finds within 2 px, with each kind of scale.

    python bench/calibration_accuracy.py --cifar-images 100,500 \\
        --detector runs/bench/staged_bccd_kt/seed0/direct_kt/direct/ttt5-bccd_direct.cfg \\
                   runs/bench/staged_bccd_kt/seed0/direct_kt/direct/ttt5-bccd_direct.weights
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))

from _meta import run_info  # noqa: E402
from tritnet.export import to_packed  # noqa: E402
from tritnet_rt.calibrate import calibrated_range, input_ranges, with_ranges  # noqa: E402
from tritnet_rt.net import Net  # noqa: E402

STATISTICS = {   # (low end, high end) of a conv's input range from its per-image minima and maxima
    "percentile": calibrated_range,                                   # what calibrate() uses
    "extremes": lambda lo, hi: (lo.min(), hi.max()),
    "mean": lambda lo, hi: (lo.mean(), hi.mean()),
}


def cifar(counts):
    from tests.runtime.helpers import cifar_test, ternary_resnet20
    x, y = cifar_test(SHARED, 1000)
    model = ternary_resnet20(SHARED, "all")
    with torch.no_grad():
        ref = torch.cat([model(torch.from_numpy(x[i:i + 500])) for i in range(0, len(x), 500)]).numpy()
    pm = to_packed(model)

    def score(p):
        net = Net(p)
        got = np.concatenate([net(x[i:i + 500])[0].reshape(-1, 10) for i in range(0, len(x), 500)])
        return {"top1": float((got.argmax(1) == y).mean() * 100),
                "same_prediction_as_torch": float((got.argmax(1) == ref.argmax(1)).mean() * 100)}

    out = {"model": "pretrained ResNet-20, all layers TWN per channel, BN re-estimated on 1,000 training images",
           "test_images": len(y), "top1_torch": float((ref.argmax(1) == y).mean() * 100), "per_image": score(pm)}
    for n in counts:
        ranges = input_ranges(pm, cifar_test(SHARED, n // 10, split="train")[0])
        out[f"calibrated_{n}"] = {s: score(with_ranges(pm, ranges, STATISTICS[s])) for s in STATISTICS}
        print(n, out[f"calibrated_{n}"], flush=True)
    return out


def bccd(cfg, weights, n_cal):
    from tritnet.darknet import build_darknet, detect_image
    net = build_darknet(cfg, weights)
    pm = to_packed(net)
    folder = SHARED / "bccd"
    train = (folder / "ImageSets" / "Main" / "trainval.txt").read_text().split()
    test = (folder / "ImageSets" / "Main" / "test.txt").read_text().split()
    rt = Net(pm)
    cal = np.concatenate([rt.preprocess(str(folder / "JPEGImages" / f"{i}.jpg"))[0]
                          for i in train[::max(1, len(train) // n_cal)][:n_cal]])
    ranges = input_ranges(pm, cal)
    nets = {"per_image": rt, **{s: Net(with_ranges(pm, ranges, STATISTICS[s])) for s in STATISTICS}}
    found = {k: 0 for k in nets}
    total = 0
    for i in test:
        path = str(folder / "JPEGImages" / f"{i}.jpg")
        ref = detect_image(net, path, thresh=0.25)
        total += len(ref)
        for k, r in nets.items():
            got = r.detect(path, thresh=0.2)         # a box near the threshold may score a little lower
            found[k] += sum(any(b.class_id == a.class_id and max(abs(a.left - b.left), abs(a.top - b.top),
                                                                  abs(a.right - b.right), abs(a.bottom - b.bottom)) <= 2
                                for b in got) for a in ref)
    return {"cfg": str(cfg), "weights": str(weights), "calibration_images": n_cal, "test_images": len(test),
            "torch_detections_at_0.25": total, "found_within_2px": found}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cifar-images", default="100,500", help="calibration image counts (multiples of 10)")
    ap.add_argument("--detector", nargs=2, metavar=("CFG", "WEIGHTS"), help="a trained ternary BCCD detector")
    ap.add_argument("--detector-images", type=int, default=64)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "calibration_accuracy.json"))
    a = ap.parse_args()
    r = {**run_info(), "cifar10": cifar([int(n) for n in a.cifar_images.split(",")])}
    if a.detector:
        r["bccd"] = bccd(*a.detector, a.detector_images)
        print(r["bccd"])
    tmp = Path(a.out).with_suffix(".tmp")
    tmp.write_text(json.dumps(r, indent=1))
    tmp.replace(a.out)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
