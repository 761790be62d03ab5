"""Fixed int8 input scales for the ternary convs, calibrated on real images at export.

Without them every int8 conv finds its input's range image by image (a min/max pass over the whole input before
it quantizes: ResNet-20 runs 13-16% slower with it, BENCHMARKS.md 8c). ``calibrate`` runs the model on calibration images the
dynamic way, records each conv's input range per image, and writes the range it will use from then on into the
conv's ``input_quant`` attribute (scale, zero point: u = clamp(round(x / scale) + zero point, 0, 255)).

The range runs from the 1st percentile over the images of each image's minimum to the 99th percentile of each
image's maximum: a range nearly every image fits in, without the rare outlier image stretching the scale for
every other one; values beyond it saturate at 0 or 255. Measured (bench/calibration_accuracy.py, BENCHMARKS.md
8c): ResNet-20 with every conv ternary, calibrated on 500 CIFAR-10 training images, keeps PyTorch's top-1 on the
test set (45.78 and 45.78; per-image scales 45.73) and its prediction on 97.2% of the images (the extremes over
all images: 96.7%; the mean of the per-image ranges saturates too much: 46.43 and 94.3%); a trained ternary BCCD
detector's 675 detections are found within 2 px but for 3 (extremes 11, mean 22, per-image scales 5).
"""
from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np

from .format import PackedModel
from .native import ext as _ext
from .plan import Prepared, build

MIN_IMAGES = 8
PERCENTILE = 99           # of the per-image maxima (100 - it of the minima): the module says why


def uncalibrated(pm: PackedModel) -> PackedModel:
    """A copy of ``pm`` without ``input_quant``: each image's own range (the tensors are shared)."""
    out = replace(pm, graph=copy.deepcopy(pm.graph))
    for node in out.graph["nodes"]:
        node["attrs"].pop("input_quant", None)
    return out


def input_ranges(pm: PackedModel, images: np.ndarray, batch: int = 8) -> dict:
    """{conv name: (per-image minima, per-image maxima)} of every int8 conv's input (0 included, as the dynamic
    path does), over ``images`` (N, C, H, W) preprocessed for the model, run with dynamic scales."""
    prep = Prepared(uncalibrated(pm))
    convs = [n for n in prep.nodes if n["op"] == "conv" and prep.data[n["name"]].get("path") == "t8"]
    lo = {n["name"]: [] for n in convs}
    hi = {n["name"]: [] for n in convs}
    plans = {}
    for i in range(0, len(images), batch):
        x = np.asarray(images[i:i + batch], np.float32)
        if len(x) not in plans:
            ops, buf, keep = build(prep, len(x), share=False)        # every conv's input survives the run
            plans[len(x)] = (_ext().Plan(ops), buf, keep)
        plan, buf, _ = plans[len(x)]
        buf["input"][...] = x if prep.planar_input else x.transpose(0, 2, 3, 1)
        plan.run()
        for n in convs:
            v = buf[n["inputs"][0]].reshape(len(x), -1)
            lo[n["name"]].append(np.minimum(v.min(1), 0))
            hi[n["name"]].append(np.maximum(v.max(1), 0))
    return {k: (np.concatenate(lo[k]), np.concatenate(hi[k])) for k in lo}


def quant_params(lo: float, hi: float) -> tuple:
    """(scale, zero point) of the range [lo, hi] (lo <= 0 <= hi), the rule of the dynamic path (csrc/ops.c)."""
    scale = np.float32((np.float32(hi) - np.float32(lo)) / np.float32(255))
    if not (scale > 0 and np.isfinite(scale)):
        scale = np.float32(1)
    zp = int(np.clip(np.rint(-np.float32(lo) / scale), 0, 255))
    return float(scale), zp


def calibrated_range(lo: np.ndarray, hi: np.ndarray) -> tuple:
    """The range a conv is fixed to from its per-image minima and maxima (the module says why)."""
    return np.percentile(lo, 100 - PERCENTILE), np.percentile(hi, PERCENTILE)


def with_ranges(pm: PackedModel, ranges: dict, statistic=calibrated_range) -> PackedModel:
    """A copy of ``pm`` whose convs in ``ranges`` ({name: (minima, maxima)}) carry the ``input_quant`` of
    ``statistic(minima, maxima)``; the tensors are shared with ``pm``."""
    out = uncalibrated(pm)
    for node in out.graph["nodes"]:
        if node["name"] in ranges:
            scale, zp = quant_params(*statistic(*ranges[node["name"]]))
            node["attrs"]["input_quant"] = {"scale": scale, "zero_point": zp}
    return out


def calibrate(pm: PackedModel, images: np.ndarray, batch: int = 8) -> PackedModel:
    """A copy of ``pm`` whose int8 convs carry the ``input_quant`` calibrated on ``images`` (N, C, H, W, at
    least ``MIN_IMAGES``, preprocessed as ``Net.preprocess`` does); the tensors are shared with ``pm``."""
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(pm.model["input"]["shape"]):
        raise ValueError(f"calibration images of shape {images.shape}; the model takes (N, "
                         f"{', '.join(map(str, pm.model['input']['shape']))})")
    if len(images) < MIN_IMAGES:
        raise ValueError(f"{len(images)} calibration images: give at least {MIN_IMAGES}")
    return with_ranges(pm, input_ranges(pm, images, batch))
