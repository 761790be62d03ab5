"""The darknet verbs of the ``tritnet`` command: ``detector test``, ``partial``, ``info``.

``add_parsers(subparsers)`` adds them to the main parser; ``VERBS`` maps ``(verb, action)`` to the
function that runs one. Each function is argv → one library call → printed result, nothing else.
Darknet's own argument order is kept (``detector test DATA CFG WEIGHTS IMAGE``, ``partial CFG WEIGHTS
OUT N``), so a darknet command line works after replacing ``./darknet`` with ``tritnet`` (the flags
are ``--thresh``/``--nms`` instead of ``-thresh``/``-nms``).
"""
from __future__ import annotations

import argparse
import json
import time

from tritnet_rt.cliargs import existing_file, fraction, nonnegative_int, output_file

DIALECTS = ("pjreddie", "alexeyab")     # tritnet.darknet.DIALECTS, without importing the package for --help


def _dialect(p):
    p.add_argument("--dialect", choices=DIALECTS, default=None,
                   help="read the cfg as this darknet reads it (default: decided by the file: alexeyab when a layer "
                        "uses something only AlexeyAB's darknet reads)")


def add_parsers(sub):
    """Add the darknet verbs; returns the `detector` sub-parsers so training verbs can join them."""
    det = sub.add_parser("detector", help="run darknet detectors (region/yolo cfgs)")
    dsub = det.add_subparsers(dest="action", required=True)
    t = dsub.add_parser("test", help="detect objects in one image, as `darknet detector test`")
    t.add_argument("data", type=existing_file(".data file"), help=".data file (names=, classes=)")
    t.add_argument("cfg", type=existing_file("cfg file"), help="darknet .cfg")
    t.add_argument("weights", type=existing_file("weights file"), help="darknet .weights")
    t.add_argument("image", type=existing_file("image"))
    t.add_argument("--thresh", type=fraction, default=0.24, help="probability threshold (default .24)")
    t.add_argument("--hier", type=fraction, default=0.5,
                   help="hierarchy threshold; only used by softmax trees, which tritnet does not support")
    t.add_argument("--nms", type=fraction, default=0.45, help="NMS IoU threshold (default .45; 0 disables)")
    t.add_argument("--nms-kind", choices=["sort", "obj"], default="sort",
                   help="sort: per class, as `detector test` (default); obj: by objectness, as python/darknet.py")
    t.add_argument("--method", choices=["twn", "ttn", "sttn", "float", "darknettwn"], default="twn",
                   help="ternarizer for ternary=1 layers; float runs the stored weights as darknet does; "
                        "darknettwn: darknetTWN's own ternarization, bit for bit")
    t.add_argument("--per-channel", action="store_true", help="twn/ttn: one scale per output channel")
    t.add_argument("--letter-box", action="store_true",
                   help="AlexeyAB's -letter_box: letterbox the image instead of stretching it (pjreddie always does)")
    _dialect(t)
    t.add_argument("--out", type=output_file("image with the boxes", empty_ok=True), default="predictions.jpg",
                   help="image with the boxes ('' to skip)")
    t.add_argument("--json", action="store_true", help="print the detections as JSON")

    p = sub.add_parser("partial", help="the first N layers of a .weights file, as `darknet partial`")
    p.add_argument("cfg", type=existing_file("cfg file"))
    p.add_argument("weights", type=existing_file("weights file"))
    p.add_argument("out", type=output_file("weights file to write"))
    p.add_argument("n", type=nonnegative_int, help="keep layers 0..N-1")
    p.add_argument("--zero-ternary", action="store_true",
                   help="write zeros for ternary=1 convs, as darknetTWN's partial does (its bug)")
    _dialect(p)

    i = sub.add_parser("info", help="darknet's layer table (filters, size, input -> output, BFLOPs, ternary)")
    i.add_argument("cfg", type=existing_file("cfg file"))
    i.add_argument("weights", type=existing_file("weights file"), nargs="?",
                   help="also check a .weights file against the cfg")
    i.add_argument("--json", action="store_true")
    _dialect(i)
    return dsub


def cmd_detector_test(a: argparse.Namespace) -> None:
    from .darknet import build_darknet, detect_image, names_from_data
    from tritnet_rt.detect import draw_detections, format_detection
    names = names_from_data(a.data)
    from .darknet.network import quant_options
    method = None if a.method == "float" else a.method
    net = build_darknet(a.cfg, a.weights, method, dialect=a.dialect,
                        **quant_options(None if method == "darknettwn" else method, a.per_channel))
    start = time.time()
    dets = detect_image(net, a.image, a.thresh, a.nms, names, a.nms_kind, a.letter_box)
    took = time.time() - start
    if a.out:
        classes = net.infos[net.head_indices[-1]].attrs["classes"]
        im = draw_detections(a.image, dets, classes)
        im.save(a.out, **({"quality": 80} if a.out.lower().endswith((".jpg", ".jpeg")) else {}))
    if a.json:
        print(json.dumps({"image": a.image, "detections": [d.to_dict() for d in dets],
                          "output": a.out or None}, indent=2))
        return
    print(f"{a.image}: Predicted in {took:f} seconds.")
    if net.dialect == "alexeyab":     # -ext_output's box: rounded, not clamped
        from PIL import Image
        from .darknet.detect_alexeyab import format_detection_v3
        with Image.open(a.image) as im:
            im_w, im_h = im.size
        for d in dets:
            print(format_detection_v3(d, im_w, im_h))
        return
    for d in dets:
        print(format_detection(d))


def cmd_partial(a: argparse.Namespace) -> None:
    from .darknet import parse_cfg, partial
    size = partial(parse_cfg(a.cfg, dialect=a.dialect), a.weights, a.out, a.n, zero_ternary=a.zero_ternary)
    print(f"Saving weights to {a.out} ({size} bytes)")


def cmd_info(a: argparse.Namespace) -> None:
    from dataclasses import asdict

    from .darknet import layer_table, load_weights, parse_cfg
    from .darknet._schema import DESCRIPTIONS
    cfg = parse_cfg(a.cfg, dialect=a.dialect)
    table = layer_table(cfg)
    w = load_weights(cfg, a.weights, prefix=True) if a.weights else None   # a prefix is reported as one
    why = "--dialect" if cfg.dialect_reason == "given" else cfg.dialect_reason
    if a.json:
        out = {"cfg": a.cfg, "dialect": cfg.dialect, "dialect_reason": why, "layers": [asdict(r) for r in table.rows],
               "total_params": table.total_params, "total_bflops": table.total_bflops}
        if w is not None:
            out["weights"] = {"path": a.weights, "header": asdict(w.header), "filled": w.filled,
                              "complete": w.complete, "end_layer": w.end_layer}
        print(json.dumps(out, indent=2))
        return
    print(f"Dialect: {cfg.dialect} (read as {DESCRIPTIONS[cfg.dialect]} read it: {why})")
    print(table)
    if w is not None:
        h = w.header
        state = "complete" if w.complete else f"a prefix: ends before layer {w.end_layer}"
        print(f"Weights: {a.weights}: v{h.major}.{h.minor}.{h.revision}, seen {h.seen}, "
              f"{w.filled} layers with values ({state})")


VERBS = {("detector", "test"): cmd_detector_test, ("partial", None): cmd_partial, ("info", None): cmd_info}
