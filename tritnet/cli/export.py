"""The runtime verbs of the ``tritnet`` command: ``export``, ``run``, ``bench``.

    tritnet export yolov2-tiny-voc.cfg out.tnp --weights w.weights --method twn --onnx out.onnx
    tritnet export resnet20 r20.tnp --pretrained ../shared/data/pretrained/resnet_cifar10 --method twn
    tritnet run out.tnp image.jpg                 # top-5 classes, or the detections (+ predictions.jpg)
    tritnet bench out.tnp --batch 1 --threads 2   # runtime vs PyTorch, ONNX Runtime and OpenVINO

``add_parsers(sub)`` adds them; ``VERBS`` maps (verb, None) to the function that runs one.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from tritnet_rt.cliargs import (existing_file, existing_path, fraction, json_option, output_file, positive_float,
                                positive_int, threads_option)


# ResNet-20 on CIFAR-10 makes PyTorch's prediction on 97.2% of the images calibrated on 500, 96.8% on 100
CALIBRATION_IMAGES = 500


def add_parsers(sub) -> None:
    e = sub.add_parser("export", help="write a packed ternary file (and ONNX, darknet .weights, STTN merge)")
    e.add_argument("source", help="darknet .cfg (with --weights), a tritnet checkpoint, or a model name")
    e.add_argument("out", type=output_file("packed file"), help="the packed file to write (.tnp)")
    e.add_argument("--weights", type=existing_file("weights file"), help="darknet .weights for a .cfg source")
    e.add_argument("--pretrained", type=existing_path("pretrained file or folder"),
                   help="pretrained file or folder for a model-name source")
    e.add_argument("--random-weights", action="store_true",
                   help="a .cfg without --weights or a model name without --pretrained: export the random "
                        "initialisation (for timing and tests; it predicts nothing)")
    e.add_argument("--method", choices=["twn", "ttn", "sttn", "darknettwn", "float", "none"], default=None,
                   help="ternarize with this method before export (default twn; darknet: the ternary=1 layers, or "
                        "all convs with --all-ternary; darknettwn: darknetTWN's own TWN, bit for bit; a tritnet "
                        "checkpoint: its own); 'float' (or 'none') keeps the model as it is (a darknetTWN "
                        "ternarized .weights file is packed ternary either way)")
    e.add_argument("--letter-box", action="store_true",
                   help="AlexeyAB detector cfg: letterbox the input (its -letter_box) instead of its plain resize")
    e.add_argument("--layers", default="all", help="classifiers: all | all_but_first_last | names")
    e.add_argument("--all-ternary", action="store_true", help="darknet: make every conv ternary")
    e.add_argument("--per-channel", action="store_true", help="one scale per output channel")
    e.add_argument("--bits", type=float, choices=[2, 1.6], default=2, help="2 bits a weight or 1.6 (5 trits/byte)")
    e.add_argument("--float-dtype", choices=["f32", "f16"], default="f32", help="storage of float layers")
    e.add_argument("--names", type=existing_file("names file"), help="class names file (one per line)")
    e.add_argument("--data", type=existing_file(".data file"),
                   help="darknet .data file whose names= (or labels=) gives the class names (default: the names "
                        "the source records, or a .data file found beside the cfg or the weights)")
    e.add_argument("--no-names", action="store_true", help="embed no class names")
    e.add_argument("--calibration", type=existing_path("images"),
                   help="folder or .tar(.gz) of real images like the model's inputs: fix each int8 conv's input "
                        "scale from them (faster: no range pass per image) instead of finding it image by image")
    e.add_argument("--calibration-images", type=positive_int, default=CALIBRATION_IMAGES,
                   help=f"--calibration: how many images, spread over the source (default {CALIBRATION_IMAGES}, "
                        "or all there are if fewer; at least 8)")
    e.add_argument("--onnx", type=output_file("ONNX file"), help="also write ONNX here")
    e.add_argument("--onnx-nms", action="store_true",
                   help="detectors: the ONNX file decodes its boxes and applies NonMaxSuppression (outputs boxes, "
                        "scores, selected), so it runs as a detector by itself")
    e.add_argument("--thresh", type=fraction, default=0.24, help="--onnx-nms: score threshold (darknet's -thresh)")
    e.add_argument("--nms", type=fraction, default=0.45, help="--onnx-nms: IoU above which a box is suppressed")
    e.add_argument("--darknet-weights", type=output_file("weights file to write"),
                   help="darknet source: also write .weights with the ternary values")
    e.add_argument("--sttn-merged", type=output_file("checkpoint to write"),
                   help="STTN source: also write the merged checkpoint (one ternary conv a pair)")
    json_option(e)

    from tritnet_rt.cli import add_run_arguments
    add_run_arguments(sub.add_parser("run", help="run a packed file with tritnet_rt (no PyTorch) on images, folders, "
                                                 "globs, lists, videos or a camera"))

    b = sub.add_parser("bench", help="time tritnet_rt against PyTorch fp32, ONNX Runtime fp32/int8 and OpenVINO "
                                     "f32/default/int8 (same input, batch and threads)")
    b.add_argument("file", type=existing_file("packed file"))
    b.add_argument("--batch", type=positive_int, default=1)
    threads_option(b, 1)
    b.add_argument("--rounds", type=positive_int, default=5, help="interleaved rounds (medians reported)")
    b.add_argument("--seconds", type=positive_float, default=0.2,
                   help="the fastest tool's window per round lasts at least this long (sets the calls)")
    b.add_argument("--calls", type=positive_int, help="timed calls per tool per round (instead of --seconds)")
    b.add_argument("--tools", help="comma-separated, default runtime, torch, ort_fp32, ort_int8, ov_fp32, "
                                   "ov_default, ov_int8; also runtime_dynamic (a calibrated file without its fixed "
                                   "int8 scales)")
    b.add_argument("--calibration", type=existing_path("images"),
                   help="folder or .tar(.gz) of real images like the model's inputs, for the input and the int8 "
                        "calibration (default: the data root's CIFAR-10 for a classifier, BCCD for a detector;"
                        " tritnet.paths)")
    b.add_argument("--memory", action="store_true",
                   help="also the peak resident memory of a fresh process per tool")
    json_option(b)


def _untrained(a, what: str) -> None:
    """Refuse to export a random initialisation unless asked to: it runs, and answers nonsense."""
    if not a.random_weights:
        raise ValueError(f"{a.source}: no {what} given, so the export would hold random weights; pass {what} "
                         "(or --random-weights if that is what you want)")


def _load_source(a):
    """(model, "darknet" | "classifier", class names the source itself records or None)."""
    from tritnet.models import load_model, source_kind
    src, kind = a.source, source_kind(a.source)
    method = a.method or (None if kind == "checkpoint" else "twn")      # a checkpoint records its own
    if method == "darknettwn" and kind != "cfg":
        raise ValueError("--method darknettwn is darknetTWN's ternarization of a darknet .cfg's ternary=1 layers")
    if kind == "cfg":
        existing_file("cfg file")(src)
        if not a.weights:
            _untrained(a, "--weights")
        loaded = load_model(src, a.weights, method=method, layers="all" if a.all_ternary else None,
                            per_channel=a.per_channel)
        return getattr(loaded.model, "net", loaded.model), "darknet", None   # a darknet classifier's network
    if kind == "model":
        if not a.pretrained:
            _untrained(a, "--pretrained")
        loaded = load_model(src, a.pretrained, method=method, layers=a.layers, per_channel=a.per_channel)
    else:
        existing_file("checkpoint")(src)
        loaded = load_model(src, method=method, layers=None if a.layers == "all" else a.layers,
                            per_channel=a.per_channel)
    return loaded.model, "classifier", loaded.class_names


def _data_names(data) -> list:
    from tritnet.darknet import names_from_data
    return names_from_data(data)


def _found_data(a, want) -> tuple:
    """(names, the .data file) of a darknet export whose names nobody gave: a training run's args.yaml beside the
    weights (``data:``), else the .data files beside the cfg or the weights (or one folder up) whose names fit the
    network's ``want`` classes, when they all give the same names; (None, None) otherwise."""
    import yaml
    from tritnet_rt.files import TEXT_LIMIT, read_text
    places = [Path(a.weights).parent, Path(a.weights).parent.parent] if a.weights else []
    for folder in places:
        args = folder / "args.yaml"
        if args.is_file():
            try:
                data = (yaml.safe_load(read_text(args, "args.yaml", TEXT_LIMIT)) or {}).get("data")
            except (yaml.YAMLError, ValueError):
                data = None
            if data and str(data).endswith(".data") and Path(data).is_file():
                return _data_names(data), str(data)
    candidates = {}
    for folder in dict.fromkeys([Path(a.source).parent, *places]):
        for f in sorted(folder.glob("*.data")):
            try:
                from tritnet.darknet.datafile import read_data_cfg
                if not any(k in read_data_cfg(f) for k in ("names", "labels")):
                    continue
                names = _data_names(f)
            except (ValueError, OSError):
                continue
            if want is None or len(names) == want:
                candidates[f] = names
    distinct = {tuple(n) for n in candidates.values()}
    if len(distinct) == 1:
        f = next(iter(candidates))
        return list(next(iter(distinct))), str(f)
    return None, None


def _class_names(a, model, kind, recorded):
    """The names to embed and where they came from: --names, --data, what the source records, a .data file found
    beside it. Checked against the model's class count."""
    from tritnet.darknet import read_names
    if a.no_names:
        return None, None
    if a.names and a.data:
        raise ValueError("--names and --data both give class names; pass one")
    want = None
    if kind == "darknet" and model.head_indices:
        want = model.infos[model.head_indices[-1]].attrs.get("classes")
    if a.names:
        names, origin = read_names(a.names), a.names
    elif a.data:
        names, origin = _data_names(a.data), a.data
    elif recorded:
        names, origin = list(recorded), f"{a.source} (recorded in the checkpoint)"
    elif kind == "darknet":
        names, origin = _found_data(a, want)
    else:
        names, origin = None, None
    if names is None:
        return None, None
    if want is not None and len(names) != want:
        if a.names or a.data:
            raise ValueError(f"{origin}: {len(names)} class names, but the network has {want} classes")
        return None, None      # names found nearby that belong to another network
    return names, origin


def cmd_export(a: argparse.Namespace) -> None:
    from tritnet.atomic import write_bytes_atomic
    from tritnet.export import export_onnx, save, to_packed
    model, kind, recorded = _load_source(a)
    if a.darknet_weights and kind != "darknet":
        raise ValueError("--darknet-weights needs a darknet .cfg source")
    names, origin = _class_names(a, model, kind, recorded)
    pm = to_packed(model, bits=a.bits, float_dtype=a.float_dtype, class_names=names,
                   letter_box=True if a.letter_box else None)
    if a.calibration:
        from tritnet.export.images import load_images
        from tritnet_rt.calibrate import MIN_IMAGES, calibrate
        pm = calibrate(pm, load_images(pm, a.calibration, a.calibration_images, minimum=MIN_IMAGES))
    written = {"packed": a.out, "bytes": save(pm, a.out)}
    if a.calibration:
        written["calibrated_convs"] = sum("input_quant" in n["attrs"] for n in pm.graph["nodes"])
    written["class_names"] = names
    written["names_from"] = origin
    if a.onnx:
        written["onnx"] = export_onnx(pm, a.onnx, nms=(a.thresh, a.nms) if a.onnx_nms else None)
    if a.darknet_weights:
        data = model.encode_weights()
        write_bytes_atomic(a.darknet_weights, data)
        written["darknet_weights"] = a.darknet_weights
        written["darknet_weights_bytes"] = len(data)
    if a.sttn_merged:
        from tritnet import merge_sttn_
        from tritnet.models import model_checkpoint, save_atomic
        save_atomic(model_checkpoint(merge_sttn_(model)), a.sttn_merged)
        written["sttn_merged"] = a.sttn_merged
    ternary = sum(pm.dtypes[n["tensors"]["weight"]].startswith("tern") for n in pm.graph["nodes"]
                  if "weight" in n.get("tensors", {}))
    written["ternary_layers"] = ternary
    if a.json:
        print(json.dumps(written, indent=2))
        return
    for k, v in written.items():
        if k == "class_names":
            v = ", ".join(v) if v else "none (pass --data FILE.data or --names FILE to embed them)"
        print(f"{k}: {v}")


def cmd_run(a: argparse.Namespace) -> None:
    from tritnet_rt.cli import run
    run(a)


def cmd_bench(a: argparse.Namespace) -> None:
    import shlex
    import sys

    from tritnet.export.bench import DEFAULT_TOOLS, LABELS, bench_file, label
    tools = [t.strip() for t in a.tools.split(",") if t.strip()] if a.tools else DEFAULT_TOOLS
    r = bench_file(a.file, batch=a.batch, threads=a.threads, rounds=a.rounds, calls=a.calls, seconds=a.seconds,
                   tools=tools, calibration=a.calibration, memory=a.memory)
    r["command"] = shlex.join(["tritnet", *sys.argv[1:]])
    if a.json:
        print(json.dumps(r, indent=2))
        return
    m = r["machine"]
    print(f"{r['file']}: batch {r['batch']}, {r['threads']} thread(s), {r['rounds']} rounds of {r['calls']} calls; "
          f"{m['cpu']} ({', '.join(m['isa_flags'])}), tritnet_rt {m['tritnet_rt_isa']}; input: {r['images']}")
    mem = "peak_rss_mb" in r
    print(f"  {'tool':<33} {'median ms':>10} {'min ms':>10} {'diff':>8}" + (f" {'peak MB':>8}" if mem else "")
          + f"   (diff: max |output - {LABELS[r['agreement_reference']]}'s| / its max |output|)")
    for t, v in r["tools"].items():
        print(f"  {label(t, r['setup'][t]):<33} {v['median_ms']:10.3f} {v['min_ms']:10.3f} {r['agreement'][t]:8.1e}"
              + (f" {r['peak_rss_mb'][t]:8.0f}" if mem else "") + (f"   {v['runtime_is']}" if t != "runtime" and
                                                                      "runtime_is" in v else ""))
    split = r["setup"].get("runtime", {}).get("batch_split")
    if split:
        print(f"  tritnet_rt splits the batch between the threads (shares of {', '.join(map(str, split))} images), "
              "each thread running its share through every layer alone")
    small = r["single_thread_convs"]
    if small:
        print(f"  tritnet_rt runs {len(small)} conv(s) on the calling thread only, too small to split (< "
              f"{r['setup']['runtime']['par_min_macs']:,.0f} multiply-adds): " + ", ".join(c["layer"] for c in small))


VERBS = {("export", None): cmd_export, ("run", None): cmd_run, ("bench", None): cmd_bench}
