"""Checkpoints: written atomically, read without executing code (``torch.load(weights_only=True)``).

A tritnet checkpoint is a plain dict: {"format": "tritnet-checkpoint", "arch", "ternary" (layer → config
dict), "model" (state_dict), plus whatever the trainer adds: optimizer, epoch, metrics}. Foreign files (the
pretrained CIFAR ResNets, a bare state_dict, a {"state_dict": …} dict) load too.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from ..atomic import atomic_open
from ..nn import is_ternary, ternarize_, weight_layers
from ..quant import config_from_dict, config_to_dict

FORMAT = "tritnet-checkpoint"


class CheckpointError(ValueError):
    pass


def save_atomic(obj, path: str | Path):
    """torch.save to a temporary file beside ``path``, then rename: a kill never leaves half a file."""
    with atomic_open(path, "wb") as f:
        torch.save(obj, f)


def read_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, truncated zip, code-carrying pickles refused by weights_only
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: {str(e)[:200]})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict of tensors, found {type(obj).__name__}")
    return obj


def ternary_map(model: nn.Module) -> dict[str, dict]:
    return {n: config_to_dict(m.config) for n, m in weight_layers(model) if is_ternary(m)}


def apply_ternary_map(model: nn.Module, tmap: dict[str, dict]):
    """Make the same layers ternary, with the same configs, as the model a checkpoint was saved from."""
    for name, cfg in tmap.items():
        ternarize_(model, config_from_dict(cfg), layers=[name])


def model_checkpoint(model: nn.Module, **extra) -> dict:
    model = getattr(model, "module", model)  # unwrap DistributedDataParallel
    info = getattr(model, "model_info", None)
    out = {"format": FORMAT, "arch": info.name if info else type(model).__name__,
           "ternary": ternary_map(model), "model": model.state_dict(), **extra}
    if info and "darknet_cfg" in info.extra:      # a darknet classifier: the cfg is its architecture
        out["darknet_cfg"] = info.extra["darknet_cfg"]
    return out


def _state_dict_of(obj: dict) -> dict:
    for key in ("model", "state_dict"):
        if key in obj and isinstance(obj[key], dict):
            sd = obj[key]
            break
    else:
        sd = obj
    # DataParallel / DistributedDataParallel checkpoints prefix every key with "module."
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def load_into(model: nn.Module, path: str | Path, obj: dict | None = None) -> dict:
    """Load a checkpoint's weights into ``model`` (ternarizing the layers it says were ternary first).

    A checkpoint of another architecture is an error that names the file and the mismatching tensors.
    """
    obj = obj if obj is not None else read_checkpoint(path)
    info = getattr(model, "model_info", None)
    if obj.get("format") == FORMAT and info and obj.get("arch") not in (None, info.name):
        raise CheckpointError(f"{path}: checkpoint of architecture {obj['arch']!r}, model is {info.name!r}")
    if obj.get("ternary"):
        apply_ternary_map(model, obj["ternary"])
    sd = _state_dict_of(obj)
    own = model.state_dict()
    # Files saved before PyTorch 0.4.1 have no BatchNorm counters; the counters do not affect outputs.
    missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in own]
    wrong = [f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}" for k in own
             if k in sd and hasattr(sd[k], "shape") and sd[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        name = info.name if info else type(model).__name__
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensors (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        if wrong:
            parts.append(f"{len(wrong)} of another shape (e.g. {'; '.join(wrong[:3])})")
        raise CheckpointError(f"{path}: not a checkpoint of {name}: " + "; ".join(parts))
    model.load_state_dict(sd, strict=False)
    return obj


def load_pretrained(model: nn.Module, source: str | Path, info=None) -> dict:
    """Load pretrained weights from a file, or from the file matching the model in a folder."""
    source = Path(source)
    if source.is_dir():
        pattern = info.pretrained_glob if info else None
        matches = sorted(source.glob(pattern)) if pattern else []
        if len(matches) != 1:
            raise CheckpointError(f"{source}: expected one file matching {pattern!r} for "
                                  f"{info.name if info else 'the model'}, found {len(matches)}")
        source = matches[0]
    return load_into(model, source)
