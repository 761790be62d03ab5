"""The detector verbs of the ``tritnet`` command, in darknet's argument order, darknet's single-dash flags
(``-thresh``, ``-ext_output``, ``-dont_show``, ...) aliases of the long options::

    tritnet detector test   DATA CFG WEIGHTS SOURCE... [-thresh .24] [-ext_output]
    tritnet detector train  DATA CFG [WEIGHTS] [--clear] [--map] [--gpus 0,1]
    tritnet detector map    DATA CFG WEIGHTS [--thresh .25] [--json]
    tritnet detector recall DATA CFG WEIGHTS
    tritnet detector valid  DATA CFG WEIGHTS [--outdir results]
    tritnet detector calc_anchors DATA -num_of_clusters 9 -width 416 -height 416
    tritnet voc_label VOC_ROOT [VOC_ROOT ...] --out DIR [--train trainval] [--valid test]

``add_parsers(subparsers)`` adds ``detector`` with its actions (test, train, map, recall, valid, calc_anchors)
and ``voc_label``; ``VERBS`` maps (verb, action) to the function running it. Each function is argv → one
library call (``tritnet.yolo``) → printed result; user errors are ValueError/FileNotFoundError naming the
file, which the main CLI prints before exiting with status 2.
"""
from __future__ import annotations

import argparse
import json
import sys

from tritnet_rt.cliargs import (add_prediction_options, darknet_ignored, device_ids, existing_dir, existing_file,
                                fraction, json_option, nonnegative_int, output_dir, output_file,
                                positive_int, prediction_kwargs, source_list)

from .options import config_from_args, config_options, dialect_option as _dialect


def _common(p, weights_required: bool = True):
    p.add_argument("data", type=existing_file(".data file"), help=".data file (classes, train, valid, names, backup)")
    p.add_argument("cfg", type=existing_file("cfg file"), help="darknet .cfg")
    if weights_required:
        p.add_argument("weights", type=existing_file("weights file"), help="darknet .weights (or a training .ckpt)")
    p.add_argument("--method", choices=["twn", "ttn", "sttn", "float"], default="twn",
                   help="ternarizer for ternary=1 layers (float: run the stored weights as they are)")
    p.add_argument("--per-channel", action="store_true",
                   help="twn/ttn: one scale per output channel (evaluate as the detector was trained)")


def _run_folder(p, name: str):
    p.add_argument("--project", default="runs/detect", help="run folders go here (default runs/detect)")
    p.add_argument("--name", default=name, help=f"run folder name: {name}, {name}2, ... (never an earlier run's)")
    p.add_argument("--exist-ok", action="store_true", help="use --project/--name as it is")


# Scores on the command line are percent, in text and in --json alike (AP, mAP, precision, recall, F1, IoU);
# the Python objects behind them (MapResult, coco_evaluate's dict) hold fractions.
BOXES_NOTE = {
    "unclipped": "boxes scored unclipped, as darknet's `detector map` (a box reaching past the image keeps its size "
                 "in the IoU); `detector valid` clips them to the image as darknet's valid files do: --clip scores "
                 "those boxes",
    "clipped": "boxes clipped to the image, as darknet's `detector valid` writes them; `detector map` scores them "
               "unclipped as darknet's map does (map --clip: as here; valid --no-clip: as map). COCO's AP50 also "
               "differs from map's AP by its 101-point interpolation, IoU >= .5 (map: > .5) and at most 100 boxes "
               "an image",
}


def _pct(d: dict, keys) -> dict:
    return {k: (100 * v if k in keys and isinstance(v, (int, float)) and v >= 0 else v) for k, v in d.items()}


def _eval_opts(p, letterbox: bool = True):
    if letterbox:
        p.add_argument("--no-letterbox", dest="letterbox", action="store_false",
                       help="stretch images to the network size instead of darknet's letterbox")
    else:   # darknet's recall stretches (resize_image), where test/valid letterbox
        p.add_argument("--letterbox", dest="letterbox", action="store_true",
                       help="letterbox images instead of stretching them as darknet's recall does")
    p.add_argument("--batch", type=positive_int, default=8, help="images per forward pass (default 8)")
    p.add_argument("--workers", type=nonnegative_int, default=2)
    json_option(p, "print the figures as JSON")


def add_parsers(sub) -> None:
    """The ``detector`` verb and its actions (test, train, map, recall, valid, calc_anchors), and ``voc_label``."""
    det = sub.add_parser("detector", help="run, train and score darknet detectors (region/yolo cfgs)")
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


    t = dsub.add_parser("train", help="train a region/yolo detector, as `darknet detector train`")
    from ..yolo import DetectorTrainConfig
    config_options(t, DetectorTrainConfig, positional=("data", "cfg", "weights"), skip=("progress",),
                   checks={"data": existing_file(".data file"), "cfg": existing_file("cfg file"),
                           "weights": existing_file("weights file"), "teacher": existing_file("teacher weights"),
                           "teacher_cfg": existing_file("teacher cfg"), "backup": output_dir("backup folder")})
    t.add_argument("--gpus", "-gpus", type=device_ids, default=None,
                   help="CUDA device ids, e.g. 0,1 (one process each); or use torchrun")
    t.add_argument("--no-progress", action="store_true", help="print darknet's line per iteration instead of a bar")
    json_option(t, "print the result as JSON at the end")
    darknet_ignored(t, "-dont_show", "tritnet never opens a window (the loss chart is chart.png in the run folder)")
    darknet_ignored(t, "-show_imgs", "tritnet never opens a window")

    m = dsub.add_parser("map", help="per-class AP, mAP@0.5 (VOC2007 and AUC), precision/recall/F1, as AlexeyAB's map")
    _common(m)
    m.add_argument("--thresh", "-thresh", type=fraction, default=0.25,
                   help="confidence threshold for TP/FP/FN, F1, IoU (.25)")
    m.add_argument("--iou-thresh", "-iou_thresh", type=fraction, default=0.5)
    m.add_argument("--clip", action="store_true",
                   help="score boxes clipped to the image, as `detector valid` writes them (darknet's map: unclipped)")
    m.add_argument("--plots", action="store_true",
                   help="write confusion_matrix.png, PR_curve.png, F1_curve.png into a new run folder")
    _run_folder(m, "val")
    _eval_opts(m)
    darknet_ignored(m, "-points", "tritnet prints both the VOC2007 11-point AP and the all-point (AUC) AP",
                    takes_value=True)
    darknet_ignored(m, "-dont_show", "tritnet never opens a window")

    r = dsub.add_parser("recall", help="darknet's recall report (proposals, recall, IoU)")
    _common(r)
    r.add_argument("--thresh", "-thresh", type=fraction, default=0.001, help="objectness threshold (darknet: .001)")
    r.add_argument("--iou-thresh", "-iou_thresh", type=fraction, default=0.5)
    r.add_argument("--nms", type=fraction, default=0.4)
    r.add_argument("--quiet", action="store_true", help="only the final line")
    _eval_opts(r, letterbox=False)

    v = dsub.add_parser("valid", help="write VOC comp4 and COCO detection files; COCO mAP@[.5:.95]")
    _common(v)
    v.add_argument("--outdir", type=output_dir("results folder"), default="results")
    v.add_argument("--prefix", "-out", default="comp4_det_test_",
                   help="file name prefix of the VOC files (darknet's -out; default comp4_det_test_)")
    v.add_argument("--format", default="voc,coco", help="voc, coco or voc,coco")
    v.add_argument("--thresh", "-thresh", type=fraction, default=0.005)
    v.add_argument("--nms", type=fraction, default=0.45)
    v.add_argument("--no-coco-eval", dest="coco_eval", action="store_false", help="skip pycocotools")
    v.add_argument("--no-clip", dest="clip", action="store_false",
                   help="write boxes as the network predicted them, as `detector map` scores them (darknet's valid: "
                        "clipped to the image)")
    _eval_opts(v)
    _add_calc_anchors(dsub)
    _add_voc_label(sub)


def _add_calc_anchors(dsub) -> None:
    c = dsub.add_parser("calc_anchors", help="anchors by k-means on 1-IoU over the training boxes, as AlexeyAB's "
                                             "calc_anchors")
    c.add_argument("data", type=existing_file(".data file"), help=".data file (its train= boxes are clustered)")
    c.add_argument("--num-of-clusters", "-num_of_clusters", type=positive_int, default=5,
                   help="anchors to find (darknet's default 5; 9 for yolov3, 6 for the tiny yolos)")
    c.add_argument("--width", "-width", type=positive_int, default=None, help="network width (required)")
    c.add_argument("--height", "-height", type=positive_int, default=None, help="network height (required)")
    c.add_argument("--out", type=output_file("anchors file"), default="anchors.txt",
                   help="where to write the anchors line (default anchors.txt, as darknet; "
                        "counters_per_class.txt goes beside it)")
    c.add_argument("--show", "-show", nargs="?", const="anchors.png", default=None, metavar="PNG",
                   help="plot the boxes and anchors into this PNG (default anchors.png; darknet opens a window)")
    c.add_argument("--restarts", type=positive_int, default=10,
                   help="k-means runs from different random starts; the best average IoU is kept (darknet: 1)")
    c.add_argument("--seed", type=int, default=0)
    json_option(c)


def _add_voc_label(sub) -> None:
    p = sub.add_parser("voc_label", help="Pascal VOC tree(s) → darknet lists, labels and .data (voc_label.py)")
    p.add_argument("roots", type=existing_dir("VOC tree"), nargs="+",
                   help="VOC trees (folders with Annotations/, ImageSets/Main/, JPEGImages/)")
    p.add_argument("--out", type=output_dir(), required=True, help="output folder (never inside a VOC tree)")
    p.add_argument("--train", default="trainval", help="image sets for training, comma-separated")
    p.add_argument("--valid", default="test", help="image sets for validation, comma-separated")
    p.add_argument("--names", default=None, help="class order: a .names file or comma-separated names "
                   "(default: order of first appearance)")
    p.add_argument("--name", default="voc", help="name of the .data and .names files")
    p.add_argument("--copy", action="store_true", help="copy images instead of linking them")
    json_option(p)


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
    from ..darknet import build_darknet, detect_image, names_from_data
    from ..quant import method_name, ternarizer_options
    names = names_from_data(a.data)
    method = method_name(a.method)
    net = build_darknet(a.cfg, a.weights, method, dialect=a.dialect,
                        **ternarizer_options(None if method == "darknettwn" else method, per_channel=a.per_channel))
    if not net.head_indices:
        raise ValueError(f"{a.cfg}: no [region] or [yolo] layer to detect with (a classifier? classifier predict)")
    classes = net.infos[net.head_indices[-1]].attrs["classes"]
    if len(names) < classes:          # darknet reads past its names array; a label would be a bare number
        raise ValueError(f"{a.data}: its names file lists {len(names)} names, {a.cfg} detects {classes} classes")
    if net.dialect == "alexeyab":     # -ext_output's box: rounded, not clamped
        from ..darknet.detect_alexeyab import format_detection_v3

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
            from ..atomic import write_bytes_atomic
            write_bytes_atomic(a.json_out, _darknet_json(results).encode())


def _method(a):
    from ..quant import method_name
    return method_name(a.method)


def _check_gpus(gpus: str) -> None:
    """Every --gpus device exists here, asked the way the trainer will ask (``pick_device``)."""
    from ..train.distributed import pick_device
    for i in gpus.split(","):
        try:
            pick_device(f"cuda:{i}")
        except ValueError as e:
            raise ValueError(f"--gpus {gpus}: {e}") from None


def cmd_train(a: argparse.Namespace) -> None:
    if a.gpus:
        _check_gpus(a.gpus)
    from ..yolo import DetectorTrainConfig, launch
    c = config_from_args(DetectorTrainConfig, a, progress=not (a.no_progress or a.json))
    try:
        r = launch(c, a.gpus)
    except KeyboardInterrupt:
        print("tritnet: interrupted; continue with --resume", file=sys.stderr)
        raise SystemExit(130) from None
    if a.json:
        r = _pct(r, ("map", "map_auc", "best_map"))
        if "classes" in r:
            r["classes"] = [_pct(c, ("precision", "recall", "ap50", "ap50_95")) for c in r["classes"]]
        print(json.dumps(r, indent=2))
    else:
        extra = f", mAP@0.5 {100 * r['map']:.2f}% (best {100 * r['best_map']:.2f}%)" if "map" in r else ""
        print(f"done: {r.get('iterations')} iterations, avg loss {r.get('avg_loss', 0):.4f}{extra}; "
              f"weights in {r.get('backup')}" + (f"; run folder {r['run_dir']}" if r.get("run_dir") else ""))


def cmd_map(a: argparse.Namespace) -> None:
    from ..yolo import map_detector
    from ..yolo.report import format_map
    from ..eval.perclass import format_table
    plots = None
    if a.plots:
        from ..train.runs import new_run_dir
        plots = new_run_dir(a.project, a.name, a.exist_ok)
    r = map_detector(a.data, a.cfg, a.weights, thresh=a.thresh, iou_thresh=a.iou_thresh, method=_method(a),
                     per_channel=a.per_channel, letterbox=a.letterbox, batch=a.batch, workers=a.workers,
                     progress=not a.json, clip=a.clip, plots=plots)
    table = r["classes"].table
    if a.json:
        print(json.dumps({**r["result"].to_dict(percent=True), "units": "percent", "boxes": r["boxes"],
                          "table": [row.to_dict(percent=True) for row in table], "plots": r.get("plots"),
                          "skipped": r["skipped"], "seconds": r["seconds"], "images_per_s": r["images_per_s"]},
                         indent=2))
        return
    print(format_map(r["result"]))
    print(f"\nAP50 and AP50-95 (area under the curve; AP50-95: mean over IoU .50:.05:.95), P and R at "
          f"conf_thresh = {a.thresh:g}, IoU threshold {a.iou_thresh:g} for P and R:")
    print(format_table(table))
    print(f"note: {BOXES_NOTE[r['boxes']]}")
    for what, path in (r.get("plots") or {}).items():
        print(f"saved {what.replace('_', ' ')}: {path}")
    print(f"Total Detection Time: {r['seconds']:.1f} Seconds ({r['images_per_s']:.1f} images/s)")


def cmd_recall(a: argparse.Namespace) -> None:
    from ..yolo import recall_detector
    from ..yolo.report import format_recall_line
    r = recall_detector(a.data, a.cfg, a.weights, thresh=a.thresh, iou_thresh=a.iou_thresh, nms=a.nms,
                        method=_method(a), per_channel=a.per_channel, letterbox=a.letterbox, batch=a.batch,
                        workers=a.workers)
    if a.json:
        print(json.dumps({k: v for k, v in r.items() if k != "lines"}, indent=2))
        return
    lines = r["lines"] if not a.quiet else r["lines"][-1:]
    for line in lines:
        print(format_recall_line(line))


def cmd_valid(a: argparse.Namespace) -> None:
    from ..yolo import valid_detector
    formats = tuple(f.strip() for f in a.format.split(",") if f.strip())
    bad = set(formats) - {"voc", "coco"}
    if bad or not formats:
        raise ValueError(f"--format takes voc, coco or voc,coco, got {a.format!r}")
    r = valid_detector(a.data, a.cfg, a.weights, a.outdir, prefix=a.prefix, formats=formats, thresh=a.thresh,
                       nms=a.nms, coco_eval=a.coco_eval, method=_method(a),
                       per_channel=a.per_channel, letterbox=a.letterbox, batch=a.batch,
                       workers=a.workers, clip=a.clip)
    if "coco" in r:
        r["coco"] = _pct(r["coco"], set(r["coco"]))
    if a.json:
        print(json.dumps({**r, "units": "percent"}, indent=2))
        return
    for name, path in r["written"].items():
        print(f"{name}: {path}")
    if "coco_results" in r:
        print(f"COCO results: {r['coco_results']}")
    if "coco" in r:
        c = r["coco"]
        print(f"COCO mAP@[.50:.95] = {c['AP']:.2f}%  AP50 = {c['AP50']:.2f}%  AP75 = {c['AP75']:.2f}%")
    print(f"note: {BOXES_NOTE[r['boxes']]}")


def _names_option(value: str) -> list:
    """--names: a file of names, or the names themselves, comma-separated. Anything that looks like a path
    (it exists, holds a '/', or ends in .names/.txt) is a file and must be one, so a mistyped file name is an
    error, not a one-class data set named after the path."""
    import os
    from pathlib import Path

    from ..darknet import read_names
    p = Path(value)
    if p.exists() or "/" in value or os.sep in value or p.suffix in (".names", ".txt"):
        try:
            names = read_names(existing_file("names file")(value))
        except ValueError as e:
            raise ValueError(f"--names: {e}") from None
    else:
        names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise ValueError(f"--names {value}: no class names")
    return names


def cmd_voc_label(a: argparse.Namespace) -> None:
    from ..yolo import voc_label
    names = _names_option(a.names) if a.names is not None else None
    split = lambda s: [x.strip() for x in s.split(",") if x.strip()]  # noqa: E731
    r = voc_label(a.roots, a.out, split(a.train), split(a.valid), names, a.name, a.copy)
    if a.json:
        print(json.dumps(r, indent=2))
        return
    print(f"{r['images']} images, {r['boxes']} boxes ({r['difficult_boxes']} difficult), {r['skipped']} skipped; "
          f"classes: {', '.join(r['classes'])}")
    print(f"data file: {r['data']}")


def cmd_calc_anchors(a: argparse.Namespace) -> None:
    if a.width is None or a.height is None:
        raise ValueError("calc_anchors needs the network size: -width W -height H (as in the cfg's [net])")
    from ..yolo.anchors import calc_anchors
    show = a.show
    if show is not None:
        output_file("plot")(show)
    r = calc_anchors(a.data, a.num_of_clusters, a.width, a.height, seed=a.seed, restarts=a.restarts, out=a.out,
                     show=show)
    if a.json:
        print(json.dumps(r.to_dict(), indent=2))
        return
    print(f"num_of_clusters = {a.num_of_clusters}, width = {a.width}, height = {a.height}")
    print(f"read labels from {r.images} images: {r.boxes} boxes")
    print(f"counters_per_class = {', '.join(map(str, r.counters_per_class))}")
    print(f"k-means on 1 - IoU: best of {a.restarts} run(s) (seed {a.seed}), {r.rounds} iterations")
    print(f"avg IoU = {100 * r.avg_iou:2.2f} %")
    print(f"anchors = {r.line}")
    for what, path in r.files.items():
        print(f"saved {what}: {path}")


VERBS = {("detector", "test"): cmd_detector_test, ("detector", "calc_anchors"): cmd_calc_anchors,
         ("detector", "train"): cmd_train, ("detector", "map"): cmd_map, ("detector", "recall"): cmd_recall,
         ("detector", "valid"): cmd_valid, ("voc_label", None): cmd_voc_label}
