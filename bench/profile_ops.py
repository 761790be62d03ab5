"""Where tritnet_rt's time goes: every op of a model's plan timed alone (a one-op plan over the same buffers),
and for each int8 conv the share of its dynamic activation range (the min/max pass: the same op timed with a
fixed scale, which skips it). Prints a table and writes a JSON with the command line, CPU and date.

    python bench/profile_ops.py --model yolov2-tiny-voc --threads 1 --out bench/results/profile_yolov2_tiny.json

Models as bench/runtime_bench.py builds them (all convs ternary, TWN per channel / random weights). Pause
other work while it runs: every op is timed as the median of ``--repeat`` windows.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _meta import run_info  # noqa: E402


def median_ms(plan, seconds: float, repeat: int) -> float:
    plan.run()
    t, n = time.perf_counter(), 0
    while time.perf_counter() - t < seconds / 4 or n < 3:
        plan.run()
        n += 1
    per = (time.perf_counter() - t) / n
    calls = max(1, int(seconds / per))
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(calls):
            plan.run()
        times.append((time.perf_counter() - t) / calls)
    return 1e3 * float(np.median(times))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="yolov2-tiny-voc")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=0.2, help="length of one timing window")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--calibrated", action="store_true",
                    help="int8 input scales calibrated on 32 real images (tritnet export --calibration): no min/max "
                         "passes, convs chained through 8-bit inputs")
    ap.add_argument("--weight-bits", default="auto", choices=["auto", "8", "2"],
                    help="tritnet_rt.load's weight_bits: the int8 path's weights in memory")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()

    import tritnet_rt
    from runtime_bench import build
    from tritnet.export import save, to_packed
    from tritnet_rt.plan import build as build_plan
    tritnet_rt.set_num_threads(a.threads)
    ext = tritnet_rt.native.ext()
    with tempfile.TemporaryDirectory() as d:
        model, _ = build(a.model)
        pm = to_packed(model)
        if a.calibrated:
            from runtime_bench import SHARED
            from tritnet.export.images import default_images, load_images
            from tritnet_rt.calibrate import calibrate
            pm = calibrate(pm, load_images(pm, default_images(pm, SHARED), 32))
        save(pm, Path(d) / "m.tnp")
        net = tritnet_rt.load(Path(d) / "m.tnp",
                              weight_bits=a.weight_bits if a.weight_bits == "auto" else int(a.weight_bits))
    ops, buf, keep = build_plan(net.prep, a.batch)
    x = np.random.default_rng(0).random((a.batch, *net.input_shape), dtype=np.float32)
    buf["input"][...] = x if net.prep.planar_input else x.transpose(0, 2, 3, 1)
    whole = ext.Plan(ops)
    whole.run()                                   # every buffer holds a real activation before ops run alone
    rows, total = [], median_ms(whole, a.seconds, a.repeat)
    for k, (name, fields, floats, bufs) in enumerate(ops):
        ms = median_ms(ext.Plan([(name, fields, floats, bufs)]), a.seconds, a.repeat)
        row = {"op": k, "kind": name, "ms": ms, "shape": [fields.get(f) for f in ("height", "width", "channels",
                                                                                    "out_channels")]}
        if name == "conv_t8" and not fields["fixed_quant"] and not fields["ternary_input"]:
            # the same op with a fixed range: what the per-image min/max pass costs
            fixed = dict(fields, fixed_quant=1, fixed_zp=0)
            row["ms_fixed_range"] = median_ms(ext.Plan([(name, fixed, (1.0,), bufs)]), a.seconds, a.repeat)
        rows.append(row)
    ext.Plan(ops).run()
    out = {**run_info(), "benchmark": "tritnet_rt per-op profile", "model": a.model, "threads": a.threads,
           "calibrated": a.calibrated, "weight_bits": a.weight_bits,
           "batch": a.batch, "isa": tritnet_rt.get_isa(), "whole_plan_ms": total,
           "sum_of_ops_ms": sum(r["ms"] for r in rows), "ops": rows}
    print(f"{a.model}, batch {a.batch}, {a.threads} thread(s), {out['isa']}, {out['cpu']}: whole plan "
          f"{total:.3f} ms, ops alone {out['sum_of_ops_ms']:.3f} ms")
    print(f"{'#':>3} {'op':<14} {'H x W x C -> N':<22} {'ms':>8} {'share':>6} {'min/max':>8}")
    for r in rows:
        h, w, c, n = r["shape"]
        shape = f"{h}x{w}x{c} -> {n}" if h else ""
        mm = f"{r['ms'] - r['ms_fixed_range']:8.3f}" if "ms_fixed_range" in r else ""
        share = 100 * r["ms"] / out["sum_of_ops_ms"]
        print(f"{r['op']:>3} {r['kind']:<14} {shape:<22} {r['ms']:8.3f} {share:5.1f}% {mm}")
    mm = sum(r["ms"] - r["ms_fixed_range"] for r in rows if "ms_fixed_range" in r)
    print(f"min/max passes: {mm:.3f} ms ({100 * mm / out['sum_of_ops_ms']:.1f}% of the ops)")
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
