"""Shape inference, parameter counts and the layer table, as darknet's ``parse_network_cfg`` computes them.

Each layer receives what darknet calls ``size_params``: the previous layer's ``out_c, out_h, out_w`` and
``outputs`` (the [net] size for layer 0). Layers that need an image (conv, maxpool, ...) refuse an input
without one. Shapes are ``(c, h, w)``. Flat layers (``softmax``, ``cost``) have ``(0, 0, 0)`` like darknet's
``out_c/out_h/out_w``, with the element count in ``outputs``. No torch, no numpy.

Single values are bounded where they are read (``_schema.LIMITS``); what they add up to is bounded here, layer by
layer and before anything is allocated: the parameters (``MAX_PARAMS``) and the floats one image holds in a
forward pass (``MAX_ACTIVATIONS``).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Optional

from ._schema import MAX_ACTIVATIONS, MAX_PARAMS
from .cfg import CfgWarning, Section, _user_stacklevel

__all__ = ["LayerInfo", "infer_layers", "count_params", "layer_table", "LayerTable", "LayerRow"]

Shape = tuple  # (c, h, w)


@dataclass
class LayerInfo:
    """One darknet layer after shape inference."""
    index: int
    type: str
    section: Section
    in_shape: Shape          # (c, h, w) darknet's l.c, l.h, l.w; (0, 0, 0) for route
    inputs: int              # darknet's l.inputs (elements per image)
    out_shape: Shape         # (c, h, w) darknet's l.out_c, l.out_h, l.out_w
    outputs: int             # darknet's l.outputs
    n_params: int = 0        # floats this layer writes to a .weights file
    bflops: float = 0.0
    attrs: dict = field(default_factory=dict)  # resolved settings (filters, size, stride, padding, ...)

    @property
    def ternary(self) -> bool:
        return bool(self.attrs.get("ternary", False))

    @property
    def line(self) -> Optional[int]:
        return self.section.line


def _cdiv(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _image(sec: Section, prev, what: str):
    c, h, w = prev[0]
    if not (c > 0 and h > 0 and w > 0):
        raise sec.error(f"the layer before {what} must output an image, got c,h,w = {c},{h},{w}")
    return c, h, w


def _resolve_index(sec: Section, key: str, idx: int, i: int) -> int:
    j = i + idx if idx < 0 else idx
    if not 0 <= j < i:
        raise sec.error(f"{key}: layer {idx} (absolute {j}) does not exist before layer {i}", key)
    return j


def _conv(sec, i, prev, infos):
    c, h, w = _image(sec, prev, "a convolutional layer")
    p = sec.param
    n, size, stride, groups = p("filters"), p("size"), p("stride"), p("groups")
    padding = size // 2 if p("pad") else p("padding")
    if c % groups or n % groups:
        raise sec.error(f"groups={groups} must divide both the input channels ({c}) and filters ({n})", "groups")
    out_h = _cdiv(h + 2 * padding - size, stride) + 1
    out_w = _cdiv(w + 2 * padding - size, stride) + 1
    if out_h < 1 or out_w < 1:
        raise sec.error(f"a {size}x{size}/{stride} conv (padding {padding}) does not fit a {w}x{h} input")
    if p("numload") > n:   # darknet's loader sets l.n = numload and reads past the layer's buffers
        raise sec.error(f"numload={p('numload')} is more than filters={n}", "numload")
    bn = bool(p("batch_normalize"))
    nweights = c // groups * n * size * size
    # darknet's print: (2.0 * l.n * l.size*l.size*l.c/l.groups * l.out_h*l.out_w)/1e9, all in double
    bflops = (2.0 * n * size * size * c / groups * out_h * out_w) / 1000000000.
    attrs = dict(filters=n, size=size, stride=stride, padding=padding, groups=groups, batch_normalize=bn,
                 activation=p("activation"), ternary=bool(p("ternary")), nweights=nweights)
    return (c, h, w), c * h * w, (n, out_h, out_w), n * out_h * out_w, n * (4 if bn else 1) + nweights, bflops, attrs


def _connected(sec, i, prev, infos):
    p = sec.param
    inputs, out = prev[1], p("output")
    if inputs < 1:
        raise sec.error("the layer before a connected layer has no outputs")
    bn = bool(p("batch_normalize"))
    attrs = dict(output=out, batch_normalize=bn, activation=p("activation"))
    nparams = out + inputs * out + (3 * out if bn else 0)
    return (inputs, 1, 1), inputs, (out, 1, 1), out, nparams, 2.0 * inputs * out / 1e9, attrs


def _maxpool(sec, i, prev, infos):
    c, h, w = _image(sec, prev, "a maxpool layer")
    p = sec.param
    stride, size, padding = p("stride"), p("size"), p("padding")
    out_h = _cdiv(h + padding - size, stride) + 1
    out_w = _cdiv(w + padding - size, stride) + 1
    if out_h < 1 or out_w < 1:
        raise sec.error(f"a {size}x{size}/{stride} maxpool (padding {padding}) does not fit a {w}x{h} input")
    return (c, h, w), c * h * w, (c, out_h, out_w), c * out_h * out_w, 0, 0.0, dict(size=size, stride=stride,
                                                                                   padding=padding)


def _avgpool(sec, i, prev, infos):
    c, h, w = _image(sec, prev, "an avgpool layer")
    return (c, h, w), c * h * w, (c, 1, 1), c, 0, 0.0, {}


def _softmax(sec, i, prev, infos):
    groups, inputs = sec.param("groups"), prev[1]
    if inputs % groups:
        raise sec.error(f"groups={groups} does not divide the {inputs} inputs", "groups")
    attrs = dict(groups=groups, temperature=sec.param("temperature"), spatial=sec.param("spatial"))
    return prev[0], inputs, (0, 0, 0), inputs, 0, 0.0, attrs


def _dropout(sec, i, prev, infos):
    prob = sec.param("probability")
    if not 0.0 <= prob < 1.0:
        raise sec.error(f"probability must be in [0, 1), got {prob}", "probability")
    return prev[0], prev[1], prev[0], prev[1], 0, 0.0, dict(probability=prob)


def _route(sec, i, prev, infos):
    idx = sec.param("layers")
    if idx is None:
        raise sec.error("a route needs layers= (darknet: 'Route Layer must specify input layers')")
    layers = [_resolve_index(sec, "layers", k, i) for k in idx]
    first = infos[layers[0]]
    c, h, w = first.out_shape
    for j in layers[1:]:
        nc, nh, nw = infos[j].out_shape
        if (nh, nw) != (h, w):
            raise sec.error(f"layers: cannot concatenate layer {layers[0]} ({w}x{h}x{c}) with layer {j} "
                            f"({nw}x{nh}x{nc}): width and height differ", "layers")
        c += nc
    outputs = sum(infos[j].outputs for j in layers)
    return (0, 0, 0), outputs, (c, h, w), outputs, 0, 0.0, dict(layers=layers)


def _shortcut(sec, i, prev, infos):
    if "from" not in sec:
        raise sec.error("a shortcut needs from=")
    j = _resolve_index(sec, "from", sec.param("from"), i)
    c2, h2, w2 = _image(sec, prev, "a shortcut layer")
    c1, h1, w1 = infos[j].out_shape
    if not (c1 > 0 and h1 > 0 and w1 > 0):
        raise sec.error(f"from: layer {j} does not output an image", "from")
    # shortcut_cpu: stride = w1/w2, sample = w2/w1, assert(stride == h1/h2), assert(sample == h2/h1)
    if w1 // w2 != h1 // h2 or w2 // w1 != h2 // h1:
        raise sec.error(f"from: layer {j} ({w1}x{h1}x{c1}) and the previous layer ({w2}x{h2}x{c2}) are not "
                        f"related by one integer scale in both width and height", "from")
    attrs = dict(**{"from": j}, activation=sec.param("activation"), alpha=sec.param("alpha"),
                 beta=sec.param("beta"))
    return (c2, h2, w2), c2 * h2 * w2, (c2, h2, w2), c2 * h2 * w2, 0, 0.0, attrs


def _upsample(sec, i, prev, infos):
    c, h, w = _image(sec, prev, "an upsample layer")
    stride = sec.param("stride")
    if stride == 0:
        raise sec.error("stride must not be 0", "stride")
    reverse = stride < 0
    s = -stride if reverse else stride
    out_h, out_w = (h // s, w // s) if reverse else (h * s, w * s)
    if out_h < 1 or out_w < 1:
        raise sec.error(f"downsampling {w}x{h} by {s} leaves nothing", "stride")
    if reverse and (h % s or w % s):
        raise sec.error(f"downsampling by {s} needs width and height divisible by {s}, got {w}x{h}", "stride")
    return (c, h, w), c * h * w, (c, out_h, out_w), c * out_h * out_w, 0, 0.0, dict(
        stride=s, reverse=reverse, scale=sec.param("scale"))


def _reorg(sec, i, prev, infos):
    c, h, w = _image(sec, prev, "a reorg layer")
    p = sec.param
    s, reverse, flatten, extra = p("stride"), bool(p("reverse")), bool(p("flatten")), p("extra")
    if reverse:
        if c % (s * s):
            raise sec.error(f"reverse reorg by {s} needs channels divisible by {s * s}, got {c}", "stride")
        out = (c // (s * s), h * s, w * s)
    else:
        if h % s or w % s:
            raise sec.error(f"reorg by {s} needs width and height divisible by {s}, got {w}x{h}", "stride")
        if c % (s * s):   # darknet's reorg_cpu walks the input as c/s² channel groups, in either direction
            raise sec.error(f"reorg by {s} needs channels divisible by {s * s}, got {c}", "stride")
        out = (c * s * s, h // s, w // s)
    outputs = out[0] * out[1] * out[2]
    if extra:
        out, outputs = (0, 0, 0), c * h * w + extra
    return (c, h, w), c * h * w, out, outputs, 0, 0.0, dict(stride=s, reverse=reverse, flatten=flatten, extra=extra)


def _anchors(sec, n_pairs, notes):
    a = sec.param("anchors")
    if a is None:
        return None
    if len(a) > 2 * n_pairs:
        notes.append((sec.where("anchors"), f"[{sec.header}]: {len(a)} anchor values for {n_pairs} anchors; "
                      f"pjreddie darknet writes past its buffer (heap corruption); only the first "
                      f"{2 * n_pairs} are used"))
        a = a[:2 * n_pairs]
    elif len(a) < 2 * n_pairs:
        notes.append((sec.where("anchors"), f"[{sec.header}]: {len(a)} anchor values for {n_pairs} anchors; "
                      f"darknet leaves the rest at 0.5"))
        a = a + [0.5] * (2 * n_pairs - len(a))
    return a


def _region(sec, i, prev, infos):
    c, h, w = _image(sec, prev, "a region layer")
    p = sec.param
    num, classes, coords = p("num"), p("classes"), p("coords")
    want = num * (classes + coords + 1)
    if c != want:
        raise sec.error(f"the layer before has {c} channels but num*(classes+coords+1) = {want}")
    notes = []
    attrs = dict(num=num, classes=classes, coords=coords, softmax=bool(p("softmax")),
                 background=bool(p("background")), anchors=_anchors(sec, num, notes), _notes=notes)
    return (c, h, w), c * h * w, (c, h, w), c * h * w, 0, 0.0, attrs


def _yolo(sec, i, prev, infos):
    c, h, w = _image(sec, prev, "a yolo layer")
    p = sec.param
    classes, total = p("classes"), p("num")
    mask = p("mask")
    if mask is None:
        mask = list(range(total))
    for m in mask:
        if not 0 <= m < total:
            raise sec.error(f"mask value {m} is not an anchor index below num={total}", "mask")
    want = len(mask) * (classes + 4 + 1)
    if c != want:
        raise sec.error(f"the layer before has {c} channels but len(mask)*(classes+5) = {want}")
    notes = []
    attrs = dict(classes=classes, num=total, mask=mask, anchors=_anchors(sec, total, notes), _notes=notes)
    return (c, h, w), c * h * w, (c, h, w), c * h * w, 0, 0.0, attrs


def _cost(sec, i, prev, infos):
    return prev[0], prev[1], (0, 0, 0), prev[1], 0, 0.0, dict(cost_type=sec.param("type"), scale=sec.param("scale"))


def _crop(sec, i, prev, infos):
    c, h, w = _image(sec, prev, "a crop layer")
    ch, cw = sec.param("crop_height"), sec.param("crop_width")
    if ch > h or cw > w:
        raise sec.error(f"a {cw}x{ch} crop does not fit the {w}x{h} input", "crop_height" if ch > h else "crop_width")
    return (c, h, w), c * h * w, (c, ch, cw), c * ch * cw, 0, 0.0, dict(crop_height=ch, crop_width=cw)


def _batchnorm(sec, i, prev, infos):
    c, h, w = _image(sec, prev, "a batchnorm layer")
    return (c, h, w), c * h * w, (c, h, w), c * h * w, 3 * c, 0.0, {}


def _activation(sec, i, prev, infos):
    return prev[0], prev[1], prev[0], prev[1], 0, 0.0, dict(activation=sec.param("activation"))


_INFER = {
    "convolutional": _conv, "connected": _connected, "maxpool": _maxpool, "avgpool": _avgpool,
    "softmax": _softmax, "dropout": _dropout, "route": _route, "shortcut": _shortcut,
    "upsample": _upsample, "reorg": _reorg, "region": _region, "yolo": _yolo, "cost": _cost,
    "crop": _crop, "batchnorm": _batchnorm, "activation": _activation,
}


def infer_layers(sections, *, warn: bool = False) -> list[LayerInfo]:
    """Darknet's layer-by-layer shape inference; CfgError (with the section's line) where a shape does not fit.

    With ``warn``, questionable but accepted settings (anchor counts) raise a :class:`CfgWarning`.
    """
    net = sections[0]
    if net.type != "net":
        raise net.error("the first section must be [net] or [network]")
    h, w, c = net.param("height"), net.param("width"), net.param("channels")
    prev = ((c, h, w), net.param("inputs"))
    infos: list[LayerInfo] = []
    params, floats = 0, prev[1]
    for i, sec in enumerate(sections[1:]):
        if sec.type == "net":
            raise sec.error("[net] must be the first section and appear only once")
        in_shape, inputs, out_shape, outputs, n_params, bflops, attrs = _INFER[sec.type](sec, i, prev, infos)
        for where, msg in attrs.pop("_notes", ()):
            if warn:
                warnings.warn(f"{where}: {msg}", CfgWarning, stacklevel=_user_stacklevel())
        info = LayerInfo(i, sec.type, sec, tuple(in_shape), inputs, tuple(out_shape), outputs, n_params, bflops,
                         attrs)
        params, floats = params + n_params, floats + _forward_floats(info)
        if params > MAX_PARAMS:
            raise sec.error(f"the network has {params:,} parameters up to this layer; tritnet refuses more than "
                            f"{MAX_PARAMS:,} ({_gib(MAX_PARAMS)} as float32)")
        if floats > MAX_ACTIVATIONS:
            what = f"one {w}x{h}x{c} image" if w and h and c else "one input"
            raise sec.error(f"{what} needs {floats:,} floats ({_gib(floats)}) in a forward pass up to this layer; "
                            f"tritnet refuses more than {MAX_ACTIVATIONS:,} ({_gib(MAX_ACTIVATIONS)})")
        infos.append(info)
        prev = (tuple(out_shape), outputs)
    return infos


def _forward_floats(info: LayerInfo) -> int:
    """Floats one image holds for this layer in a forward pass: its output (every output is kept for route and
    shortcut), and for a maxpool the padded copy of its input that layers/pool.py pools (darknet's default
    padding is size − 1, so a huge window is a huge copy)."""
    n = info.outputs
    if info.type == "maxpool":
        c, out_h, out_w = info.out_shape
        size, stride = info.attrs["size"], info.attrs["stride"]
        n += c * ((out_h - 1) * stride + size) * ((out_w - 1) * stride + size)
    return n


def _gib(floats: int) -> str:
    return f"{4 * floats / 2**30:.3g} GiB"


def count_params(sections) -> int:
    """Number of floats in a complete .weights file for this cfg (what darknet writes)."""
    return sum(i.n_params for i in infer_layers(sections) if not i.section.param("dontsave"))


# ---- layer table ---------------------------------------------------------------------------------------
_SHORT = {"convolutional": "conv", "maxpool": "max", "avgpool": "avg", "shortcut": "res", "region": "detection",
          "connected": "connected"}


@dataclass
class LayerRow:
    index: int
    type: str                 # darknet's short name: conv, max, avg, route, res, upsample, reorg, yolo, ...
    filters: Optional[int]
    size: Optional[int]
    stride: Optional[int]
    input: Shape              # (c, h, w); (0, 0, 0) where darknet has no image (route, softmax, cost)
    output: Shape
    inputs: int
    outputs: int
    bflops: float
    ternary: bool
    params: int
    note: str = ""            # route sources, shortcut source, activation


@dataclass
class LayerTable:
    rows: list
    total_params: int
    total_bflops: float

    def __str__(self) -> str:
        def shp(s, n):
            c, h, w = s
            return f"{w:4d} x{h:4d} x{c:4d}" if c and h and w else f"{n:>18d}"
        lines = ["layer     filters    size              input                output       BFLOPs  params  T"]
        for r in self.rows:
            filt = f"{r.filters:5d}" if r.filters else "     "
            ks = f"{r.size:2d} x{r.size:2d} /{r.stride:2d}" if r.size else (f"   /{r.stride:2d}    " if r.stride
                                                                           else " " * 10)
            if r.type == "route":
                body = f"{'route ' + r.note:<52s}"
            else:
                body = f"{filt} {ks}  {shp(r.input, r.inputs)}   ->  "
                body = f"{r.type:<9s}{body}"
            lines.append(f"{r.index:5d} {body}{shp(r.output, r.outputs)}  {r.bflops:7.3f} {r.params:7d}  "
                         f"{'T' if r.ternary else ''}")
        lines.append(f"Total: {self.total_params} params ({4 * self.total_params} bytes of floats), "
                     f"{self.total_bflops:.3f} BFLOPs")
        return "\n".join(lines)


def layer_table(sections) -> LayerTable:
    """Darknet's layer table (index, type, filters, size/stride, input -> output, BFLOPs) with a ternary flag.

    BFLOPs are darknet's conv formula ``2*n*size*size*c/groups*out_h*out_w/1e9``; a connected layer counts
    ``2*inputs*outputs/1e9``; other layers 0.
    """
    rows = []
    for info in infer_layers(sections):
        a = info.attrs
        note = ""
        if info.type == "route":
            note = " ".join(str(j) for j in a["layers"])
        elif info.type == "shortcut":
            note = f"from {a['from']}"
        size = a.get("size") if info.type in ("convolutional", "maxpool") else None
        stride = a.get("stride") if info.type in ("convolutional", "maxpool", "upsample", "reorg") else None
        filters = a.get("filters") if info.type == "convolutional" else a.get("output")
        rows.append(LayerRow(info.index, _SHORT.get(info.type, info.type), filters, size, stride, info.in_shape,
                             info.out_shape, info.inputs, info.outputs, info.bflops, info.ternary,
                             info.n_params, note))
    total = sum(r.params for r, s in zip(rows, sections[1:]) if not s.param("dontsave"))
    return LayerTable(rows, total, sum(r.bflops for r in rows))
