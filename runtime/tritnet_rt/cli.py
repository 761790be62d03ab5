"""``tritnet-rt``: the runtime's own command (no PyTorch), for the device a packed model runs on.

    tritnet-rt run model.tnp image.jpg [--json]     # top-5 classes, or detections (drawn into runs/predict)
    tritnet-rt run model.tnp images/ 'more/*.jpg' train.txt clip.mp4 0   # folders, globs, lists, video, camera
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

from .cliargs import (Parser, add_prediction_options, existing_file, fraction, json_option, positive_int,
                      prediction_kwargs, run_main, source_list, threads_option)


def add_run_arguments(r: argparse.ArgumentParser) -> None:
    r.add_argument("file", type=existing_file("packed file"), help="packed model (.tnp)")
    add_prediction_options(r, save_default=None, video=True)
    r.add_argument("--top", "-t", type=positive_int, default=5, help="classifiers: classes to print (default 5)")
    r.add_argument("--thresh", "-thresh", type=fraction, default=0.24, help="detectors: probability threshold")
    r.add_argument("--nms", type=fraction, default=0.45, help="detectors: NMS IoU threshold (0 disables)")
    r.add_argument("--ext-output", "-ext_output", action="store_true",
                   help="accepted for darknet's -ext_output: the boxes are always printed")
    threads_option(r, None)
    r.add_argument("--isa", default=None, help="force a kernel path (serial, avx2, avx512, amx, neon, dotprod, i8mm; "
                   "`tritnet-rt info FILE` lists those this CPU runs)")
    activations_option(r)


def activations_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--activations", choices=["int8", "float"], default="int8",
                   help="ternary convs on 8-bit activations (int8, default: fast) or on float ones (darknet's "
                        "float results; a check, not for deployment: its float kernel is many times slower)")


def _setup(a):
    """The runtime with --isa and --threads applied (the parser has checked both), and the loaded file."""
    import tritnet_rt
    if getattr(a, "isa", None):
        tritnet_rt.set_isa(a.isa)
    if getattr(a, "threads", None) is not None:
        tritnet_rt.set_num_threads(a.threads)
    return tritnet_rt, tritnet_rt.load(a.file, activations=getattr(a, "activations", "int8"))


def run(a: argparse.Namespace) -> None:
    """Every input through the packed model: detections (drawn into the run folder) or the top classes (drawn
    with --save); one result a picture, frames per second at the end."""
    from .sources import draw_top, predict
    sources = source_list(a)
    rt, net = _setup(a)
    isa = rt.get_isa()
    header = lambda f, took: f"{f.name}: Predicted in {took:f} seconds ({isa})."   # noqa: E731
    if net.model.get("task") == "detect":
        from .detect import draw_detections, format_detection
        classes = next(n["attrs"]["classes"] for n in net.pm.graph["nodes"] if n["name"] == net.outputs[-1])

        if net.model.get("dialect") == "alexeyab":       # as AlexeyAB's detector test -ext_output prints them
            from .detect.alexeyab import format_detection_v3 as line
        else:
            def line(d, w, h):
                return format_detection(d)

        def infer(frame):
            dets = net.detect(frame.rgb, a.thresh, a.nms)
            h, w = frame.rgb.shape[:2]
            return ({"detections": [d.to_dict() for d in dets], "isa": isa}, [line(d, w, h) for d in dets],
                    lambda im: draw_detections(im, dets, classes))
        predict(sources, infer, header=header, **prediction_kwargs(a, save_default=True))
        return

    def classify(frame):
        top = net.classify(frame.rgb, a.top)
        return ({"top": top, "isa": isa}, [f"{t['probability'] * 100:6.2f}%: {t['class']}" for t in top],
                lambda im: draw_top(im, top))
    predict(sources, classify, header=header, **prediction_kwargs(a, save_default=False))


def info(a: argparse.Namespace) -> None:
    rt, net = _setup(a)
    pm = net.pm
    names = list(pm.model.get("classes") or [])
    # a file written without names holds "0", "1", … (or none): say so rather than list the indices as names
    embedded = bool(names) and names != [str(i) for i in range(len(names))]
    heads = [n for n in pm.graph["nodes"] if n["name"] in net.outputs and "classes" in n.get("attrs", {})]
    count = len(names) or (int(heads[-1]["attrs"]["classes"]) if heads else 0)
    ternary = [n["name"] for n in pm.graph["nodes"]
               if "weight" in n.get("tensors", {}) and pm.dtypes[n["tensors"]["weight"]].startswith("tern")]
    weighted = [n for n in pm.graph["nodes"] if "weight" in n.get("tensors", {})]
    out = {"file": a.file, "bytes": Path(a.file).stat().st_size, "format_version": ".".join(map(str, pm.version)),
           "model": {k: v for k, v in pm.model.items() if k != "classes"}, "classes": count,
           "class_names": names if embedded else None, "names_embedded": embedded,
           "nodes": len(pm.graph["nodes"]), "layers_with_weights": len(weighted), "ternary_layers": len(ternary),
           "weight_dtypes": sorted({pm.dtypes[n["tensors"]["weight"]] for n in weighted}),
           # int8 convs whose input scale was calibrated at export (tritnet export --calibration), of all int8 convs
           "calibrated_int8_convs": f"{sum('input_quant' in n['attrs'] for n in pm.graph['nodes'])} of "
                                    f"{sum(d.get('path') == 't8' for d in net.prep.data.values())}",
           "kernel_paths": rt.capabilities(), "threads": rt.get_num_threads()}
    if a.json:
        print(json.dumps(out, indent=2))
        return
    for k, v in out.items():
        if k == "class_names":
            continue
        if k == "classes":
            v = (f"{v} ({', '.join(names)})" if embedded else
                 f"{v} (no names in the file: `tritnet export … --data FILE.data` or --names embeds them)")
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
           "activations": net.activations, "median_ms": ms, "images_per_s": a.batch * 1e3 / ms}
    print(json.dumps(out, indent=2) if a.json else
          f"{a.file}: batch {a.batch}, {out['threads']} thread(s), {out['isa']}, {net.activations} activations: "
          f"{ms:.3f} ms "
          f"({out['images_per_s']:.1f} images/s)")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="tritnet-rt", description="Run packed ternary models (.tnp) on the CPU.")
    from . import __version__
    p.add_argument("--version", action="version", version=f"tritnet-rt {__version__}")
    sub = p.add_subparsers(dest="verb", required=True)
    add_run_arguments(sub.add_parser("run", help="classify an image or detect objects in it"))
    i = sub.add_parser("info", help="what a packed file holds")
    i.add_argument("file", type=existing_file("packed file"))
    json_option(i)
    t = sub.add_parser("time", help="median latency of the runtime alone")
    t.add_argument("file", type=existing_file("packed file"))
    t.add_argument("--batch", type=positive_int, default=1)
    threads_option(t, None)
    t.add_argument("--isa", default=None)
    t.add_argument("--repeat", type=positive_int, default=20)
    activations_option(t)
    json_option(t)
    return p


VERBS = {"run": run, "info": info, "time": time_model}


def main(argv=None) -> int:
    # FormatError is a ValueError: a broken packed file is a user error too
    return run_main("tritnet-rt", lambda: build_parser().parse_args(argv), lambda a: VERBS[a.verb](a))


if __name__ == "__main__":
    sys.exit(main())
