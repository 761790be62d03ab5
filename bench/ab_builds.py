"""Two builds of tritnet_rt's C extension timed against each other on the same packed files, interleaved.

Each build is a copy of the runtime package with its own ``_tnrt`` library (``--a`` and ``--b``: folders holding
the .so); every round runs one fresh process per (build, file, threads), the order of the builds alternating
round to round, and reports per build the median over rounds of each process's median call time, and the median
of the per-round ratios b / a. Writes a JSON with the command line, CPU and date.

    cp runtime/tritnet_rt/_tnrt*.so /tmp/a/ ; (edit, rebuild) ; cp runtime/tritnet_rt/_tnrt*.so /tmp/b/
    python bench/ab_builds.py --a /tmp/a --b /tmp/b --files r20.tnp,yolo.tnp --threads 1,2 --out result.json
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from _meta import cpu_model  # noqa: E402

CHILD = """
import sys, time, numpy as np, tritnet_rt
path, threads, seconds, batch = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
tritnet_rt.set_num_threads(threads)
net = tritnet_rt.load(path)
x = np.random.default_rng(0).random((batch,) + net.input_shape, dtype=np.float32)
for _ in range(3):
    net(x)
t = time.perf_counter(); n = 0
while time.perf_counter() - t < seconds / 4:
    net(x); n += 1
calls = max(1, int(n * 4 / 20))
windows = []
for _ in range(5):
    t = time.perf_counter()
    for _ in range(calls):
        net(x)
    windows.append((time.perf_counter() - t) / calls * 1e3)
print(float(np.median(windows)))
"""


def package(lib_dir: Path, into: Path) -> Path:
    """A copy of runtime/tritnet_rt whose extension is the one in ``lib_dir``; or, where ``lib_dir`` is or holds a
    whole tritnet_rt package (an older commit's Python beside its library), that package: a package folder
    passed as a library folder would otherwise run this checkout's Python on the old library."""
    dst = into / "tritnet_rt"
    whole = Path(lib_dir) if (Path(lib_dir) / "__init__.py").is_file() else Path(lib_dir) / "tritnet_rt"
    if (whole / "__init__.py").is_file():
        shutil.copytree(whole, dst, ignore=shutil.ignore_patterns("__pycache__"))
        return into
    shutil.copytree(ROOT / "runtime" / "tritnet_rt", dst, ignore=shutil.ignore_patterns("_tnrt*", "__pycache__"))
    for so in Path(lib_dir).glob("_tnrt*"):
        shutil.copy(so, dst / so.name)
    return into


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", required=True, help="folder with build a's _tnrt library, or a whole tritnet_rt package "
                                               "(the package folder or the folder holding it)")
    ap.add_argument("--b", required=True, help="folder with build b's _tnrt library")
    ap.add_argument("--label-a", default="a")
    ap.add_argument("--label-b", default="b")
    ap.add_argument("--files", required=True, help="comma-separated packed files")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.0, help="timed seconds per process, about")
    ap.add_argument("--batch", type=int, default=1, help="images a call")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    files, threads = a.files.split(","), [int(t) for t in a.threads.split(",")]
    with tempfile.TemporaryDirectory() as d:
        roots = {"a": package(Path(a.a), Path(d) / "a"), "b": package(Path(a.b), Path(d) / "b")}
        ms = {(f, t, k): [] for f in files for t in threads for k in roots}
        isa = {k: os.environ[k] for k in ("TRITNET_ISA",) if k in os.environ}    # the kernels both builds run
        for r in range(a.rounds):
            for f in files:
                for t in threads:
                    for k in (("a", "b") if r % 2 == 0 else ("b", "a")):
                        p = subprocess.run([sys.executable, "-c", CHILD, f, str(t), str(a.seconds), str(a.batch)],
                                           check=True,
                                           capture_output=True, text=True, env={"PYTHONPATH": str(roots[k]),
                                                                                "PATH": "/usr/bin:/bin", **isa})
                        ms[f, t, k].append(float(p.stdout.split()[-1]))
            print(f"round {r + 1}/{a.rounds}", flush=True)
    rows = []
    for f in files:
        for t in threads:
            ra, rb = np.array(ms[f, t, "a"]), np.array(ms[f, t, "b"])
            rows.append({"file": f, "threads": t, a.label_a + "_ms": float(np.median(ra)),
                         a.label_b + "_ms": float(np.median(rb)), "b_over_a": float(np.median(rb / ra)),
                         "rounds_ms": {a.label_a: ra.round(4).tolist(), a.label_b: rb.round(4).tolist()}})
            print(f"{Path(f).name} {t} thread(s): {a.label_a} {np.median(ra):.3f} ms, {a.label_b} "
                  f"{np.median(rb):.3f} ms, {a.label_b}/{a.label_a} {np.median(rb / ra):.3f}")
    from datetime import datetime, timezone
    out = {"command": " ".join(["python", *sys.argv]), "cpu": cpu_model(), "date": datetime.now(timezone.utc)
           .isoformat(timespec="seconds"), "batch": a.batch, "rounds": a.rounds,
           "labels": {"a": a.label_a, "b": a.label_b},
           "environment": {k: os.environ.get(k) for k in ("TRITNET_ISA",)}, "rows": rows}
    Path(a.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
