"""Benchmark of tritnet_rt against PyTorch fp32 and ONNX Runtime fp32 / int8 (static QDQ, per channel) on
the same all-ternary models, same inputs, same threads, interleaved in rounds; plus file sizes, peak memory
and the full CIFAR-10 test-set agreement. Writes bench/results_runtime.md (and a .json beside it).

    python bench/runtime_bench.py                       # everything (~15 min on 2 busy cores)
    python bench/runtime_bench.py --models resnet20 --batches 1 --rounds 5
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))

import tritnet  # noqa: E402
import tritnet_rt  # noqa: E402
from tritnet.export import save, to_packed  # noqa: E402
from tritnet.export.bench import make_tools, summarize, time_interleaved  # noqa: E402


def build(name, workdir):
    """(packed model, float32 .weights size or None) of an all-ternary model."""
    if name in ("resnet20", "resnet20_sttn"):
        torch.manual_seed(0)
        m = tritnet.create_model(name, pretrained=str(SHARED / "pretrained" / "resnet_cifar10")
                                 if name == "resnet20" else None).eval()
        if name == "resnet20":
            tritnet.ternarize(m, "twn", "all", per_channel=True)
        # float32 size of the network itself: an STTN pair is one filter once merged, not two
        import copy
        params = sum(p.numel() for p in tritnet.merge_sttn_(copy.deepcopy(m)).parameters())
        return m, 4 * params
    from tritnet.darknet import build_darknet, count_params, parse_cfg, set_ternary
    cfg_path = SHARED / "darknet" / "cfg" / f"{name}.cfg"
    w = Path(workdir) / f"{name}.weights"
    subprocess.run([sys.executable, str(SHARED / "darknet" / "reference" / "scripts" / "gen_random_weights.py"),
                    str(cfg_path), "0", str(w)], check=True, capture_output=True)
    cfg = parse_cfg(cfg_path)
    set_ternary(cfg)
    return build_darknet(cfg, w, method="twn", per_channel=True), 20 + 4 * count_params(cfg)


_HWM = "float(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM'))) / 1024"


def peak_rss_mb(path, batch, threads):
    """Peak resident memory (VmHWM; ru_maxrss would include the parent's, it survives exec) of a fresh
    process that loads the packed file and runs one batch (torch blocked); also its growth over importing
    tritnet_rt alone, and the bytes the runtime holds (weights + buffers)."""
    code = (f"import sys, numpy as np; sys.modules['torch'] = None; import tritnet_rt; "
            f"tritnet_rt.set_num_threads({threads}); net = tritnet_rt.load({str(path)!r}); "
            f"x = np.random.rand({batch}, *net.input_shape).astype(np.float32); net(x); net(x); "
            f"print({_HWM}, net.memory_bytes({batch}) / 2**20)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    rss, held = map(float, out.stdout.split())
    base = subprocess.run([sys.executable, "-c", f"import sys; sys.modules['torch'] = None; import tritnet_rt; "
                           f"print({_HWM})"], capture_output=True, text=True, check=True)
    return rss, rss - float(base.stdout), held


def memory_only(out):
    """Re-measure the memory columns of an existing results file (no timing)."""
    js = Path(out).with_suffix(".json")
    r = json.loads(js.read_text())
    with tempfile.TemporaryDirectory() as d:
        for name, e in r["models"].items():
            model, _ = build(name, d)
            path = Path(d) / "m.tnp"
            save(to_packed(model), path)
            for t in e["timings"]:
                t["peak_rss_mb"], t["rss_over_import_mb"], t["runtime_buffers_mb"] = peak_rss_mb(path, t["batch"], t["threads"])
                print(name, t["batch"], t["threads"], round(t["peak_rss_mb"]), round(t["rss_over_import_mb"]), flush=True)
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="resnet20,resnet20_sttn,yolov2-tiny-voc,ttt5_224_160")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--rounds-large", type=int, default=3, help="rounds for batches above 1")
    ap.add_argument("--seconds", type=float, default=0.25, help="aim for this long per tool per round")
    ap.add_argument("--no-cifar", action="store_true")
    ap.add_argument("--cifar-checkpoint", default=None, help="trained classifier for the CIFAR-10 agreement")
    ap.add_argument("--memory-only", action="store_true", help="only re-measure memory in the results file")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results_runtime.md"))
    a = ap.parse_args()
    if a.memory_only:
        return memory_only(a.out)
    js = Path(a.out).with_suffix(".json")
    old = json.loads(js.read_text()) if js.exists() else {}
    import onnxruntime
    from datetime import date
    results = {"machine": {"cpu": cpu_description(), "cores": os.cpu_count(), "date": str(date.today()),
                           "isa": tritnet_rt.get_isa(), "supported": tritnet_rt.capabilities()["supported"],
                           "onnxruntime": onnxruntime.__version__, "torch": torch.__version__,
                           "loadavg_start": os.getloadavg()},
               "models": {}}
    if old.get("machine", {}).get("cpu") == results["machine"]["cpu"]:   # add to a run on this machine only
        results["models"] = old.get("models", {})
    if "cifar10_full" in old and results["models"]:
        results["cifar10_full"] = old["cifar10_full"]
    with tempfile.TemporaryDirectory() as d:
        for name in a.models.split(","):
            model, float_bytes = build(name, d)
            entry = results["models"].setdefault(name, {"sizes": {}, "timings": []})
            for bits in (2, 1.6):
                pm = to_packed(model, bits=bits)
                path = Path(d) / f"{name}_{bits}.tnp"
                size = save(pm, path)
                entry["sizes"][str(bits)] = {"bytes": size, "ratio_vs_float32": float_bytes / size}
            entry["sizes"]["float32_bytes"] = float_bytes
            path = Path(d) / f"{name}_2.tnp"
            pm = tritnet_rt.load_packed(path)
            for batch in map(int, a.batches.split(",")):
                for threads in map(int, a.threads.split(",")):
                    entry["timings"] = [t for t in entry["timings"] if (t["batch"], t["threads"]) != (batch, threads)]
                    fns = make_tools(pm, path, batch, threads, ("runtime", "torch", "ort_fp32", "ort_int8"), d)
                    t = time.perf_counter()
                    fns["torch"]()
                    calls = max(1, int(a.seconds / max(time.perf_counter() - t, 1e-4) / 2))
                    per = time_interleaved(fns, a.rounds if batch == 1 else a.rounds_large, calls)
                    rss, rss_delta, held = peak_rss_mb(path, batch, threads)
                    row = {"batch": batch, "threads": threads, "calls": calls, "tools": summarize(per, batch),
                           "peak_rss_mb": rss, "rss_over_import_mb": rss_delta, "runtime_buffers_mb": held,
                           "loadavg": os.getloadavg()}
                    entry["timings"].append(row)
                    print(name, batch, threads, {k: round(v["median_ms"], 3) for k, v in row["tools"].items()},
                          flush=True)
                    entry["timings"].sort(key=lambda t: (t["batch"], t["threads"]))
                    js.write_text(json.dumps(results, indent=1))
                    Path(a.out).write_text(render(results))
    if not a.no_cifar:
        results["cifar10_full"] = cifar_full(a.cifar_checkpoint)
        print(results["cifar10_full"])
    js.write_text(json.dumps(results, indent=1))
    Path(a.out).write_text(render(results))


def cpu_description() -> str:
    try:
        info = Path("/proc/cpuinfo").read_text()
        name = next(l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("model name"))
        flags = set(next(l.split(":", 1)[1] for l in info.splitlines() if l.startswith("flags")).split())
        isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_vpopcntdq") if f in flags]
        return f"{name} ({', '.join(isa)})"
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


TARGETS = [  # (model, tool, minimum speed-up of the runtime, batch 1, 2 threads), from the issue
    ("yolov2-tiny-voc", "ort_fp32", 3.0), ("yolov2-tiny-voc", "ort_int8", 1.25), ("resnet20", "ort_int8", 1.5),
    ("resnet20_sttn", "ort_int8", 2.0)]


def _ratio(r, model, tool, batch=1, threads=2):
    for t in r["models"].get(model, {}).get("timings", []):
        if t["batch"] == batch and t["threads"] == threads:
            return t["tools"][tool]["speedup_of_runtime"]
    return None


def render(r):
    m = r["machine"]
    lines = ["# tritnet_rt benchmark", "",
             f"{m.get('date', '?')}, {m.get('cpu', '?')}, {m['cores']} cores; kernel path `{m['isa']}` (supported: "
             f"{', '.join(m['supported'])}); onnxruntime {m.get('onnxruntime', '?')}, torch {m.get('torch', '?')}; "
             f"load average at start {m['loadavg_start'][0]:.1f}. Command: `python bench/runtime_bench.py`.", "",
             "Every model all-ternary (TWN per channel; darknet: random weights from the reference generator, "
             "ResNet-20: pretrained then ternarized, STTN: random init). Same input, same threads, tools "
             "interleaved in rounds with a pause between tools (so no tool's spinning threads steal the next "
             "one's cores); per tool the median of its per-round means, and the median over rounds of the "
             "per-round ratio tool / runtime (>1: the runtime is faster). ORT int8 is static QDQ quantization "
             "of the same ternary model (per-channel weights, calibrated on 8 inputs).", "",
             "Targets (batch 1, 2 threads):", ""]
    for model, tool, need in TARGETS:
        got = _ratio(r, model, tool)
        if got is None:
            continue
        lines.append(f"- {model} at least {need}x faster than {tool.replace('_', ' ')}: {got:.2f}x, "
                     f"**{'met' if got >= need else 'missed'}**")
    for model, e in r["models"].items():
        s = e["sizes"]
        if model.startswith("resnet"):
            continue
        ok = s["2"]["ratio_vs_float32"] >= 15 and s["1.6"]["ratio_vs_float32"] >= 19
        lines.append(f"- {model} file at least 15x / 19x smaller than its float32 .weights at 2 / 1.6 bits: "
                     f"{s['2']['ratio_vs_float32']:.1f}x / {s['1.6']['ratio_vs_float32']:.1f}x, "
                     f"**{'met' if ok else 'missed'}**")
    lines.append("")
    for name, e in r["models"].items():
        s = e["sizes"]
        lines += [f"## {name}", "",
                  f"File: 2-bit {s['2']['bytes']:,} B ({s['2']['ratio_vs_float32']:.1f}x smaller than float32 "
                  f"{s['float32_bytes']:,} B), 1.6-bit {s['1.6']['bytes']:,} B ({s['1.6']['ratio_vs_float32']:.1f}x).",
                  "", "| batch | threads | runtime ms | PyTorch fp32 ms (ratio) | ORT fp32 ms (ratio) | ORT int8 ms (ratio) "
                  "| runtime img/s | peak RSS MB: process (over import; weights+buffers) | load |", "|---|---|---|---|---|---|---|---|---|"]
        for t in e["timings"]:
            T = t["tools"]
            cell = lambda k: f"{T[k]['median_ms']:.3f} ({T[k]['speedup_of_runtime']:.2f}x)"  # noqa: E731
            lines.append(f"| {t['batch']} | {t['threads']} | {T['runtime']['median_ms']:.3f} | {cell('torch')} | "
                         f"{cell('ort_fp32')} | {cell('ort_int8')} | {T['runtime']['images_per_s']:.0f} | "
                         f"{t['peak_rss_mb']:.0f} ({t['rss_over_import_mb']:.0f}; {t['runtime_buffers_mb']:.1f}) | "
                         f"{t['loadavg'][0]:.1f} |")
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
