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

from tritnet_rt.cliargs import existing_file, existing_path, output_file, positive_float, positive_int


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
    e.add_argument("--method", choices=["twn", "ttn", "sttn", "none"], default="twn",
                   help="ternarize with this method before export (darknet: the ternary=1 layers, or all "
                        "convs with --all-ternary); 'none' keeps the model as it is")
    e.add_argument("--layers", default="all", help="classifiers: all | all_but_first_last | names")
    e.add_argument("--all-ternary", action="store_true", help="darknet: make every conv ternary")
    e.add_argument("--per-channel", action="store_true", help="one scale per output channel")
    e.add_argument("--bits", type=float, choices=[2, 1.6], default=2, help="2 bits a weight or 1.6 (5 trits/byte)")
    e.add_argument("--float-dtype", choices=["f32", "f16"], default="f32", help="storage of float layers")
    e.add_argument("--names", type=existing_file("names file"), help="class names file (one per line)")
    e.add_argument("--onnx", type=output_file("ONNX file"), help="also write ONNX here")
    e.add_argument("--darknet-weights", type=output_file("weights file to write"),
                   help="darknet source: also write .weights with the ternary values")
    e.add_argument("--sttn-merged", type=output_file("checkpoint to write"),
                   help="STTN source: also write the merged checkpoint (one ternary conv a pair)")
    e.add_argument("--json", action="store_true")

    from tritnet_rt.cli import add_run_arguments
    add_run_arguments(sub.add_parser("run", help="run a packed file on one image with tritnet_rt (no PyTorch)"))

    b = sub.add_parser("bench", help="time tritnet_rt against PyTorch fp32, ONNX Runtime fp32/int8 and OpenVINO "
                                     "f32/default/int8 (same input, batch and threads)")
    b.add_argument("file", type=existing_file("packed file"))
    b.add_argument("--batch", type=positive_int, default=1)
    b.add_argument("--threads", type=positive_int, default=1)
    b.add_argument("--rounds", type=positive_int, default=5, help="interleaved rounds (medians reported)")
    b.add_argument("--seconds", type=positive_float, default=0.2,
                   help="the fastest tool's window per round lasts at least this long (sets the calls)")
    b.add_argument("--calls", type=positive_int, help="timed calls per tool per round (instead of --seconds)")
    b.add_argument("--tools", help="comma-separated, default all: runtime, torch, ort_fp32, ort_int8, ov_fp32, "
                                   "ov_default, ov_int8")
    b.add_argument("--calibration", type=existing_path("images"),
                   help="folder or .tar(.gz) of real images like the model's inputs, for the input and the int8 "
                        "calibration (default: ../shared/data CIFAR-10 for a classifier, BCCD for a detector)")
    b.add_argument("--memory", action="store_true",
                   help="also the peak resident memory of a fresh process per tool")
    b.add_argument("--json", action="store_true")


def _untrained(a, what: str) -> None:
    """Refuse to export a random initialisation unless asked to: it runs, and answers nonsense."""
    if not a.random_weights:
        raise ValueError(f"{a.source}: no {what} given, so the export would hold random weights; pass {what} "
                         "(or --random-weights if that is what you want)")


def _load_source(a):
    import tritnet
    src = a.source
    method = None if a.method == "none" else a.method
    opts = {"per_channel": a.per_channel} if method in ("twn", "ttn") else {}
    if src.endswith(".cfg"):
        from tritnet.darknet import build_darknet, parse_cfg, set_ternary
        existing_file("cfg file")(src)
        if not a.weights:
            _untrained(a, "--weights")
        cfg = parse_cfg(src)
        if a.all_ternary:
            set_ternary(cfg)
        return build_darknet(cfg, a.weights, method, **opts), "darknet"
    from tritnet.models import list_models
    if src in list_models():
        if not a.pretrained:
            _untrained(a, "--pretrained")
        model = tritnet.create_model(src, pretrained=a.pretrained)
    else:
        existing_file("checkpoint")(src)
        from tritnet.train import load_classifier
        model, _ = load_classifier(src)
    if method and not any(getattr(m, "config", None) for m in model.modules()):
        tritnet.ternarize(model, method, a.layers, **opts)
    return model.eval(), "classifier"


def cmd_export(a: argparse.Namespace) -> None:
    from tritnet.atomic import write_bytes_atomic
    from tritnet.export import export_onnx, save, to_packed
    model, kind = _load_source(a)
    if a.darknet_weights and kind != "darknet":
        raise ValueError("--darknet-weights needs a darknet .cfg source")
    names = Path(a.names).read_text().split() if a.names else None
    pm = to_packed(model, bits=a.bits, float_dtype=a.float_dtype, class_names=names)
    written = {"packed": a.out, "bytes": save(pm, a.out)}
    if a.onnx:
        written["onnx"] = export_onnx(pm, a.onnx)
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
    print(json.dumps(written, indent=2) if a.json else
          "\n".join(f"{k}: {v}" for k, v in written.items()))


def cmd_run(a: argparse.Namespace) -> None:
    from tritnet_rt.cli import run
    run(a)


def cmd_bench(a: argparse.Namespace) -> None:
    import shlex
    import sys

    from tritnet.export.bench import LABELS, TOOLS, bench_file, label
    tools = [t.strip() for t in a.tools.split(",") if t.strip()] if a.tools else TOOLS
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
    small = r["single_thread_convs"]
    if small:
        print(f"  tritnet_rt runs {len(small)} conv(s) on the calling thread only, too small to split (< "
              f"{r['setup']['runtime']['par_min_macs']:,.0f} multiply-adds): " + ", ".join(c["layer"] for c in small))


VERBS = {("export", None): cmd_export, ("run", None): cmd_run, ("bench", None): cmd_bench}
