"""The int8 ceiling of one core: VPDPBUSD (AVX-512 VNNI, 64 u8 x s8 products a zmm instruction) issued back to
back on 12 independent accumulators, registers only, so nothing but the instruction's throughput limits it.
A kernel's GMAC/s over this number is the share of the machine it uses (BENCHMARKS.md 8i).

    python bench/vnni_peak.py --out bench/results/vnni_peak_xeon.json

Needs gcc and a CPU with AVX-512 VNNI; writes a JSON with the command line, CPU and date.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from _meta import run_info  # noqa: E402

SOURCE = r"""
#include <stdio.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(void) {
    long n = 50000000;
    double best = 0;
    for (int round = 0; round < 5; round++) {
        double t = now();
        for (long k = 0; k < n; k++)
            __asm__ volatile(
                "vpdpbusd %%zmm30,%%zmm31,%%zmm0\n vpdpbusd %%zmm30,%%zmm31,%%zmm1\n vpdpbusd %%zmm30,%%zmm31,%%zmm2\n"
                "vpdpbusd %%zmm30,%%zmm31,%%zmm3\n vpdpbusd %%zmm30,%%zmm31,%%zmm4\n vpdpbusd %%zmm30,%%zmm31,%%zmm5\n"
                "vpdpbusd %%zmm30,%%zmm31,%%zmm6\n vpdpbusd %%zmm30,%%zmm31,%%zmm7\n vpdpbusd %%zmm30,%%zmm31,%%zmm8\n"
                "vpdpbusd %%zmm30,%%zmm31,%%zmm9\n vpdpbusd %%zmm30,%%zmm31,%%zmm10\n"
                "vpdpbusd %%zmm30,%%zmm31,%%zmm11\n"
                ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11");
        double rate = n * 12 / (now() - t);
        if (rate > best) best = rate;
    }
    printf("%.4f\n", best / 1e9);
    return 0;
}
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        src, exe = Path(d) / "peak.c", Path(d) / "peak"
        src.write_text(SOURCE)
        subprocess.run(["gcc", "-O2", str(src), "-o", str(exe)], check=True)
        per_s = float(subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout)
    out = {**run_info(), "benchmark": "VPDPBUSD zmm throughput, one core, registers only (best of 5 rounds)",
           "vpdpbusd_per_ns": per_s, "gmac_per_s": 64 * per_s}
    print(f"{out['cpu']}: {per_s:.2f} G VPDPBUSD/s = {64 * per_s:.0f} GMAC/s (u8 x s8) on one core")
    if a.out:
        Path(a.out).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
