"""What training reads from the cfg and the command line before the loop starts: checks that the cfg fits
the data, the augmentation and multi-scale settings, and the starting point (weights file or checkpoint)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .saving import load_state

__all__ = ["check_heads", "augmentation", "multiscale_mode", "Start", "starting_point"]


def check_heads(net, data) -> None:
    """Every head must predict the .data file's classes (the cfg edit darknet users make by hand)."""
    for i in net.head_indices:
        info = net.infos[i]
        classes = info.attrs["classes"]
        if classes != data.classes:
            n = info.attrs["num"] if info.type == "region" else len(info.attrs["mask"])
            raise ValueError(f"{info.section.where('classes')}: [{info.type}] has classes={classes} but {data.path} "
                             f"has {data.classes}; set classes={data.classes} there and filters="
                             f"{n * (data.classes + 5)} in the [convolutional] before it")


def augmentation(net) -> dict:
    """darknet's load_args for detection: jitter from the last head, hue/saturation/exposure/flip from [net]."""
    last = net.infos[net.head_indices[-1]].section
    p = net.cfg.net.param
    return {"jitter": last.param("jitter"), "hue": p("hue"), "saturation": p("saturation"),
            "exposure": p("exposure"), "flip": bool(p("flip"))}


def multiscale_mode(net, requested: str = "auto") -> tuple[str, int]:
    """(mode, stride): ``random=1`` in the last head turns multi-scale on. ``auto`` picks darknet_sdl's rule
    (methods.md §1.11) for a non-square cfg with one head (the ttt models it was written for) and pjreddie's
    squares 320…608 otherwise, as pjreddie's darknet trains every cfg. ``stride`` is the network's coarsest
    downsampling (32 for yolov2/v3: the sizes must divide by every head's stride)."""
    if requested not in ("auto", "darknet", "sdl", "off"):
        raise ValueError(f"unknown multi-scale mode {requested!r}; choose auto, darknet, sdl or off")
    heads = [net.infos[i] for i in net.head_indices]
    stride = max(max(net.width // h.out_shape[2], 1) for h in heads)
    if requested != "auto":
        return requested, stride
    if not heads[-1].section.param("random"):
        return "off", stride
    return ("sdl" if net.width != net.height and len(heads) == 1 else "darknet"), stride


@dataclass
class Start:
    seen: int = 0
    state: dict | None = None       # a .ckpt to continue from
    loaded_layers: int = 0
    source: str = "darknet initialisation"


def starting_point(net, weights, clear: bool, resume: bool, checkpoint: Path) -> Start:
    """Load the initial weights (darknet .weights: ``seen`` from its header unless ``clear``; a prefix file
    fills the first layers) or the resume checkpoint; returns where training starts."""
    if resume:
        if not checkpoint.is_file():
            raise FileNotFoundError(f"{checkpoint}: nothing to resume (no checkpoint in the backup folder)")
        weights = str(checkpoint)
    if weights and str(weights).endswith(".ckpt"):
        state = load_state(weights)
        try:
            net.load_state_dict(state["model"])
        except RuntimeError as e:
            raise ValueError(f"{weights}: checkpoint does not fit {net.cfg.path} ({str(e).splitlines()[0]})") from None
        return Start(0 if clear else int(state["seen"]), None if clear else state, len(net.layers), str(weights))
    if weights:
        if not Path(weights).is_file():
            raise FileNotFoundError(f"{weights}: no such weights file")
        w = net.load_weights(weights, prefix=True)      # darknet trains from partial backbones
        return Start(0 if clear else int(w.header.seen), None, w.filled, str(weights))
    return Start()
