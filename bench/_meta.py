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
