"""The darknet verbs of the ``tritnet`` command: ``detector test``, ``partial``, ``info``.

``add_parsers(subparsers)`` adds them to the main parser; ``VERBS`` maps ``(verb, action)`` to the
function that runs one. Each function is argv → one library call → printed result, nothing else.
Darknet's own argument order is kept (``detector test DATA CFG WEIGHTS IMAGE``, ``partial CFG WEIGHTS
OUT N``), and darknet's single-dash flags (``-thresh``, ``-ext_output``, ``-dont_show``, …) are aliases of the
long options, so a darknet command line works after replacing ``./darknet`` with ``tritnet``. ``detector test``
takes several inputs: images, folders, globs, darknet lists (``tritnet_rt.sources``).
"""
from __future__ import annotations

import argparse
import json

from tritnet_rt.cliargs import (add_prediction_options, existing_file, fraction, nonnegative_int, output_file,
                                prediction_kwargs, source_list)

DIALECTS = ("pjreddie", "alexeyab")     # tritnet.darknet.DIALECTS, without importing the package for --help


def _dialect(p):
    p.add_argument("--dialect", choices=DIALECTS, default=None,
                   help="read the cfg as this darknet reads it (default: decided by the file: alexeyab when a layer "
                        "uses something only AlexeyAB's darknet reads)")


def add_parsers(sub):
    """Add the darknet verbs; returns the `detector` sub-parsers so training verbs can join them."""
    det = sub.add_parser("detector", help="run darknet detectors (region/yolo cfgs)")
    dsub = det.add_subparsers(dest="action", required=True)
    t = dsub.add_parser("test", help="detect objects in images, folders, globs or lists, as `darknet detector test`")
    t.add_argument("data", type=existing_file(".data file"), help=".data file (names=, classes=)")
    t.add_argument("cfg", type=existing_file("cfg file"), help="darknet .cfg")
    t.add_argument("weights", type=existing_file("weights file"), help="darknet .weights")
    add_prediction_options(t, save_default=True, video=False)
    t.add_argument("--thresh", "-thresh", type=fraction, default=0.24, help="probability threshold (default .24)")
    t.add_argument("--hier", "-hier", type=fraction, default=0.5,
                   help="hierarchy threshold; only used by softmax trees, which tritnet does not support")
    t.add_argument("--nms", type=fraction, default=0.45, help="NMS IoU threshold (default .45; 0 disables)")
    t.add_argument("--nms-kind", choices=["sort", "obj"], default="sort",
                   help="sort: per class, as `detector test` (default); obj: by objectness, as python/darknet.py")
    t.add_argument("--method", choices=["twn", "ttn", "sttn", "float", "darknettwn"], default="twn",
                   help="ternarizer for ternary=1 layers; float runs the stored weights as darknet does; "
                        "darknettwn: darknetTWN's own ternarization, bit for bit")
    t.add_argument("--per-channel", action="store_true", help="twn/ttn: one scale per output channel")
    t.add_argument("--letter-box", "-letter_box", action="store_true",
                   help="AlexeyAB's -letter_box: letterbox the image instead of stretching it (pjreddie always does)")
    t.add_argument("--ext-output", "-ext_output", action="store_true",
                   help="accepted for darknet's -ext_output: the boxes are always printed")
    t.add_argument("--json-out", "-out", type=output_file("JSON results file"), default=None,
                   help="also write every result into this file as AlexeyAB's -out does (a JSON array of frame_id, "
                        "filename, objects)")
    _dialect(t)

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


def _darknet_json(frames: list) -> str:
    """AlexeyAB's ``-out result.json``: one object per picture, boxes relative to the image."""
    out = []
    for i, (name, dets) in enumerate(frames, 1):
        out.append({"frame_id": i, "filename": name, "objects": [
            {"class_id": d["class_id"], "name": d["class"],
             "relative_coordinates": {"center_x": d["relative"]["x"], "center_y": d["relative"]["y"],
                                      "width": d["relative"]["w"], "height": d["relative"]["h"]},
             "confidence": d["probability"]} for d in dets]})
    return json.dumps(out, indent=1)


def cmd_detector_test(a: argparse.Namespace) -> None:
    from tritnet_rt.detect import draw_detections, format_detection, from_uint8
    from tritnet_rt.sources import predict
    sources = source_list(a)                  # every input exists before the network is built
    from .darknet import build_darknet, detect_image, names_from_data
    from .quant import method_name, ternarizer_options
    names = names_from_data(a.data)
    method = method_name(a.method)
    net = build_darknet(a.cfg, a.weights, method, dialect=a.dialect,
                        **ternarizer_options(None if method == "darknettwn" else method, per_channel=a.per_channel))
    classes = net.infos[net.head_indices[-1]].attrs["classes"] if net.head_indices else 0
    if net.dialect == "alexeyab":     # -ext_output's box: rounded, not clamped
        from .darknet.detect_alexeyab import format_detection_v3

        def line(d, w, h):
            return format_detection_v3(d, w, h)
    else:
        def line(d, w, h):
            return format_detection(d)
    results = []

    def infer(frame):
        dets = detect_image(net, from_uint8(frame.rgb), a.thresh, a.nms, names, a.nms_kind, a.letter_box)
        h, w = frame.rgb.shape[:2]
        records = [d.to_dict() for d in dets]
        results.append((frame.name, records))
        return ({"detections": records}, [line(d, w, h) for d in dets],
                lambda im: draw_detections(im, dets, classes))
    try:
        predict(sources, infer, **prediction_kwargs(a, save_default=True))
    finally:
        if a.json_out and results:
            from .atomic import write_bytes_atomic
            write_bytes_atomic(a.json_out, _darknet_json(results).encode())


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
