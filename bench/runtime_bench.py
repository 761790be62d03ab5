"""Benchmark of tritnet_rt against PyTorch fp32, ONNX Runtime fp32 / int8 and OpenVINO f32 / default precision /
int8 (each set up as its documentation recommends: tritnet.export.bench.SETUPS) on the same all-ternary models,
the same real images, the same batch and thread count, tools interleaved in rounds; plus file sizes, the peak
memory of a fresh process per tool and the full CIFAR-10 test-set agreement. Writes
bench/results/runtime_bench.json and a .md beside it.

    python bench/runtime_bench.py                       # everything (about half an hour on 2 cores)
    python bench/runtime_bench.py --quick               # smoke run: batch 1, short rounds, no CIFAR (…_quick.*)
    python bench/runtime_bench.py --models resnet20 --batches 1 --rounds 5
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import shlex
import sys
import tempfile
from datetime import date
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))

import tritnet  # noqa: E402
from tritnet.export import load_packed, save, to_packed  # noqa: E402
from tritnet.export.bench import (CALIBRATION_IMAGES, DEFAULT_TOOLS, LABELS, MEMORY_CALLS, SETUPS,  # noqa: E402
                                  TOOLS, agreement, choose_calls, label, machine, make_tools, peak_rss_mb, prepare,
                                  reference, summarize, time_interleaved)
from tritnet.export.images import default_images, load_images  # noqa: E402

MODELS = "yolov2-tiny-voc,ttt5_224_160,resnet20,resnet20_sttn"
FORMAT = 2          # results of format 1 (bench/results_runtime*.json) had no OpenVINO and other memory columns
FULL = {"batches": "1,8", "threads": "1,2", "rounds": 5, "rounds_large": 3, "seconds": 0.25,
        "calibration_images": CALIBRATION_IMAGES, "memory_calls": MEMORY_CALLS,
        "out": str(ROOT / "bench" / "results" / "runtime_bench.md")}
QUICK = {"batches": "1", "threads": "1,2", "rounds": 2, "rounds_large": 1, "seconds": 0.05, "calibration_images": 8,
         "memory_calls": 2, "out": str(ROOT / "bench" / "results" / "runtime_bench_quick.md")}


def build(name):
    """(all-ternary model, float32 bytes of its weights). Darknet networks: every conv ternary, random weights
    and randomised batch-norm statistics (tests/runtime/helpers.py); ResNet-20: pretrained, then TWN per
    channel; STTN ResNet-20: random initialisation."""
    from tests.runtime.helpers import darknet_net
    if name in ("resnet20", "resnet20_sttn"):
        torch.manual_seed(0)
        m = tritnet.create_model(name, pretrained=str(SHARED / "pretrained" / "resnet_cifar10")
                                 if name == "resnet20" else None).eval()
        if name == "resnet20":
            tritnet.ternarize_(m, method="twn", layers="all", per_channel=True)
        # float32 size of the network itself: an STTN pair is one filter once merged, not two
        return m, 4 * sum(p.numel() for p in tritnet.merge_sttn_(copy.deepcopy(m)).parameters())
    from tritnet.darknet import count_params
    net = darknet_net(SHARED, name)
    return net, 20 + 4 * count_params(net.cfg)


def prepare_model(name, workdir, entry, tools, n_cal, n_inputs, calibrated=False):
    """Packed files (sizes into ``entry``), real images (calibration, then the timed inputs) and the ONNX files."""
    model, float_bytes = build(name)
    for bits in (2, 1.6):
        size = save(to_packed(model, bits=bits), Path(workdir) / f"{name}_{bits}.tnp")
        entry["sizes"][str(bits)] = {"bytes": size, "ratio_vs_float32": float_bytes / size}
    entry["sizes"]["float32_bytes"] = float_bytes
    path = Path(workdir) / f"{name}_2.tnp"
    pm = load_packed(path)
    source = default_images(pm, SHARED)
    images = load_images(pm, source, n_cal + n_inputs)
    entry["images"] = {"source": str(source), "calibration": n_cal, "timed": n_inputs}
    entry["runtime_scales"] = "calibrated" if calibrated else "per-image"
    return prepare(pm, path, workdir, tools, images[:n_cal], calibrated), images[n_cal:]


def measure_memory(files, inputs, tools, threads, calls, workdir) -> dict:
    return {"batch": 1, "threads": threads, "calls": calls,
            "tools": {t: peak_rss_mb(t, files, inputs[:1], threads, workdir, calls) for t in tools}}


def memory_only(out, a):
    """Re-measure the peak-memory tables of an existing results file (no timing)."""
    js = Path(out).with_suffix(".json")
    r = json.loads(js.read_text())
    for name, e in r["models"].items():
        with tempfile.TemporaryDirectory() as d:
            was = e.get("memory", {})
            tools = list(was.get("tools", a.tools.split(",")))
            threads = was.get("threads", max([t["threads"] for t in e["timings"]], default=1))
            files, inputs = prepare_model(name, d, e, tools, a.calibration_images, 1, a.calibrated)
            e["memory"] = measure_memory(files, inputs, tools, threads, a.memory_calls, d)
            print(name, {k: round(v) for k, v in e["memory"]["tools"].items()}, flush=True)
    js.write_text(json.dumps(r, indent=1))
    Path(out).write_text(render(r))


def cifar_full(checkpoint=None):
    """Top-1 of PyTorch and of the runtime on all 10,000 test images: a trained checkpoint (e.g. the TWN run of
    bench/classify_methods.py, every layer ternary), or else the pretrained ResNet-20 ternarized without
    training (BN re-estimated)."""
    from tests.runtime.helpers import cifar_test, ternary_resnet20
    if checkpoint:
        from tritnet.train import load_classifier
        model, _ = load_classifier(checkpoint)
        what = f"{checkpoint} (trained)"
    else:
        model = ternary_resnet20(SHARED, "all_but_first_last")
        what = "pretrained ResNet-20, TWN per channel on all but the first and last layer, BN re-estimated, no training"
    x, y = cifar_test(SHARED, 1000)
    with torch.no_grad():
        ref = np.concatenate([model(torch.from_numpy(x[i:i + 500])).numpy() for i in range(0, len(x), 500)])
    from tritnet_rt.net import Net
    rt = Net(to_packed(model))
    got = np.concatenate([rt(x[i:i + 500])[0].reshape(-1, 10) for i in range(0, len(x), 500)])
    return {"model": what, "images": int(len(y)), "top1_torch": float((ref.argmax(1) == y).mean() * 100),
            "top1_runtime": float((got.argmax(1) == y).mean() * 100),
            "same_top1_prediction": float((ref.argmax(1) == got.argmax(1)).mean() * 100)}


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: " + ", ".join(f"{k} {v}" for k, v in QUICK.items()
                                                                                  if k != "out") + ", no CIFAR")
    ap.add_argument("--models", default=MODELS)
    ap.add_argument("--tools", default=",".join(DEFAULT_TOOLS))
    ap.add_argument("--batches", help=f"default {FULL['batches']}")
    ap.add_argument("--threads", help=f"default {FULL['threads']}")
    ap.add_argument("--rounds", type=int, help=f"default {FULL['rounds']}")
    ap.add_argument("--rounds-large", type=int, help=f"rounds for batches above 1 (default {FULL['rounds_large']})")
    ap.add_argument("--seconds", type=float, help="the fastest tool's window per round lasts at least this long "
                                                  f"(default {FULL['seconds']})")
    ap.add_argument("--calibration-images", type=int,
                    help=f"int8 calibration images (default {FULL['calibration_images']})")
    ap.add_argument("--memory-calls", type=int,
                    help=f"calls of the peak-memory process (default {FULL['memory_calls']})")
    ap.add_argument("--calibrated", action="store_true",
                    help="the runtime's int8 input scales calibrated on the int8 baselines' calibration images "
                         "(tritnet export --calibration); add the tool runtime_dynamic to time the file without")
    ap.add_argument("--no-cifar", action="store_true")
    ap.add_argument("--cifar-checkpoint", default=None, help="trained classifier for the CIFAR-10 agreement")
    ap.add_argument("--memory-only", action="store_true", help="only re-measure memory in the results file")
    ap.add_argument("--out", help="markdown report (the JSON goes beside it); default "
                                  "bench/results/runtime_bench.md, with --quick runtime_bench_quick.md")
    a = ap.parse_args()
    for k, v in (QUICK if a.quick else FULL).items():         # what the command line leaves out
        if getattr(a, k) is None:
            setattr(a, k, v)
    a.no_cifar = a.no_cifar or a.quick
    return a


def main():
    a = parse_args()
    if a.memory_only:
        return memory_only(a.out, a)
    tools = a.tools.split(",")
    batches, threads_list = [int(b) for b in a.batches.split(",")], [int(t) for t in a.threads.split(",")]
    js = Path(a.out).with_suffix(".json")
    js.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(js.read_text()) if js.exists() else {}
    results = {"format": FORMAT, "command": shlex.join(["python", *sys.argv]), "date": str(date.today()),
               "machine": machine(), "settings": {k: getattr(a, k) for k in FULL if k != "out"},
               "baselines": SETUPS, "models": {}}
    if old.get("format") == FORMAT and old.get("machine", {}).get("cpu") == results["machine"]["cpu"]:
        results["models"] = old.get("models", {})                  # add to a run on this machine only
        if "cifar10_full" in old:
            results["cifar10_full"] = old["cifar10_full"]

    def write():
        js.write_text(json.dumps(results, indent=1))
        Path(a.out).write_text(render(results))

    for name in a.models.split(","):
        entry = results["models"].setdefault(name, {"sizes": {}, "timings": []})
        with tempfile.TemporaryDirectory() as d:
            files, inputs = prepare_model(name, d, entry, tools, a.calibration_images, max(batches), a.calibrated)
            for batch in batches:
                for threads in threads_list:
                    x = np.ascontiguousarray(inputs[:batch])
                    fns, setups = make_tools(files, x, threads, tools)
                    agree = agreement(fns)
                    calls = choose_calls(fns, a.seconds)
                    per = time_interleaved(fns, a.rounds if batch == 1 else a.rounds_large, calls)
                    del fns                                            # free the sessions before the next
                    row = {"batch": batch, "threads": threads, "calls": calls, "tools": summarize(per, batch),
                           "agreement": agree, "agreement_reference": reference(tools), "setup": setups,
                           "loadavg": os.getloadavg()}
                    entry["timings"] = [t for t in entry["timings"] if (t["batch"], t["threads"]) != (batch, threads)]
                    entry["timings"].append(row)
                    entry["timings"].sort(key=lambda t: (t["batch"], t["threads"]))
                    print(name, batch, threads, {k: round(v["median_ms"], 3) for k, v in row["tools"].items()},
                          flush=True)
                    write()
            entry["memory"] = measure_memory(files, inputs, tools, max(threads_list), a.memory_calls, d)
            print(name, "peak MB", {k: round(v) for k, v in entry["memory"]["tools"].items()}, flush=True)
            write()
    if not a.no_cifar:
        results["cifar10_full"] = cifar_full(a.cifar_checkpoint)
        print(results["cifar10_full"])
    write()
    print(f"wrote {a.out} and {js}")


TARGETS = [  # (model, tool, minimum speed-up of the runtime, batch 1, 2 threads), from the issues
    ("yolov2-tiny-voc", "ort_fp32", 3.0), ("yolov2-tiny-voc", "ort_int8", 1.25), ("resnet20", "ort_int8", 1.5),
    ("resnet20_sttn", "ort_int8", 2.0)]


def _ratio(r, model, tool, batch=1, threads=2):
    for t in r["models"].get(model, {}).get("timings", []):
        if t["batch"] == batch and t["threads"] == threads and tool in t["tools"]:
            return t["tools"][tool].get("speedup_of_runtime")
    return None


def render(r):
    m, s = r["machine"], r["settings"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    lines = ["# tritnet_rt against PyTorch, ONNX Runtime and OpenVINO", "",
             f"{r['date']}, {m['cpu']} ({', '.join(m['isa_flags'])}), {m['cores']} cores; tritnet_rt kernels "
             f"`{m['tritnet_rt_isa']}`; {versions}; load average at start {m['loadavg'][0]:.1f}.", "",
             f"Command: `{r['command']}`", "",
             "Every model all-ternary (TWN per channel). Every tool gets the same input (real images: CIFAR-10 "
             "JPEGs for the ResNets, BCCD photographs for the detectors, pre-processed as tritnet_rt does), the "
             "same batch and the same thread count. Calls per window are chosen from the fastest tool (its window "
             f"at least {s['seconds']} s, so slower tools' windows are longer); tools are interleaved in rounds "
             "(the order rotating, a pause between tools so no tool's spinning threads steal the next one's "
             f"cores), {s['rounds']} rounds at batch 1 and {s['rounds_large']} above; per tool the median of its "
             "per-round means, and the median over rounds of the per-round ratio tool time / tritnet_rt time. "
             "\"max diff\" is max |output - PyTorch's| / max |PyTorch's| on the timed input. Peak memory: for each "
             "tool a fresh process loads the model and runs it at batch 1; its peak resident set (VmHWM), "
             "nothing subtracted.", "", "How each baseline is set up (tritnet/export/bench.py):", ""]
    lines += [f"- {LABELS[t]}: {SETUPS[t]}." for t in TOOLS]
    lines += ["", "Targets (batch 1, 2 threads):", ""]
    for model, tool, need in TARGETS:
        got = _ratio(r, model, tool)
        if got is not None:
            lines.append(f"- {model}: tritnet_rt at least {need}x faster than {LABELS[tool]}: {got:.2f}x, "
                         f"**{'met' if got >= need else 'missed'}**")
    for model, e in r["models"].items():
        sz = e["sizes"]
        if model.startswith("resnet"):
            continue
        ok = sz["2"]["ratio_vs_float32"] >= 15 and sz["1.6"]["ratio_vs_float32"] >= 19
        lines.append(f"- {model} file at least 15x / 19x smaller than its float32 .weights at 2 / 1.6 bits: "
                     f"{sz['2']['ratio_vs_float32']:.1f}x / {sz['1.6']['ratio_vs_float32']:.1f}x, "
                     f"**{'met' if ok else 'missed'}**")
    lines.append("")
    for name, e in r["models"].items():
        sz, im = e["sizes"], e.get("images", {})
        lines += [f"## {name}", "",
                  f"File: 2-bit {sz['2']['bytes']:,} B ({sz['2']['ratio_vs_float32']:.1f}x smaller than float32 "
                  f"{sz['float32_bytes']:,} B), 1.6-bit {sz['1.6']['bytes']:,} B "
                  f"({sz['1.6']['ratio_vs_float32']:.1f}x). "
                  f"Images: `{im.get('source', '?')}`, {im.get('calibration', '?')} for the int8 calibration, "
                  "others timed.", "",
                  "| batch | threads | tool | median ms | min ms | images/s | tritnet_rt against this tool "
                  "| max diff | load |",
                  "|---|---|---|---|---|---|---|---|---|"]
        notes = []
        for t in e["timings"]:
            for k, v in t["tools"].items():
                vs = "—" if k == "runtime" else v.get("runtime_is", "")
                lines.append(f"| {t['batch']} | {t['threads']} | {label(k, t['setup'].get(k))} | {v['median_ms']:.3f} "
                             f"| {v['min_ms']:.3f} | {v['images_per_s']:.0f} | {vs} | {t['agreement'][k]:.1e} "
                             f"| {t['loadavg'][0]:.1f} |")
            rt = t["setup"].get("runtime", {})
            if rt.get("batch_split"):
                notes.append(f"- batch {t['batch']}, {t['threads']} threads: the batch split between the threads "
                             f"(shares of {', '.join(map(str, rt['batch_split']))} images), each running its "
                             f"share through every layer alone")
            if rt.get("single_thread_convs"):
                notes.append(f"- batch {t['batch']}, {t['threads']} threads: "
                             + ", ".join(f"{c['layer']} ({c['macs'] / 1e6:.1f}M)" for c in rt["single_thread_convs"]))
        if notes:
            lines += ["", f"Where tritnet_rt does not share a layer between the threads it was given: convs under "
                          f"{rt['par_min_macs']:,.0f} multiply-adds (micro-batch·Ho·Wo·N·kh·kw·C) run on the "
                          f"calling thread only, and a batch split between the threads runs each share alone:",
                      ""] + notes
        if "memory" in e:
            mem = e["memory"]
            lines += ["", f"Peak resident memory of a fresh process per tool (batch 1, {mem['threads']} threads, "
                          f"{mem['calls']} calls):", "", "| tool | peak RSS MB |", "|---|---|"]
            setup = e["timings"][-1]["setup"] if e["timings"] else {}
            lines += [f"| {label(k, setup.get(k))} | {v:.0f} |" for k, v in mem["tools"].items()]
        lines.append("")
    if "cifar10_full" in r:
        c = r["cifar10_full"]
        lines += ["## CIFAR-10 agreement (full test set)", "",
                  f"{c.get('model', 'ResNet-20')}: PyTorch top-1 {c['top1_torch']:.2f}%, runtime "
                  f"{c['top1_runtime']:.2f}% on {c['images']:,} JPEG test images "
                  f"(difference {c['top1_runtime'] - c['top1_torch']:+.2f} points; same top-1 class on "
                  f"{c['same_top1_prediction']:.2f}% of images).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
