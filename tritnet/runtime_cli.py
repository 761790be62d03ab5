"""The runtime verbs of the ``tritnet`` command: ``export``, ``run``, ``bench``.

    tritnet export yolov2-tiny-voc.cfg out.tnp --weights w.weights --method twn --onnx out.onnx
    tritnet export resnet20 r20.tnp --pretrained ../shared/data/pretrained/resnet_cifar10 --method twn
    tritnet run out.tnp image.jpg                 # top-5 classes, or the detections (+ predictions.jpg)
    tritnet bench out.tnp --batch 1 --threads 2   # runtime vs PyTorch fp32 vs ONNX Runtime fp32 / int8

``add_parsers(sub)`` adds them; ``VERBS`` maps (verb, None) to the function that runs one.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from tritnet_rt.cliargs import existing_file, existing_path, output_file, positive_int


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

    b = sub.add_parser("bench", help="time tritnet_rt against PyTorch fp32 and ONNX Runtime fp32/int8")
    b.add_argument("file", type=existing_file("packed file"))
    b.add_argument("--batch", type=positive_int, default=1)
    b.add_argument("--threads", type=positive_int, default=1)
    b.add_argument("--rounds", type=positive_int, default=10, help="interleaved rounds (median reported)")
    b.add_argument("--calls", type=positive_int, default=5, help="timed calls per tool per round")
    b.add_argument("--tools", default="runtime,torch,ort_fp32,ort_int8")
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
    from tritnet.export.bench import bench_file
    r = bench_file(a.file, batch=a.batch, threads=a.threads, rounds=a.rounds, calls=a.calls,
                   tools=[t.strip() for t in a.tools.split(",") if t.strip()])
    if a.json:
        print(json.dumps(r, indent=2))
        return
    print(f"{r['file']}: batch {r['batch']}, {r['threads']} thread(s), {r['rounds']} rounds, isa {r['isa']}")
    for t, v in r["tools"].items():
        print(f"  {t:<10} median {v['median_ms']:9.3f} ms   min {v['min_ms']:9.3f} ms   "
              f"{v.get('speedup_of_runtime', float('nan')):5.2f}x runtime speed-up")


VERBS = {("export", None): cmd_export, ("run", None): cmd_run, ("bench", None): cmd_bench}
