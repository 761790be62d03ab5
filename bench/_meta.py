"""What every benchmark result records about its run: the command line, the CPU, the threads, the date."""
from __future__ import annotations

import os
import platform
import shlex
import sys
from datetime import datetime, timezone


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_info() -> dict:
    import torch
    return {"command": " ".join(shlex.quote(a) for a in [os.path.basename(sys.executable)] + sys.argv),
            "cpu": cpu_model(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def mean_std(values) -> dict:
    """{"mean", "std" (sample, 0 for one value), "n"} of a list of numbers."""
    values = [float(v) for v in values]
    n = len(values)
    mean = sum(values) / n
    std = (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5 if n > 1 else 0.0
    return {"mean": mean, "std": std, "n": n}


def write_results(path, out: dict, metric: str, label: str, second: tuple, step: str) -> None:
    """Write a staged/direct benchmark's JSON (through a temporary file) and print its table: one row per
    summary entry, ``metric`` as mean ± std over the seeds, ``second`` = (key, column name), the train time, and
    the transfer's cost per ``step`` (iteration or step) when the summary has it."""
    import json
    from pathlib import Path
    summary, seeds = out["summary"], out["budget"]["seeds"]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(out, indent=2))
    os.replace(tmp, path)
    print(f"| row | {label} (mean ± std over the seeds run, of {len(seeds)}) | {second[1]} | train time |")
    print("|---|---|---|---|")
    for k, s in summary.items():
        if k != "transfer_cost":
            print(f"| {k} | {s[metric]['mean']:.2f} ± {s[metric]['std']:.2f} (n={s[metric]['n']}) | "
                  f"{s[second[0]]['mean']:.2f} | "
                  f"{s['train_seconds']['mean'] / 60:.1f} min |")
    if "transfer_cost" in summary:
        c = summary["transfer_cost"]
        print(f"transfer cost: teacher {100 * c['teacher_overhead_in_run']['mean']:.0f}% of the {step} without "
              f"it; direct+kt took {c['direct_kt_over_direct_time']['mean']:.2f}x direct's time")
    print(f"wrote {path}")
