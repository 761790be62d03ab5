"""``tritnet bench``: tritnet_rt against PyTorch float32 and ONNX Runtime float32 / int8 (static QDQ,
per-channel) on the same packed model, the same input and the same thread count, interleaved in rounds so
that a busy machine slows every tool alike. Reported: per tool the median and min of the per-round means,
and the median over rounds of (tool time / runtime time) measured in the same round."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np


def _inputs(pm, batch, n=1, seed=0):
    c, h, w = pm.model["input"]["shape"]
    rng = np.random.default_rng(seed)
    if pm.model["input"].get("preprocess") == "letterbox":
        return [rng.random((batch, c, h, w), dtype=np.float32) for _ in range(n)]
    return [rng.standard_normal((batch, c, h, w), dtype=np.float32) for _ in range(n)]


def make_tools(pm, path, batch, threads, tools, workdir):
    """{name: zero-argument callable running one batch} for the requested tools."""
    import tritnet_rt
    from tritnet_rt.net import Net
    x = _inputs(pm, batch)[0]
    fns = {}
    tritnet_rt.set_num_threads(threads)
    if "runtime" in tools:
        net = Net(pm)
        fns["runtime"] = lambda: net(x)
    if "torch" in tools:
        import torch
        from .torch_graph import GraphModule
        torch.set_num_threads(threads)
        module = GraphModule(pm).eval()
        xt = torch.from_numpy(x)

        def run_torch():
            with torch.inference_mode():
                return module(xt)
        fns["torch"] = run_torch
    if "ort_fp32" in tools or "ort_int8" in tools:
        from .onnx import export_onnx, ort_session, quantize_int8
        f32 = Path(workdir) / "model.onnx"
        export_onnx(pm, f32)
        if "ort_fp32" in tools:
            s32 = ort_session(f32, threads)
            fns["ort_fp32"] = lambda: s32.run(None, {"input": x})
        if "ort_int8" in tools:
            cal = np.concatenate(_inputs(pm, 1, n=8, seed=1))
            i8 = quantize_int8(f32, Path(workdir) / "model_int8.onnx", cal)
            s8 = ort_session(i8, threads)
            fns["ort_int8"] = lambda: s8.run(None, {"input": x})
    return fns


def time_interleaved(fns: dict, rounds: int, calls: int, gap_s: float = 0.2) -> dict:
    """Per tool, the mean ms of ``calls`` calls in each round. Between tools the process sleeps ``gap_s``: the
    thread pools of ONNX Runtime, OpenMP (PyTorch) and tritnet_rt spin for a while after their last call, and
    on two cores a neighbour's spinning threads would otherwise steal the next tool's cores."""
    per = {k: [] for k in fns}
    for _ in range(rounds):
        for name, f in fns.items():
            time.sleep(gap_s)
            f()                                           # warm-up of this round
            t = time.perf_counter()
            for _ in range(calls):
                f()
            per[name].append((time.perf_counter() - t) / calls * 1e3)
    return per


def summarize(per: dict, batch: int) -> dict:
    out = {}
    base = np.array(per.get("runtime", next(iter(per.values()))))
    for name, ms in per.items():
        ms = np.array(ms)
        out[name] = {"median_ms": float(np.median(ms)), "min_ms": float(ms.min()),
                     "images_per_s": float(batch * 1e3 / np.median(ms)),
                     "speedup_of_runtime": float(np.median(ms / base)), "rounds_ms": [round(float(v), 4) for v in ms]}
    return out


def bench_file(path, batch=1, threads=1, rounds=10, calls=5, tools=("runtime", "torch", "ort_fp32", "ort_int8")):
    import tritnet_rt
    from tritnet_rt.format import load_packed
    unknown = set(tools) - {"runtime", "torch", "ort_fp32", "ort_int8"}
    if unknown:
        raise ValueError(f"unknown bench tools {sorted(unknown)}; use runtime, torch, ort_fp32, ort_int8")
    pm = load_packed(path)
    with tempfile.TemporaryDirectory() as d:
        fns = make_tools(pm, path, batch, threads, tools, d)
        per = time_interleaved(fns, rounds, calls)
    return {"file": str(path), "batch": batch, "threads": threads, "rounds": rounds, "calls": calls,
            "isa": tritnet_rt.get_isa(), "tools": summarize(per, batch)}
