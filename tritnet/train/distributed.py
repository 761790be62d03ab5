"""Several processes through PyTorch's own engine: ``torchrun --nproc_per_node N -m tritnet ...``.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them everything here is a no-op for one process.
CPU processes talk over gloo, GPUs over NCCL.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as tdist
import torch.nn as nn


@dataclass
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup() -> World:
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not tdist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        tdist.init_process_group(backend)
    return World(tdist.get_rank(), tdist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"device {name}: not a device name (auto, cpu, cuda, cuda:N, ...)") from None
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        # checked here, where the run starts, not at the first .to(device) after the run folder exists
        build = "" if torch.backends.cuda.is_built() else " (a CPU-only build of PyTorch)"
        raise ValueError(f"device {name}: PyTorch sees {torch.cuda.device_count()} CUDA devices here{build}")
    return device


def wrap(model: nn.Module, world: World, device: torch.device) -> nn.Module:
    if world.size <= 1:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def broadcast_object(obj, world: World):
    if world.size <= 1:
        return obj
    box = [obj]
    tdist.broadcast_object_list(box, src=0)
    return box[0]


def average_metrics(metrics: dict, world: World) -> dict:
    """Combine per-process evaluation results, weighting each by its number of images."""
    if world.size <= 1:
        return metrics
    keys = ("loss", "top1", "top5")
    t = torch.tensor([metrics[k] * metrics["images"] for k in keys] + [metrics["images"]], dtype=torch.float64)
    tdist.all_reduce(t)
    n = float(t[-1])
    return {**{k: float(t[i]) / n for i, k in enumerate(keys)}, "images": int(n)}


def sync_buffers(model: nn.Module, world: World):
    """Average floating-point buffers (BN running statistics) over the processes.

    DDP copies rank 0's buffers into every replica at each forward, but the last forward of an epoch updates
    each replica's statistics from its own shard; averaging them before evaluating and saving makes every
    replica identical and uses every shard's statistics.
    """
    if world.size <= 1:
        return
    with torch.no_grad():
        for b in model.buffers():
            if b.is_floating_point():
                tdist.all_reduce(b)
                b.div_(world.size)
            else:
                tdist.broadcast(b, src=0)


def barrier(world: World):
    if world.size > 1:
        tdist.barrier()


def teardown(world: World):
    if world.size > 1 and tdist.is_initialized():
        tdist.destroy_process_group()
