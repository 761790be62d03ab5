"""BCCD benchmark: ttt5_224_160 from its partial backbone, float and fully ternary (TWN on every conv, one scale
per layer and one per output channel), the same schedule for each, on the CPU.

    python bench/detector_bccd.py --max-batches 3000 --out runs/bench_detector

Steps, as a darknet user would take them:
1. ``voc_label``: the BCCD VOC tree (../shared/data/bccd) → darknet lists and labels in OUT (trainval to
   train on, test to score on); the two zero-area boxes are reported and skipped;
2. ``ttt5_224_160.cfg`` edited for 3 classes (filters = (5 + 3)·5 = 40 on the last conv) and the run's
   [net] schedule; the ternary variant has ``ternary=1`` on all 8 convs;
3. ``detector train`` from ``ttt5_pre_141_conv7.weights`` (layers 0-6), multi-scale as darknet_sdl;
4. ``detector map`` on the test set (letterboxed), inference speed at batch 1 and 8 on this machine (PyTorch),
   and for the ternary variants the packed model in tritnet_rt: its speed and its detections against
   PyTorch's on the 72 test images.

Prints one JSON line per variant and writes OUT/results.json (with the command line, CPU, threads and date).
``ternary_kt`` and ``ternary_pc_kt`` train the ternary variants with knowledge transfer from a float detector
(``--teacher``, e.g. the float variant's final weights: head outputs and feature mimicking, ``distill``).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))


def make_cfg(out: Path, name: str, ternary: bool, a) -> Path:
    from tritnet import darknet as dn
    from tritnet.yolo import set_classes, set_schedule
    cfg = dn.parse_cfg(SHARED / "darknet" / "cfg" / "ttt5_224_160.cfg")
    set_classes(cfg, 3)
    set_schedule(cfg, batch=a.batch, subdivisions=a.subdivisions, learning_rate=a.lr, burn_in=a.burn_in,
                 max_batches=a.max_batches, policy="steps",
                 steps=[int(a.max_batches * 0.8), int(a.max_batches * 0.9)], scales=[0.1, 0.1])
    if ternary:
        dn.set_ternary(cfg)
    path = out / f"{name}.cfg"
    path.write_text(dn.dump_cfg(cfg))
    return path


VARIANTS = {"float": (False, False), "ternary": (True, False), "ternary_pc": (True, True),     # (ternary, per
            "ternary_kt": (True, False), "ternary_pc_kt": (True, True)}                       # channel)


def inference_speed(cfg: Path, weights: Path, method, images, batch: int, repeat: int = 1, per_channel=False) -> float:
    """Network images/s (letterboxed inputs ready, forward only) at ``batch``."""
    import torch
    from tritnet.darknet import build_darknet
    net = build_darknet(str(cfg), str(weights), method, **({"per_channel": True} if per_channel else {}))
    x = torch.from_numpy(images)
    with torch.no_grad():
        net(x[:batch])
        start = time.perf_counter()
        n = 0
        for _ in range(repeat):
            for i in range(0, len(x) - batch + 1, batch):
                net(x[i:i + batch])
                n += batch
    return n / (time.perf_counter() - start)


def runtime_check(cfg: Path, weights: Path, per_channel: bool, records, path: Path) -> dict:
    """The trained ternary detector packed (2 bits) and run by tritnet_rt: file size, images/s at batch 1 (2
    threads), and its detections against PyTorch's on every test image (same class, box edges within 2 px)."""
    from tritnet.darknet import build_darknet
    from tritnet.export import save, to_packed
    from tritnet.darknet import detect_image
    import tritnet_rt
    net = build_darknet(str(cfg), str(weights), "twn", **({"per_channel": True} if per_channel else {}))
    size = save(to_packed(net), path)
    rt = tritnet_rt.load(path)
    tritnet_rt.set_num_threads(2)
    matched = total = 0
    for r in records:
        ref = [d for d in detect_image(net, r.image, 0.24, 0.45) if d.prob >= 0.3]
        got = rt.detect(r.image, 0.24, 0.45)
        for d in ref:
            total += 1
            matched += any(g.class_id == d.class_id and max(abs(g.left - d.left), abs(g.top - d.top),
                                                            abs(g.right - d.right), abs(g.bottom - d.bottom)) <= 2
                           for g in got)
    x = np.random.default_rng(0).random((1, *rt.input_shape), dtype=np.float32)
    rt(x)
    t = time.perf_counter()
    for _ in range(50):
        rt(x)
    return {"packed_bytes": size, "images_per_s_b1_2threads": 50 / (time.perf_counter() - t),
            "torch_detections_at_0.3": total, "matched_within_2px": matched}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/bench_detector")
    p.add_argument("--variants", default="float,ternary,ternary_pc", help=f"any of {', '.join(VARIANTS)}")
    p.add_argument("--max-batches", type=int, default=320)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--subdivisions", type=int, default=1)
    p.add_argument("--lr", type=float, default=0.002)
    p.add_argument("--burn-in", type=int, default=20)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--resume", action="store_true", help="keep finished variants; continue killed runs")
    p.add_argument("--teacher", default=None, help="float detector .weights teaching the *_kt variants")
    a = p.parse_args(argv)
    import torch
    from tritnet_rt.detect import from_uint8, letterbox
    from tritnet.yolo import DetectorTrainConfig, map_detector, open_data, train_detector, voc_label
    from tritnet.yolo.loader import decode

    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    conv = voc_label([SHARED / "bccd"], out / "bccd", ["trainval"], ["test"], names=["RBC", "WBC", "Platelets"],
                     name="bccd")
    data = Path(conv["data"])
    test = open_data(data).records("valid")
    images = np.stack([letterbox(from_uint8(decode(r.image)), 224, 160) for r in test])
    backbone = SHARED / "darknet" / "weights" / "ttt5_pre_141_conv7.weights"
    sys.path.insert(0, str(ROOT / "bench"))
    from _meta import run_info
    results = {"run": run_info(), "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                                              "load_before": os.getloadavg()},
               "conversion": {k: conv[k] for k in ("images", "boxes", "skipped")}}
    done = json.loads((out / "results.json").read_text()) if (out / "results.json").is_file() else {}
    for variant in a.variants.split(","):
        ternary, per_channel = VARIANTS[variant]
        kt = variant.endswith("_kt")
        if kt and not a.teacher:
            raise SystemExit(f"{variant}: needs --teacher (a float BCCD detector's .weights)")
        name = f"ttt5_bccd_{variant}"
        if a.resume and variant in done:          # finished and scored by an earlier run
            results[variant] = done[variant]
            continue
        cfg = make_cfg(out, name, ternary, a)
        t0 = time.time()
        ckpt = out / f"backup_{variant}" / f"{name}.ckpt"
        r = train_detector(DetectorTrainConfig(str(data), str(cfg), str(backbone), method="twn",
                                               per_channel=per_channel, backup=str(out / f"backup_{variant}"),
                                               workers=a.workers, progress=False, resume=a.resume and ckpt.is_file(),
                                               distill=kt, teacher=str(Path(a.teacher).resolve()) if kt else None))
        train_s = time.time() - t0
        with open(r.get("log") or out / f"backup_{variant}" / f"{name}_log.csv") as f:   # run folder's results.csv
            import csv
            log = list(csv.DictReader(f))
        final = out / f"backup_{variant}" / f"{name}_final.weights"
        m = map_detector(data, str(cfg), str(final), method="twn", per_channel=per_channel, workers=a.workers)
        res = m["result"]
        results[variant] = {
            "train_minutes": train_s / 60, "iterations": r["iterations"], "images_seen": r["seen"],
            "train_images_per_s": statistics.mean(float(x["images_per_s"]) for x in log),
            "train_images_per_s_wall": r["seen"] / train_s,
            "final_avg_loss": r["avg_loss"], "map_voc2007": res.map11, "map_auc": res.map,
            "ap_voc2007": {c.name: c.ap11 for c in res.classes}, "ap_auc": {c.name: c.ap for c in res.classes},
            "avg_iou": res.avg_iou, "precision": res.precision, "recall": res.recall, "f1": res.f1,
            "tp": res.tp, "fp": res.fp, "fn": res.fn,
            "eval_images_per_s_end_to_end": m["images_per_s"],
            "infer_images_per_s_b1": inference_speed(cfg, final, "twn", images, 1, per_channel=per_channel),
            "infer_images_per_s_b8": inference_speed(cfg, final, "twn", images, 8, per_channel=per_channel),
            "load_after": os.getloadavg(), **{k: r[k] for k in ("iteration_seconds", "teacher_seconds",
                                                                 "transfer_overhead") if k in r}}
        if ternary:
            results[variant]["runtime"] = runtime_check(cfg, final, per_channel, test, out / f"{name}.tnp")
        print(json.dumps({variant: results[variant]}), flush=True)
        (out / "results.json").write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
