"""``tritnet bench`` (and ``bench/runtime_bench.py``): tritnet_rt against PyTorch float32, ONNX Runtime float32
and int8, and OpenVINO f32, default precision and int8, on the same packed model, the same input (real
images), the same batch and the same thread count.

Each baseline is set up the way its own documentation recommends; ``SETUPS`` says how and where that is
written, and ``tool`` is the one place that does it (the timing and the peak-memory children both use it).
Timing: the number of calls per window is chosen from the fastest tool (its window at least ``seconds``),
tools interleaved in rounds (the order rotating), per tool the median of its per-round means, and per tool the
median over rounds of (tool time / runtime time) measured in the same round.

This module imports only numpy at load time: the peak-memory child loads it by path, so that a process
measuring ONNX Runtime holds ONNX Runtime and not PyTorch as well."""
from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TOOLS = ("runtime", "runtime_dynamic", "torch", "ort_fp32", "ort_int8", "ov_fp32", "ov_default", "ov_int8")
DEFAULT_TOOLS = tuple(t for t in TOOLS if t != "runtime_dynamic")    # that one only differs from a calibrated file
LABELS = {"runtime": "tritnet_rt", "runtime_dynamic": "tritnet_rt, per-image int8 scales", "torch": "PyTorch fp32",
          "ort_fp32": "ONNX Runtime fp32", "ort_int8": "ONNX Runtime int8 (QDQ)", "ov_fp32": "OpenVINO f32",
          "ov_default": "OpenVINO default precision", "ov_int8": "OpenVINO int8 (QDQ)"}
_ORT_DOCS = "https://onnxruntime.ai/docs/performance/tune-performance/threading.html"
_OV_DOCS = ("https://docs.openvino.ai/2025/openvino-workflow/running-inference/inference-devices-and-modes/cpu-device/"
            "performance-hint-and-thread-scheduling.html")
SETUPS = {   # how each tool is set up, and the documentation that says so
    "runtime": "tritnet_rt.set_num_threads(threads), the packed file (runtime_bench.py --calibrated: its int8 input "
               "scales calibrated on the int8 baselines' calibration images, tritnet_rt.calibrate)",
    "runtime_dynamic": "tritnet_rt as above on the packed file without calibrated scales (each image's own range)",
    "torch": "torch.set_num_threads(threads), the packed graph as float32 modules (tritnet.export.torch_graph), "
             "eager, under torch.inference_mode()",
    "ort_fp32": "InferenceSession, CPUExecutionProvider, graph_optimization_level ORT_ENABLE_ALL, execution_mode "
                f"ORT_SEQUENTIAL, intra_op_num_threads = threads, inter_op_num_threads 1 ({_ORT_DOCS}); the "
                "symbolic batch fixed by add_free_dimension_override_by_name (ONNX Runtime's free dimension "
                "override, so it plans for a static shape)",
    "ort_int8": "the same session on the QDQ file: quant_pre_process, then quantize_static, QDQ, per-channel, "
                "uint8 activations / int8 weights, MinMax calibration on real images "
                "(https://onnxruntime.ai/docs/performance/model-optimizations/quantization.html)",
    "ov_fp32": "ov.Core().compile_model(model, \"CPU\", {INFERENCE_NUM_THREADS: threads, PERFORMANCE_HINT: LATENCY, "
               f"INFERENCE_PRECISION_HINT: f32}}) ({_OV_DOCS}; https://docs.openvino.ai/2025/openvino-workflow/"
               "running-inference/optimize-inference/precision-control.html); the model read from the same ONNX "
               "file and reshaped to the static input shape (https://docs.openvino.ai/2025/openvino-workflow/"
               "running-inference/changing-input-shape.html)",
    "ov_default": "as OpenVINO f32 without the precision hint: OpenVINO's default precision for this CPU "
                  "(bf16 where the CPU has AMX or AVX-512 BF16)",
    "ov_int8": "as OpenVINO default precision, on the same QDQ file as ONNX Runtime int8 (OpenVINO runs "
               "QuantizeLinear/DequantizeLinear pairs as int8: https://docs.openvino.ai/2024/documentation/"
               "openvino-ir-format/intermediate-representation-int8-inference.html)",
}
CALIBRATION_IMAGES = 32    # images ONNX Runtime calibrates its int8 ranges on
MEMORY_CALLS = 10          # calls the peak-memory child makes
F32_TOLERANCE = 1e-3       # largest |difference| / max |output| between PyTorch and an f32 baseline
ISA_FLAGS = ("sse4_2", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni",
             "amx_tile", "amx_int8", "amx_bf16", "asimd", "asimddp", "i8mm")


def label(name: str, setup: dict | None = None) -> str:
    """The tool's name in reports; OpenVINO's default precision says which precision that was."""
    got = (setup or {}).get("got", {}).get("INFERENCE_PRECISION_HINT")
    return f"OpenVINO default precision ({got})" if name == "ov_default" and got else LABELS[name]


# ------------------------------------------------------------------------------------------------ the inputs

def prepare(pm, packed_path, workdir, tools, calibration: np.ndarray | None, calibrate_runtime=False) -> dict:
    """The files the tools load: the packed file, its ONNX export (batch symbolic) and, for the int8 tools,
    the QDQ file quantized from it. ``calibrate_runtime``: the runtime's file gets int8 input scales calibrated
    on the same images as the int8 baselines (``runtime_dynamic`` keeps the file as given)."""
    from tritnet_rt.calibrate import calibrate, uncalibrated
    from tritnet_rt.format import save_packed
    files = {"packed": str(packed_path), "packed_dynamic": str(packed_path)}
    if any("input_quant" in n["attrs"] for n in pm.graph["nodes"]):
        files["packed_dynamic"] = str(Path(workdir) / "model_dynamic.tnp")
        save_packed(uncalibrated(pm), files["packed_dynamic"])
    if calibrate_runtime:
        files["packed"] = str(Path(workdir) / "model_calibrated.tnp")
        save_packed(calibrate(pm, calibration), files["packed"])
    if any(t.startswith(("ort_", "ov_")) for t in tools):
        from .onnx import export_onnx, quantize_int8
        files["onnx"] = export_onnx(pm, Path(workdir) / "model.onnx")
        if any(t.endswith("_int8") for t in tools):
            files["int8"] = quantize_int8(files["onnx"], Path(workdir) / "model_int8.onnx", calibration)
    return files


# ------------------------------------------------------------------------------------------------ the tools

def ort_session(path, threads: int, batch: int):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.add_free_dimension_override_by_name("batch", batch)
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


_OV_REPORTED = ("INFERENCE_NUM_THREADS", "PERFORMANCE_HINT", "NUM_STREAMS", "INFERENCE_PRECISION_HINT",
                "EXECUTION_MODE_HINT", "ENABLE_CPU_PINNING")


def ov_compile(path, threads: int, shape, precision: str | None = None):
    """(compiled model, the properties it ended up with). Property names as the CPU plugin lists them
    (``ov.Core().get_property("CPU", "SUPPORTED_PROPERTIES")``)."""
    import openvino as ov
    core = ov.Core()
    model = core.read_model(str(path))
    model.reshape(list(shape))
    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision
    compiled = core.compile_model(model, "CPU", config)
    got = {k: compiled.get_property(k) for k in _OV_REPORTED}
    return compiled, {"asked": config, "got": {k: v.get_type_name() if isinstance(v, ov.Type) else
                                               getattr(v, "name", v) for k, v in got.items()}}


def tool(name: str, files: dict, x: np.ndarray, threads: int):
    """(zero-argument callable running ``x`` through the tool, a description of its set-up)."""
    batch = x.shape[0]
    if name in ("runtime", "runtime_dynamic"):
        import tritnet_rt
        tritnet_rt.set_num_threads(threads)
        net = tritnet_rt.load(files["packed" if name == "runtime" else "packed_dynamic"])
        shares = [n for _, _, n in net.shares(batch, threads)]
        return (lambda: net(x)), {"threads": threads, "isa": tritnet_rt.get_isa(),
                                  "micro_batch": net.micro_batch(batch), "ternary_inputs": net.prep.ternary_inputs,
                                  "par_min_macs": tritnet_rt._ext().par_min_macs(),
                                  "batch_split": shares if len(shares) > 1 else None,
                                  "single_thread_convs": single_thread_convs(net, batch, threads)}
    if name == "torch":
        import torch

        from tritnet.export.torch_graph import GraphModule
        from tritnet_rt.format import load_packed
        torch.set_num_threads(threads)
        module, xt = GraphModule(load_packed(files["packed"])).eval(), torch.from_numpy(x)

        def run():
            with torch.inference_mode():
                return module(xt)
        return run, {"threads": torch.get_num_threads(), "version": torch.__version__}
    if name in ("ort_fp32", "ort_int8"):
        sess = ort_session(files["onnx" if name == "ort_fp32" else "int8"], threads, batch)
        return (lambda: sess.run(None, {"input": x})), {
            "graph_optimization_level": "ORT_ENABLE_ALL", "execution_mode": "ORT_SEQUENTIAL",
            "intra_op_num_threads": threads, "inter_op_num_threads": 1, "free_dimension_override": {"batch": batch},
            "providers": sess.get_providers(), "model": "float32" if name == "ort_fp32" else "QDQ int8"}
    if name in ("ov_fp32", "ov_default", "ov_int8"):
        compiled, setup = ov_compile(files["int8" if name == "ov_int8" else "onnx"], threads, x.shape,
                                     "f32" if name == "ov_fp32" else None)
        request = compiled.create_infer_request()
        setup["model"] = "QDQ int8" if name == "ov_int8" else "float32"
        return (lambda: request.infer({0: x}, share_inputs=True)), setup
    raise ValueError(f"unknown bench tool {name!r}; use {', '.join(TOOLS)}")


def single_thread_convs(net, batch: int, threads: int) -> list:
    """The convs tritnet_rt runs on the calling thread alone although it was given ``threads``: those under
    ``par_min_macs()`` multiply-adds (micro-batch·Ho·Wo·N·kh·kw·C), where handing the work to another core costs
    more than it saves (csrc/ops.c). None where the batch is split between the threads (``Net.shares``): every
    thread then runs its own images through every layer."""
    if threads <= 1 or len(net.shares(batch, threads)) > 1:
        return []
    from tritnet_rt import _ext
    limit, step = _ext().par_min_macs(), net.micro_batch(batch)
    out = []
    for node in net.pm.graph["nodes"]:
        if node["op"] == "conv":
            n, ho, wo = net.prep.shapes[node["name"]]
            kh, kw = node["attrs"]["kernel"]
            macs = step * ho * wo * n * kh * kw * node["attrs"]["in_channels"]
            if macs < limit:
                out.append({"layer": node["name"], "macs": int(macs)})
    return out


def make_tools(files, x, threads, tools) -> tuple[dict, dict]:
    """({name: callable}, {name: set-up}) for the requested tools, in the order given."""
    fns, setups = {}, {}
    for name in tools:
        fns[name], setups[name] = tool(name, files, x, threads)
    return fns, setups


def _arrays(out) -> list:
    if isinstance(out, dict) or type(out).__name__ == "OVDict":      # OpenVINO's results
        out = list(out.values())
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


def reference(tools) -> str:
    """The tool the others' outputs are compared with: PyTorch float32 when it runs."""
    return "torch" if "torch" in tools else tools[0]


def agreement(fns: dict) -> dict:
    """Per tool, max |output - reference's| / max |reference's| (``reference``). An f32 baseline further from
    PyTorch than ``F32_TOLERANCE`` means the exported graph is not the model: refused."""
    ref = _arrays(fns[reference(list(fns))]())
    out = {}
    for name, f in fns.items():
        got = _arrays(f())
        out[name] = max(float(np.abs(g.reshape(r.shape) - r).max() / max(np.abs(r).max(), 1e-12))
                        for g, r in zip(got, ref))                # the runtime's (N, 10, 1, 1) is PyTorch's (N, 10)
        if name in ("ort_fp32", "ov_fp32") and "torch" in fns and out[name] > F32_TOLERANCE:
            raise RuntimeError(f"{LABELS[name]} differs from PyTorch by {out[name]:.2g} of the largest output: "
                               "the ONNX export does not compute the packed model")
    return out


# ------------------------------------------------------------------------------------------------ timing

def choose_calls(fns: dict, seconds: float) -> int:
    """Calls per window: enough for the fastest tool's window to last ``seconds``."""
    def once(f):
        f()
        t = time.perf_counter()
        for _ in range(3):
            f()
        return (time.perf_counter() - t) / 3
    return max(1, math.ceil(seconds / max(min(once(f) for f in fns.values()), 1e-6)))


def time_interleaved(fns: dict, rounds: int, calls: int, gap_s: float = 0.2) -> dict:
    """Per tool, the mean ms of ``calls`` calls in each round; the order of the tools rotates from round to
    round. Between tools the process sleeps ``gap_s``: the thread pools of ONNX Runtime, OpenVINO, OpenMP
    (PyTorch) and tritnet_rt spin for a while after their last call, and on two cores a neighbour's spinning
    threads would otherwise steal the next tool's cores."""
    names = list(fns)
    per = {k: [] for k in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            f = fns[name]
            time.sleep(gap_s)
            f()                                           # warm-up of this round
            t = time.perf_counter()
            for _ in range(calls):
                f()
            per[name].append((time.perf_counter() - t) / calls * 1e3)
    return per


def ratio_words(speedup: float) -> str:
    """tool time / runtime time as words nobody can read backwards."""
    return f"tritnet_rt {speedup:.2f}x faster" if speedup >= 1 else f"tritnet_rt {1 / speedup:.2f}x slower"


def summarize(per: dict, batch: int) -> dict:
    """Per tool: median and min of the per-round means, images/s, and (when the runtime ran) the median over
    rounds of tool time / runtime time in the same round (``speedup_of_runtime``, > 1: the runtime is faster)."""
    out = {}
    for name, ms in per.items():
        ms = np.array(ms)
        out[name] = {"median_ms": float(np.median(ms)), "min_ms": float(ms.min()),
                     "images_per_s": float(batch * 1e3 / np.median(ms)), "rounds_ms": [round(float(v), 4) for v in ms]}
        if "runtime" in per:
            speedup = float(np.median(ms / np.array(per["runtime"])))
            out[name].update(speedup_of_runtime=speedup, runtime_is=ratio_words(speedup))
    return out


# ------------------------------------------------------------------------------------------------ memory

_CHILD = """import importlib.util, json, sys
a = json.loads(sys.argv[1])
if a["tool"] != "torch":
    sys.modules["torch"] = None                 # this process holds the tool's own libraries only
spec = importlib.util.spec_from_file_location("tritnet_bench_child", a["module"])
m = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m)
m._child_main(a)
"""


def _child_main(a: dict) -> None:
    fn, _ = tool(a["tool"], a["files"], np.load(a["x"]), a["threads"])
    for _ in range(a["calls"]):
        fn()
    print(_peak_rss_mb())


def _peak_rss_mb() -> float:
    """VmHWM, this process's own peak (``ru_maxrss`` after a vfork+exec can carry the parent's peak)."""
    try:
        with open("/proc/self/status") as f:
            return next(float(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024
    except (OSError, StopIteration):
        import resource
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss / 2**20 if sys.platform == "darwin" else rss / 1024


def peak_rss_mb(name: str, files: dict, x: np.ndarray, threads: int, workdir, calls: int = MEMORY_CALLS) -> float:
    """Peak resident memory (MB, nothing subtracted) of a fresh process that loads the model into ``name``
    and runs ``x`` through it ``calls`` times: every tool measured the same way."""
    xp = Path(workdir) / "memory_input.npy"
    np.save(xp, x)
    arg = json.dumps({"tool": name, "module": str(Path(__file__).resolve()), "files": files, "x": str(xp),
                      "threads": threads, "calls": calls})
    p = subprocess.run([sys.executable, "-c", _CHILD, arg], capture_output=True, text=True, cwd=str(workdir))
    if p.returncode:
        raise RuntimeError(f"peak memory of {LABELS[name]}: the measuring process failed:\n{p.stderr[-3000:]}")
    return float(p.stdout.split()[-1])


# ------------------------------------------------------------------------------------------------ one file

def machine() -> dict:
    """CPU model and ISA flags (/proc/cpuinfo), cores, load, library versions."""
    from importlib import metadata
    name, flags = platform.processor() or platform.machine(), []
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
        fields = {}
        for line in info:
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())                 # the first core's
        name = fields["model name"]
        have = set(fields.get("flags", fields.get("Features", "")).split())
        flags = [f for f in ISA_FLAGS if f in have]
    except (OSError, KeyError):
        pass
    versions = {}
    for package in ("numpy", "torch", "onnx", "onnxruntime", "openvino"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    import tritnet_rt
    # variables that change what the tools run (an ISA cap makes an AMX machine stand in for a VNNI-only one)
    env = {k: os.environ[k] for k in ("TRITNET_ISA", "ONEDNN_MAX_CPU_ISA", "OMP_NUM_THREADS") if k in os.environ}
    return {"cpu": name, "isa_flags": flags, "cores": os.cpu_count(), "loadavg": list(os.getloadavg()),
            "tritnet_rt_isa": tritnet_rt.get_isa(), "versions": versions, "python": platform.python_version(),
            "environment": env}


def bench_file(path, batch=1, threads=1, rounds=5, calls=None, seconds=0.2, tools=DEFAULT_TOOLS, calibration=None,
               memory=False) -> dict:
    from tritnet_rt.format import load_packed
    unknown = [t for t in tools if t not in TOOLS]
    if unknown:
        raise ValueError(f"unknown bench tools {unknown}; use {', '.join(TOOLS)}")
    from .images import default_images, load_images
    pm = load_packed(path)
    source = Path(calibration) if calibration else default_images(pm)
    images = load_images(pm, source, CALIBRATION_IMAGES + batch)
    x = np.ascontiguousarray(images[CALIBRATION_IMAGES:])              # the timed batch: not calibrated on
    with tempfile.TemporaryDirectory() as d:
        files = prepare(pm, path, d, tools, images[:CALIBRATION_IMAGES])
        fns, setups = make_tools(files, x, threads, tools)
        agree = agreement(fns)
        calls = calls or choose_calls(fns, seconds)
        per = time_interleaved(fns, rounds, calls)
        peak = {t: peak_rss_mb(t, files, x, threads, d) for t in tools} if memory else None
    r = {"file": str(path), "batch": batch, "threads": threads, "rounds": rounds, "calls": calls,
         "images": str(source), "machine": machine(), "tools": summarize(per, batch),
         "agreement": agree, "agreement_reference": reference(list(tools)),
         "setup": setups, "single_thread_convs": setups.get("runtime", {}).get("single_thread_convs", [])}
    if peak:
        r["peak_rss_mb"] = peak
    return r
