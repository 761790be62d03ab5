"""One way to get a model from what a user names: every verb, trainer and exporter calls :func:`load_model`.

A *source* is one of three things, decided by :func:`source_kind` and nowhere else:

* ``"cfg"``: a darknet ``.cfg`` (the cfg is the model). A cfg with a ``[region]``/``[yolo]`` head builds the
  detector network, any other cfg a darknet classifier. ``weights``: darknet ``.weights`` (a ``partial``
  prefix only with ``prefix=True``), a detector training ``.ckpt`` or a classifier checkpoint. ``layers``
  chooses the ternary convs (default: the cfg's ``ternary=1``); ``method`` ternarizes them (None: float).
* ``"model"``: a registered architecture (``list_models()``); ``weights`` is a checkpoint file or a folder of
  pretrained files; ``method`` and ``layers`` (default all) ternarize it afterwards.
* ``"checkpoint"``: a tritnet classifier checkpoint, which records its architecture, ternary layers, method
  and class names; ``method``/``layers`` are refused (it says what it is).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch.nn as nn

from ..darknet.cfg import is_cfg_name
from ..quant.configs import method_name, ternarizer_options
from .checkpoint import CheckpointError, load_into, load_pretrained, read_checkpoint
from .registry import create_model, list_models

__all__ = ["Loaded", "load_model", "load_classifier", "source_kind", "DETECTOR_FORMAT", "load_detector_state"]

DETECTOR_FORMAT = "tritnet-detector-checkpoint"


@dataclass
class Loaded:
    model: nn.Module
    kind: str                              # "detector" (darknet region/yolo network) or "classifier"
    class_names: Optional[list] = None     # what the source itself records (a checkpoint), else None
    state: dict = field(default_factory=dict)   # the checkpoint read, for what else it recorded


def source_kind(source) -> str:
    """"cfg", "model" or "checkpoint" for what a user named (see the module's docstring)."""
    s = str(source)
    if is_cfg_name(s) or _is_parsed_cfg(source):
        return "cfg"
    if s in list_models():
        return "model"
    return "checkpoint"


def _is_parsed_cfg(source) -> bool:
    from ..darknet import Cfg
    return isinstance(source, Cfg)


def load_detector_state(path) -> dict:
    """A detector training checkpoint (``.ckpt`` written by ``detector train``), read without running code."""
    state = read_checkpoint(path)
    if state.get("format") != DETECTOR_FORMAT:
        raise ValueError(f"{path}: not a tritnet detector checkpoint (.ckpt written by `detector train`)")
    return state


def load_classifier(path, device: str = "cpu") -> tuple[nn.Module, dict]:
    """A trained classifier from a tritnet checkpoint (architecture, ternary layers and class names included)."""
    state = read_checkpoint(path)
    if state.get("format") != "tritnet-checkpoint":
        raise CheckpointError(f"{path}: not a tritnet checkpoint (no architecture recorded); "
                              "pass --model and the weights instead")
    names = state.get("class_names") or []
    if "darknet_cfg" in state:     # built float from its cfg text; the checkpoint's ternary map swaps the layers
        from .darknet_classifier import DarknetClassifier
        model = DarknetClassifier(state["arch"].split(":", 1)[-1], None, cfg_text=state["darknet_cfg"],
                                  num_classes=len(names) or None)
    else:
        model = create_model(state["arch"], num_classes=len(names) or None)
    load_into(model, path, state)
    return model.to(device).eval(), state


def _ternarize_checkpoint(model, source, method, layers, opts) -> None:
    """A float checkpoint takes ``method`` on ``layers``; a ternary one records its own ternarization, which a
    different method or layer choice would silently replace: refused."""
    from ..nn import is_ternary, ternarize_
    if not method:
        return
    recorded = sorted({m.config.method for m in model.modules() if is_ternary(m)})
    if not recorded:
        ternarize_(model, method=method, layers=layers or "all", **opts)
    elif recorded != [method] or layers:
        raise ValueError(f"{source}: a tritnet checkpoint whose layers are {'/'.join(recorded)} records its own "
                         f"ternarization; --method/--layers apply to float checkpoints and to weights given with a "
                         f"model name or cfg")


def _has_detection_head(cfg) -> bool:
    return any(s.type in ("region", "yolo", "detection") for s in cfg)


def load_model(source, weights=None, *, method: Optional[str] = None, layers=None, num_classes: Optional[int] = None,
               per_channel: bool = False, threshold: Optional[float] = None, t_ex: Optional[int] = None,
               prefix: bool = False, dialect: Optional[str] = None) -> Loaded:
    """The model ``source`` names, with ``weights`` loaded and ``method`` applied to ``layers`` (a layer spec,
    ``tritnet.layerspec``); in eval mode. ``method`` None, "float" or "none": no ternarization."""
    method = method_name(method)
    opts = ternarizer_options(method, per_channel=per_channel, threshold=threshold, t_ex=t_ex) \
        if method != "darknettwn" else {}
    kind = source_kind(source)
    if kind == "checkpoint":
        if weights is not None:
            raise ValueError(f"{source}: not a darknet .cfg or a registered model ({', '.join(list_models())}); "
                             "a checkpoint is given alone")
        if Path(source).is_dir():
            raise ValueError(f"{source}: is a folder; a folder of pretrained files needs a model name")
        if not Path(source).is_file():
            raise FileNotFoundError(f"{source}: no such file (a .cfg, a model name or a tritnet checkpoint)")
        model, state = load_classifier(source)
        _ternarize_checkpoint(model, source, method, layers, opts)
        return Loaded(model, "classifier", state.get("class_names"), state)
    if kind == "model":
        model = create_model(source, num_classes=num_classes)
        state = {}
        if weights is not None:
            p = Path(weights)
            state = load_pretrained(model, p, model.model_info) if p.is_dir() else load_into(model, p)
        if method:
            from ..nn import ternarize_
            ternarize_(model, method=method, layers=layers or "all", **opts)
        return Loaded(model.eval(), "classifier", state.get("class_names"), state)

    from ..darknet import darknet_layers, parse_cfg, set_ternary
    cfg = copy.deepcopy(source) if _is_parsed_cfg(source) else parse_cfg(source, dialect=dialect)
    if not _has_detection_head(cfg):
        model = create_model(cfg, pretrained=weights, num_classes=num_classes, method=method,
                             layers=layers or "cfg", **opts)
        return Loaded(model.eval(), "classifier")
    if layers not in (None, "cfg"):
        set_ternary(cfg, None, on=False)
        set_ternary(cfg, darknet_layers(cfg).resolve(layers, f"{cfg.path}: layers"))
    from ..darknet import build_darknet
    if weights is not None and str(weights).endswith(".ckpt"):
        net = build_darknet(cfg, None, method, **opts)
        try:
            net.load_state_dict(load_detector_state(weights)["model"])
        except RuntimeError as e:
            raise ValueError(f"{weights}: checkpoint does not fit {cfg.path} ({str(e).splitlines()[0]})") from None
        return Loaded(net.eval(), "detector")
    if weights is not None and not Path(weights).is_file():
        raise FileNotFoundError(f"{weights}: no such weights file")
    return Loaded(build_darknet(cfg, weights, method, prefix=prefix, **opts), "detector")
