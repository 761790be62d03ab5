"""STTN's ternary activations in tritnet_rt two ways, on every kernel path this CPU runs: as bit planes through
the popcount GEMM (``ternary_inputs="bits"``) and as 8-bit codes through the int8 GEMM (``"int8"``). The two give
the same bits; this measures which is faster, the rule ``ternary_inputs="auto"`` follows (tritnet_rt/plan.py).

    python bench/ternary_inputs.py --out bench/results/ternary_inputs_xeon_amx.json

STTN ResNet-20 (random initialisation, as bench/runtime_bench.py builds it), batch 1, one thread by default;
per (ISA, mode) the median over ``--rounds`` interleaved rounds of a ``--seconds`` window's mean call time.
Pause other work while it runs.
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

MODES = ("bits", "int8")


def window_ms(net, x, seconds: float) -> float:
    net(x)
    t, n = time.perf_counter(), 0
    while time.perf_counter() - t < seconds:
        net(x)
        n += 1
    return (time.perf_counter() - t) / n * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--seconds", type=float, default=0.3)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    import tritnet_rt
    from runtime_bench import build
    from tritnet.export import save, to_packed
    from tritnet_rt.format import load_packed
    from tritnet_rt.net import Net
    model, _ = build("resnet20_sttn")
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "sttn.tnp"
        save(to_packed(model, bits=2), path)
        pm = load_packed(path)
    tritnet_rt.set_num_threads(a.threads)
    x = np.random.default_rng(0).standard_normal((1,) + tuple(pm.model["input"]["shape"])).astype(np.float32)
    rows = []
    for isa in tritnet_rt.capabilities()["supported"]:
        tritnet_rt.set_isa(isa)
        nets = {m: Net(pm, ternary_inputs=m) for m in MODES}
        outs = {m: net(x)[0] for m, net in nets.items()}
        assert np.array_equal(outs["bits"], outs["int8"]), f"{isa}: the two modes differ"
        times = {m: [] for m in MODES}
        for r in range(a.rounds):
            for m in (MODES if r % 2 == 0 else MODES[::-1]):
                times[m].append(window_ms(nets[m], x, a.seconds))
        row = {"isa": isa, **{f"{m}_ms": float(np.median(v)) for m, v in times.items()},
               "rounds_ms": {m: np.round(v, 4).tolist() for m, v in times.items()}}
        row["int8_over_bits"] = row["int8_ms"] / row["bits_ms"]
        rows.append(row)
        print(f"{isa}: bits {row['bits_ms']:.3f} ms, int8 {row['int8_ms']:.3f} ms, int8/bits "
              f"{row['int8_over_bits']:.2f}", flush=True)
    out = {**run_info(), "model": "resnet20_sttn (random init), batch 1", "threads": a.threads,
           "rounds": a.rounds, "seconds": a.seconds, "rows": rows}
    Path(a.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
