"""BCCD benchmark for AlexeyAB's yolov4-tiny: float and all-ternary (TWN on every conv) at the same iteration
budget, from darknet's initialisation, at a small input size, on the CPU.

    python bench/yolov4tiny_bccd.py --size 224 --max-batches 3000 --out runs/bench_yolov4tiny --resume

Steps, as a darknet user would take them:
1. ``voc_label``: the BCCD VOC tree (../shared/data/bccd) → darknet lists and labels in OUT (trainval to train
   on, test to score on); the two zero-area boxes are reported and skipped;
2. ``yolov4-tiny.cfg`` (AlexeyAB's, read in the alexeyab dialect: its yolo heads train with AlexeyAB's loss,
   CIoU with iou_normalizer .07 and scale_x_y 1.05) edited for 3 classes (filters = 3·(5 + 3) = 24 before each
   head), ``--size`` x ``--size`` and the run's [net] schedule; the ternary variant has ``ternary=1`` on all
   21 convs (the heads' convs included);
3. ``detector train`` (no pretrained backbone: none is in the shared data), the cfg's own augmentation;
4. ``detector map`` on the 72 test images (mAP@0.5, VOC2007 11-point and area under the curve), the
   network's speed in PyTorch, and for the ternary variant the packed model (2 bits) in tritnet_rt against
   OpenVINO int8 with ``tritnet.export.bench`` (same input, batch 1, ``--threads``). When the export or a
   baseline cannot run the model, the reason is recorded in ``speed`` (and, for OpenVINO int8, OpenVINO f32
   is timed instead, marked as such); mAP is reported either way.

Prints one JSON line per variant and writes OUT/results.json (with the command line, CPU, threads and date).
``--resume`` keeps variants an earlier run finished and continues a killed training from its checkpoint;
``--retime`` only times the finished ternary model again.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _meta import run_info  # noqa: E402
from tritnet.atomic import write_text_atomic  # noqa: E402

VARIANTS = {"float": False, "ternary": True}
CFG = SHARED / "darknet" / "cfg" / "yolov4-tiny.cfg"


def make_cfg(out: Path, name: str, ternary: bool, a) -> Path:
    from tritnet import darknet as dn
    from tritnet.yolo import set_classes, set_schedule
    cfg = dn.parse_cfg(CFG)
    if cfg.dialect != "alexeyab":
        raise SystemExit(f"{CFG}: read in the {cfg.dialect} dialect, expected alexeyab")
    set_classes(cfg, 3)
    set_schedule(cfg, batch=a.batch, subdivisions=a.subdivisions, learning_rate=a.lr, burn_in=a.burn_in,
                 max_batches=a.max_batches, policy="steps",
                 steps=[int(a.max_batches * 0.8), int(a.max_batches * 0.9)], scales=[0.1, 0.1])
    cfg.net.set("width", a.size)
    cfg.net.set("height", a.size)
    if ternary:
        dn.set_ternary(cfg)
    path = out / f"{name}.cfg"
    path.write_text(dn.dump_cfg(cfg))
    return path


def inference_speed(cfg: Path, weights: Path, method, images, batch: int) -> float:
    """PyTorch network images/s (inputs ready, forward only) at ``batch``."""
    import torch
    from tritnet.darknet import build_darknet
    net = build_darknet(str(cfg), str(weights), method)
    x = torch.from_numpy(images)
    with torch.no_grad():
        net(x[:batch])
        start, n = time.perf_counter(), 0
        for i in range(0, len(x) - batch + 1, batch):
            net(x[i:i + batch])
            n += batch
    return n / (time.perf_counter() - start)


def _error(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"[:500]


def packed_speed(cfg: Path, weights: Path, path: Path, threads: int, rounds: int) -> dict:
    """The trained ternary detector packed at 2 bits and timed by tritnet.export.bench's harness: tritnet_rt vs
    OpenVINO int8 (and PyTorch, whose outputs are the agreement reference), on BCCD images, batch 1."""
    from tritnet.darknet import build_darknet
    from tritnet.export import save, to_packed
    from tritnet.export.bench import bench_file
    r: dict = {"threads": threads, "batch": 1}
    try:
        net = build_darknet(str(cfg), str(weights), "twn")
        r["packed_bytes"] = save(to_packed(net), path)
    except Exception as e:                        # the packed export does not take this network (yet)
        r["measured"] = False
        r["error"] = f"packed export: {_error(e)}"
        return r
    images = SHARED / "bccd" / "JPEGImages"
    for tools, note in ((("runtime", "torch", "ov_int8"), None),
                        (("runtime", "torch", "ov_fp32"), "OpenVINO int8 could not run this model; OpenVINO f32 "
                                                          "timed instead"),
                        (("runtime", "torch"), "no OpenVINO baseline could run this model")):
        try:
            b = bench_file(path, batch=1, threads=threads, rounds=rounds, tools=tools, calibration=images)
        except Exception as e:
            r.setdefault("errors", {})["+".join(tools)] = _error(e)
            continue
        r.update(measured=True, tools=b["tools"], agreement=b["agreement"],
                 agreement_reference=b["agreement_reference"], machine=b["machine"], calls=b["calls"])
        if note:
            r["note"] = note
        for name, t in b["tools"].items():
            r[f"{name}_ms"] = t["median_ms"]
        base = "ov_int8" if "ov_int8" in tools else "ov_fp32" if "ov_fp32" in tools else None
        if base:
            r["runtime_vs_" + base] = b["tools"][base]["runtime_is"]
        return r
    r["measured"] = False
    return r


def retime(out: Path, a) -> dict:
    """The speed step alone, on the ternary variant a finished run left in ``out``."""
    results = json.loads((out / "results.json").read_text())
    if "ternary" not in results:
        raise SystemExit(f"{out / 'results.json'}: no finished ternary variant to time")
    name = "yolov4-tiny_bccd_ternary"
    results["ternary"]["speed"] = {**packed_speed(out / f"{name}.cfg", out / f"backup_ternary/{name}_final.weights",
                                                  out / f"{name}.tnp", a.threads, a.rounds),
                                   "retimed": run_info()}
    print(json.dumps({"ternary": {"speed": results["ternary"]["speed"]}}), flush=True)
    write_text_atomic(out / "results.json", json.dumps(results, indent=2))
    return results


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/bench_yolov4tiny")
    p.add_argument("--variants", default="float,ternary", help=f"any of {', '.join(VARIANTS)}")
    p.add_argument("--size", type=int, default=224, help="network width = height (a multiple of 32)")
    p.add_argument("--max-batches", type=int, default=3000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--subdivisions", type=int, default=1)
    p.add_argument("--lr", type=float, default=0.00261, help="yolov4-tiny.cfg's learning_rate")
    p.add_argument("--burn-in", type=int, default=200)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=2, help="threads of the speed comparison")
    p.add_argument("--rounds", type=int, default=5, help="rounds of the speed comparison")
    p.add_argument("--resume", action="store_true", help="keep finished variants; continue killed runs")
    p.add_argument("--retime", action="store_true", help="only time the finished ternary variant's packed model "
                                                          "again (e.g. on a quiet machine) and update OUT/results.json")
    a = p.parse_args(argv)
    if a.size % 32:
        raise SystemExit(f"--size {a.size}: yolov4-tiny needs a multiple of 32")
    import torch
    from tritnet_rt.detect import from_uint8, letterbox
    from tritnet.yolo import DetectorTrainConfig, map_detector, open_data, train_detector, voc_label
    from tritnet.yolo.loader import decode

    out = Path(a.out).resolve()
    if a.retime:
        return retime(out, a)
    out.mkdir(parents=True, exist_ok=True)
    conv = voc_label([SHARED / "bccd"], out / "bccd", ["trainval"], ["test"], names=["RBC", "WBC", "Platelets"],
                     name="bccd")
    data = Path(conv["data"])
    test = open_data(data).records("valid")
    images = np.stack([letterbox(from_uint8(decode(r.image)), a.size, a.size) for r in test])
    results = {"run": run_info(), "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                                              "load_before": os.getloadavg()},
               "model": {"cfg": str(CFG), "size": a.size, "start": "darknet initialisation (no pretrained weights)"},
               "conversion": {k: conv[k] for k in ("images", "boxes", "skipped")}}
    done = json.loads((out / "results.json").read_text()) if (out / "results.json").is_file() else {}
    for variant in a.variants.split(","):
        ternary = VARIANTS[variant]
        name = f"yolov4-tiny_bccd_{variant}"
        if a.resume and variant in done:
            results[variant] = done[variant]
            continue
        cfg = make_cfg(out, name, ternary, a)
        backup = out / f"backup_{variant}"
        t0 = time.time()
        ckpt = backup / f"{name}.ckpt"
        r = train_detector(DetectorTrainConfig(str(data), str(cfg), None, method="twn", backup=str(backup),
                                               workers=a.workers, progress=False,
                                               resume=a.resume and ckpt.is_file()))
        train_s = time.time() - t0
        with open(r.get("log") or backup / f"{name}_log.csv") as f:      # the run folder's results.csv
            log = list(csv.DictReader(f))
        final = backup / f"{name}_final.weights"
        m = map_detector(data, str(cfg), str(final), method="twn", workers=a.workers)
        res = m["result"]
        results[variant] = {
            "train_minutes": train_s / 60, "iterations": r["iterations"], "images_seen": r["seen"],
            "train_images_per_s": statistics.mean(float(x["images_per_s"]) for x in log),
            "first_loss": float(log[0]["loss"]), "final_avg_loss": r["avg_loss"],
            "final_avg_iou": float(log[-1]["avg_iou"] or "nan"),
            "map_voc2007": res.map11, "map_auc": res.map,
            "ap_voc2007": {c.name: c.ap11 for c in res.classes}, "ap_auc": {c.name: c.ap for c in res.classes},
            "avg_iou": res.avg_iou, "precision": res.precision, "recall": res.recall, "f1": res.f1,
            "tp": res.tp, "fp": res.fp, "fn": res.fn,
            "eval_images_per_s_end_to_end": m["images_per_s"],
            "torch_images_per_s_b1": inference_speed(cfg, final, "twn", images, 1),
            "load_after": os.getloadavg(), **{k: r[k] for k in ("iteration_seconds",) if k in r}}
        if ternary:
            try:
                results[variant]["speed"] = packed_speed(cfg, final, out / f"{name}.tnp", a.threads, a.rounds)
            except Exception as e:                 # never lose the trained variant's mAP to the speed step
                traceback.print_exc()
                results[variant]["speed"] = {"measured": False, "error": _error(e)}
        print(json.dumps({variant: results[variant]}), flush=True)
        write_text_atomic(out / "results.json", json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
