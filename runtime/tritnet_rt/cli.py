"""``tritnet-rt``: the runtime's own command (no PyTorch), for the device a packed model runs on.

    tritnet-rt run model.tnp image.jpg [--json]     # top-5 classes, or detections (+ predictions.jpg)
    tritnet-rt info model.tnp [--json]              # what the file holds: model, layers, sizes, kernel paths
    tritnet-rt time model.tnp [--batch 1 --threads 2]

``tritnet run`` is the same ``run`` (tritnet adds ``export`` and ``bench`` against PyTorch and ONNX Runtime).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .cliargs import Parser, existing_file, fraction, output_file, positive_int, run_main


def add_run_arguments(r: argparse.ArgumentParser) -> None:
    r.add_argument("file", type=existing_file("packed file"), help="packed model (.tnp)")
    r.add_argument("image", type=existing_file("image"))
    r.add_argument("--top", type=positive_int, default=5)
    r.add_argument("--thresh", type=fraction, default=0.24)
    r.add_argument("--nms", type=fraction, default=0.45)
    # no default here: argparse would check it, and a classifier run (which writes nothing) would then need a
    # writable working folder
    r.add_argument("--out", type=output_file("image with the boxes", empty_ok=True), default=None,
                   help="detectors: image with the boxes (default predictions.jpg; '' to skip)")
    r.add_argument("--threads", type=positive_int, default=None)
    r.add_argument("--isa", default=None, help="force a kernel path (serial, avx2, avx512, amx, neon, dotprod, i8mm; "
                   "`tritnet-rt info FILE` lists those this CPU runs)")
    r.add_argument("--json", action="store_true")


def _setup(a):
    """The runtime with --isa and --threads applied (the parser has checked both), and the loaded file."""
    import tritnet_rt
    if getattr(a, "isa", None):
        tritnet_rt.set_isa(a.isa)
    if getattr(a, "threads", None) is not None:
        tritnet_rt.set_num_threads(a.threads)
    return tritnet_rt, tritnet_rt.load(a.file)


def run(a: argparse.Namespace) -> None:
    rt, net = _setup(a)
    start = time.perf_counter()
    if net.model.get("task") == "detect":
        dets = net.detect(a.image, a.thresh, a.nms)
        took = time.perf_counter() - start
        out = "predictions.jpg" if a.out is None else a.out
        if out:
            from .detect import draw_detections
            classes = next(n["attrs"]["classes"] for n in net.pm.graph["nodes"] if n["name"] == net.outputs[-1])
            draw_detections(a.image, dets, classes).save(out)
        if a.json:
            print(json.dumps({"image": a.image, "detections": [d.to_dict() for d in dets], "output": out or None,
                              "seconds": took, "isa": rt.get_isa()}, indent=2))
            return
        from .detect import format_detection
        print(f"{a.image}: Predicted in {took:f} seconds ({rt.get_isa()}).")
        for d in dets:
            print(format_detection(d))
        return
    top = net.classify(a.image, a.top)
    if a.json:
        print(json.dumps({"image": a.image, "top": top, "isa": rt.get_isa()}, indent=2))
        return
    print("\n".join(f"{t['probability'] * 100:6.2f}%: {t['class']}" for t in top))


def info(a: argparse.Namespace) -> None:
    rt, net = _setup(a)
    pm = net.pm
    ternary = [n["name"] for n in pm.graph["nodes"]
               if "weight" in n.get("tensors", {}) and pm.dtypes[n["tensors"]["weight"]].startswith("tern")]
    weighted = [n for n in pm.graph["nodes"] if "weight" in n.get("tensors", {})]
    out = {"file": a.file, "bytes": Path(a.file).stat().st_size, "format_version": ".".join(map(str, pm.version)),
           "model": {k: v for k, v in pm.model.items() if k != "classes"}, "classes": len(pm.model.get("classes") or []),
           "nodes": len(pm.graph["nodes"]), "layers_with_weights": len(weighted), "ternary_layers": len(ternary),
           "weight_dtypes": sorted({pm.dtypes[n["tensors"]["weight"]] for n in weighted}),
           "kernel_paths": rt.capabilities(), "threads": rt.get_num_threads()}
    if a.json:
        print(json.dumps(out, indent=2))
        return
    for k, v in out.items():
        print(f"{k}: {v}")


def time_model(a: argparse.Namespace) -> None:
    import numpy as np
    rt, net = _setup(a)
    x = np.random.default_rng(0).random((a.batch, *net.input_shape), dtype=np.float32)
    net(x)
    times = []
    for _ in range(a.repeat):
        t = time.perf_counter()
        net(x)
        times.append(time.perf_counter() - t)
    ms = 1e3 * float(np.median(times))
    out = {"file": a.file, "batch": a.batch, "threads": rt.get_num_threads(), "isa": rt.get_isa(),
           "median_ms": ms, "images_per_s": a.batch * 1e3 / ms}
    print(json.dumps(out, indent=2) if a.json else
          f"{a.file}: batch {a.batch}, {out['threads']} thread(s), {out['isa']}: {ms:.3f} ms "
          f"({out['images_per_s']:.1f} images/s)")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="tritnet-rt", description="Run packed ternary models (.tnp) on the CPU.")
    from . import __version__
    p.add_argument("--version", action="version", version=f"tritnet-rt {__version__}")
    sub = p.add_subparsers(dest="verb", required=True)
    add_run_arguments(sub.add_parser("run", help="classify an image or detect objects in it"))
    i = sub.add_parser("info", help="what a packed file holds")
    i.add_argument("file", type=existing_file("packed file"))
    i.add_argument("--json", action="store_true")
    t = sub.add_parser("time", help="median latency of the runtime alone")
    t.add_argument("file", type=existing_file("packed file"))
    t.add_argument("--batch", type=positive_int, default=1)
    t.add_argument("--threads", type=positive_int, default=None)
    t.add_argument("--isa", default=None)
    t.add_argument("--repeat", type=positive_int, default=20)
    t.add_argument("--json", action="store_true")
    return p


VERBS = {"run": run, "info": info, "time": time_model}


def main(argv=None) -> int:
    # FormatError is a ValueError: a broken packed file is a user error too
    return run_main("tritnet-rt", lambda: build_parser().parse_args(argv), lambda a: VERBS[a.verb](a))


if __name__ == "__main__":
    sys.exit(main())
