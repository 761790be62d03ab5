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

from ..layerspec import Layers, LayerSpecError
from ._schema import MAX_ACTIVATIONS, MAX_PARAMS
from .section import CfgWarning, Section, _user_stacklevel

__all__ = ["LayerInfo", "infer_layers", "count_params", "layer_table", "LayerTable", "LayerRow", "layer_features",
           "darknet_layers"]

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


def _strides(sec):
    """(stride_y, stride_x): AlexeyAB reads one per axis (a value below 1 means "as stride"); pjreddie one."""
    stride = sec.param("stride")
    if sec.dialect != "alexeyab":
        return stride, stride
    sy, sx = sec.param("stride_y"), sec.param("stride_x")
    return (sy if sy >= 1 else stride), (sx if sx >= 1 else stride)


def _conv(sec, i, prev, infos):
    c, h, w = _image(sec, prev, "a convolutional layer")
    p = sec.param
    n, size, groups = p("filters"), p("size"), p("groups")
    sy, sx = _strides(sec)
    padding = size // 2 if p("pad") else p("padding")
    if c % groups or n % groups:
        raise sec.error(f"groups={groups} must divide both the input channels ({c}) and filters ({n})", "groups")
    out_h = _cdiv(h + 2 * padding - size, sy) + 1
    out_w = _cdiv(w + 2 * padding - size, sx) + 1
    if out_h < 1 or out_w < 1:
        shown = sx if sx == sy else f"{sx}x{sy}"
        raise sec.error(f"a {size}x{size}/{shown} conv (padding {padding}) does not fit a {w}x{h} input")
    dilation = sec.read("dilation", 1) if size > 1 else 1     # AlexeyAB: "if (size == 1) dilation = 1"
    if dilation > 1:
        # AlexeyAB sizes the output as if undilated but im2col pads by padding·dilation and reads a dilated
        # kernel; only where both give the same size (pad=1 with an odd size) is the result defined
        span = dilation * (size - 1) + 1
        got = (_cdiv(h + 2 * padding * dilation - span, sy) + 1, _cdiv(w + 2 * padding * dilation - span, sx) + 1)
        if got != (out_h, out_w):
            raise sec.error(f"dilation={dilation} with padding {padding}: AlexeyAB's im2col fills {got[1]}x{got[0]} "
                            f"positions of a {out_w}x{out_h} output (use pad=1 with an odd size)", "dilation")
    if sec.read("numload") > n:   # darknet's loader sets l.n = numload and reads past the layer's buffers
        raise sec.error(f"numload={p('numload')} is more than filters={n}", "numload")
    bn = bool(p("batch_normalize"))
    nweights = c // groups * n * size * size
    # darknet's print: (2.0 * l.n * l.size*l.size*l.c/l.groups * l.out_h*l.out_w)/1e9, all in double
    bflops = (2.0 * n * size * size * c / groups * out_h * out_w) / 1000000000.
    attrs = dict(filters=n, size=size, stride=sx, padding=padding, groups=groups, batch_normalize=bn,
                 activation=p("activation"), ternary=bool(p("ternary")), nweights=nweights, strides=(sy, sx),
                 dilation=dilation)
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
    """[maxpool] and AlexeyAB's [local_avgpool]: the same windows (``make_maxpool_layer``)."""
    what = "a maxpool layer" if sec.type == "maxpool" else "a local_avgpool layer"
    c, h, w = _image(sec, prev, what)
    p = sec.param
    size, padding = p("size"), p("padding")
    if sec.dialect == "alexeyab":
        sy, sx = p("stride_y"), p("stride_x")
    else:
        sy = sx = p("stride")
    out_h = _cdiv(h + padding - size, sy) + 1
    out_w = _cdiv(w + padding - size, sx) + 1
    if out_h < 1 or out_w < 1:
        shown = sx if sx == sy else f"{sx}x{sy}"
        raise sec.error(f"a {size}x{size}/{shown} {sec.type} (padding {padding}) does not fit a {w}x{h} input")
    return (c, h, w), c * h * w, (c, out_h, out_w), c * out_h * out_w, 0, 0.0, dict(size=size, stride=sx,
                                                                                   padding=padding, strides=(sy, sx))


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
    attrs = dict(layers=layers)
    groups, group_id = sec.read("groups", 1), sec.read("group_id", 0)
    if groups > 1 or group_id:
        # AlexeyAB: from each input the contiguous chunk [group_id, group_id + 1)·size/groups, i.e. a channel
        # range of every input, concatenated in layer order (forward_route_layer)
        if group_id >= groups:
            raise sec.error(f"group_id={group_id} must be below groups={groups}", "group_id")
        for j in layers:
            cj = infos[j].out_shape[0] if infos[j].out_shape[0] else infos[j].outputs
            if cj % groups:
                raise sec.error(f"groups={groups} does not divide the {cj} channels of layer {j}", "groups")
        c, outputs = c // groups, outputs // groups
        attrs.update(groups=groups, group_id=group_id)
    return (0, 0, 0), outputs, (c, h, w), outputs, 0, 0.0, attrs


def _shortcut(sec, i, prev, infos):
    if "from" not in sec:
        raise sec.error("a shortcut needs from=")
    if sec.dialect == "alexeyab":
        return _shortcut_alexeyab(sec, i, prev, infos)
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


def _shortcut_alexeyab(sec, i, prev, infos):
    """AlexeyAB's [shortcut]: the previous output plus every ``from`` layer (same width and height; where the
    channel counts differ the first channels are added), optionally weighted per input (``per_feature``) or per
    input and channel (``per_channel``): ``nweights`` floats in the .weights file. No alpha/beta."""
    c, h, w = _image(sec, prev, "a shortcut layer")
    sources = [_resolve_index(sec, "from", k, i) for k in sec.param("from")]
    for j in sources:
        c1, h1, w1 = infos[j].out_shape
        if (h1, w1) != (h, w):
            raise sec.error(f"from: layer {j} ({w1}x{h1}x{c1}) and the previous layer ({w}x{h}x{c}) differ in width "
                            f"or height (AlexeyAB's darknet asserts they are equal)", "from")
    kind, norm = sec.param("weights_type"), sec.param("weights_normalization")
    kind = {"per_layer": "per_feature"}.get(kind, kind)
    nweights = {"none": 0, "per_feature": len(sources) + 1, "per_channel": (len(sources) + 1) * c}[kind]
    attrs = dict(**{"from": sources[0]}, sources=sources, activation=sec.param("activation"), weights_type=kind,
                 weights_normalization={"avg_relu": "relu"}.get(norm, norm) if nweights else "none",
                 nweights=nweights)
    if len(sources) == 1 and not nweights:
        attrs.update(alpha=1.0, beta=1.0)      # exactly pjreddie's same-size shortcut
    bflops = c * h * w * len(sources) / 1e9 * (2 if nweights else 1)     # make_shortcut_layer's l.bflops
    return (c, h, w), c * h * w, (c, h, w), c * h * w, nweights, bflops, attrs


def _scale_channels(sec, i, prev, infos):
    """out = from · previous output, the previous output holding one scale per channel (a 1x1xC squeeze-excite
    vector) or, with ``scale_wh=1``, one per position (WxHx1). The output has the shape of ``from``."""
    j = _resolve_index(sec, "from", sec.param("from"), i)
    c, h, w = prev[0]
    c2, h2, w2 = infos[j].out_shape
    if sec.param("scale_wh"):
        if c != 1 or (h, w) != (h2, w2):
            raise sec.error(f"scale_wh=1 scales layer {j} ({w2}x{h2}x{c2}) per position: the previous layer must "
                            f"output {w2}x{h2}x1, not {w}x{h}x{c}", "scale_wh")
    elif (h, w) != (1, 1) or c != c2:
        raise sec.error(f"from: layer {j} ({w2}x{h2}x{c2}) is scaled per channel: the previous layer must output "
                        f"1x1x{c2}, not {w}x{h}x{c}", "from")
    outputs = c2 * h2 * w2
    attrs = dict(**{"from": j}, scale_wh=bool(sec.param("scale_wh")), activation=sec.param("activation"))
    return (c, h, w), outputs, (c2, h2, w2), outputs, 0, 0.0, attrs


def _sam(sec, i, prev, infos):
    """AlexeyAB's spatial attention: out = from · previous output, element by element (same shapes)."""
    j = _resolve_index(sec, "from", sec.param("from"), i)
    c, h, w = _image(sec, prev, "a sam layer")
    if infos[j].out_shape != (c, h, w):
        c2, h2, w2 = infos[j].out_shape
        raise sec.error(f"from: layer {j} ({w2}x{h2}x{c2}) and the previous layer ({w}x{h}x{c}) must have the same "
                        f"shape", "from")
    attrs = dict(**{"from": j}, activation=sec.param("activation"))
    return (c, h, w), c * h * w, (c, h, w), c * h * w, 0, 0.0, attrs


def _empty(sec, i, prev, infos):
    return prev[0], prev[1], prev[0], prev[1], 0, 0.0, {}


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
    s, reverse, flatten, extra = p("stride"), bool(p("reverse")), bool(sec.read("flatten")), sec.read("extra")
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
    bad = next((v for v in a if not v > 0), None)
    if bad is not None:     # darknet takes it and draws boxes of negative or zero width
        raise sec.error(f"anchors: {bad:g} is not a box size (every anchor width and height must be > 0)",
                        key="anchors")
    if len(a) > 2 * n_pairs:
        what = ("pjreddie darknet writes past its buffer (heap corruption)" if sec.dialect == "pjreddie" else
                "AlexeyAB's darknet ignores the rest")
        notes.append((sec.where("anchors"), f"[{sec.header}]: {len(a)} anchor values for {n_pairs} anchors; "
                      f"{what}; only the first {2 * n_pairs} are used"))
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
    # What changes the output or the decoding beyond pjreddie's yolo, present only when it does (so a plain
    # head's attrs stay the ones every consumer knows): x, y scaled about the cell centre; new_coords
    # (AlexeyAB: logistic outputs from the conv, w = (2·t)²·anchor); the NMS kind of AlexeyAB's detector test.
    if p("scale_x_y") != 1:
        attrs["scale_x_y"] = p("scale_x_y")
    if sec.read("new_coords"):
        attrs["new_coords"] = 1
    if sec.read("nms_kind", "default") != "default":
        attrs.update(nms_kind=p("nms_kind"), beta_nms=p("beta_nms"))
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
    # pjreddie's file holds scales, rolling mean and variance; AlexeyAB's holds the biases first
    return (c, h, w), c * h * w, (c, h, w), c * h * w, (4 if sec.dialect == "alexeyab" else 3) * c, 0.0, {}


def _activation(sec, i, prev, infos):
    return prev[0], prev[1], prev[0], prev[1], 0, 0.0, dict(activation=sec.param("activation"))


_INFER = {
    "convolutional": _conv, "connected": _connected, "maxpool": _maxpool, "avgpool": _avgpool,
    "softmax": _softmax, "dropout": _dropout, "route": _route, "shortcut": _shortcut,
    "upsample": _upsample, "reorg": _reorg, "region": _region, "yolo": _yolo, "cost": _cost,
    "crop": _crop, "batchnorm": _batchnorm, "activation": _activation, "scale_channels": _scale_channels,
    "sam": _sam, "local_avgpool": _maxpool, "empty": _empty,
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
    if info.type in ("maxpool", "local_avgpool"):
        c, out_h, out_w = info.out_shape
        size, (sy, sx) = info.attrs["size"], info.attrs["strides"]
        n += c * ((out_h - 1) * sy + size) * ((out_w - 1) * sx + size)
    return n


# Activations pjreddie's darknet computes (AlexeyAB's and darknetTWN's additions are features below).
_PJREDDIE_ACTIVATIONS = ("logistic", "loggy", "relu", "elu", "selu", "relie", "plse", "hardtan", "lhtan", "linear",
                         "ramp", "leaky", "tanh", "stair")


def layer_features(info: LayerInfo) -> list:
    """What this layer computes beyond the plain core of its type (pjreddie's layers without groups), for consumers
    that reimplement layers: an exporter refuses the ones it does not know rather than build a wrong graph. Names:

    ``section:<type>`` (scale_channels, sam, local_avgpool, empty), ``activation:<name>`` (swish, mish, ...),
    ``batchnorm:alexeyab`` (sqrt(var + 1e-5), folded), ``conv:groups``, ``conv:strides`` (stride_x != stride_y),
    ``conv:dilation``, ``maxpool:strides``, ``route:groups``, ``shortcut:sources`` (more than one ``from``),
    ``shortcut:weights``, ``batchnorm:biases`` (AlexeyAB's [batchnorm]), ``yolo:scale_x_y``, ``yolo:new_coords``,
    ``yolo:nms_kind``.
    """
    a, t = info.attrs, info.type
    out = []
    if t in ("scale_channels", "sam", "local_avgpool", "empty"):
        out.append(f"section:{t}")
    act = a.get("activation")
    if act is not None and act not in _PJREDDIE_ACTIVATIONS:
        out.append(f"activation:{act}")
    if a.get("batch_normalize") and info.section.dialect == "alexeyab":
        out.append("batchnorm:alexeyab")
    if t == "batchnorm" and info.section.dialect == "alexeyab":
        out += ["batchnorm:alexeyab", "batchnorm:biases"]
    if t == "convolutional":
        out += ["conv:groups"] * (a["groups"] > 1) + ["conv:dilation"] * (a["dilation"] > 1)
    if t in ("convolutional", "maxpool") and a["strides"][0] != a["strides"][1]:
        out.append(f"{'conv' if t == 'convolutional' else t}:strides")
    if t == "route" and "groups" in a:
        out.append("route:groups")
    if t == "shortcut" and len(a.get("sources", [a["from"]])) > 1:
        out.append("shortcut:sources")
    if t == "shortcut" and a.get("nweights"):
        out.append("shortcut:weights")
    if t == "yolo":
        out += [f"yolo:{k}" for k in ("scale_x_y", "new_coords", "nms_kind") if k in a]
    return out


def _gib(floats: int) -> str:
    return f"{4 * floats / 2**30:.3g} GiB"


def count_params(sections) -> int:
    """Number of floats in a complete .weights file for this cfg (what darknet writes)."""
    return sum(i.n_params for i in infer_layers(sections) if not i.section.read("dontsave"))


# ---- layer table ---------------------------------------------------------------------------------------
_SHORT = {"convolutional": "conv", "maxpool": "max", "avgpool": "avg", "shortcut": "res", "region": "detection",
          "connected": "connected", "scale_channels": "scale", "local_avgpool": "local_avg"}


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
            if "groups" in a:
                note += f"  {a['group_id']}/{a['groups']}"        # AlexeyAB prints group_id/groups
        elif info.type in ("shortcut", "scale_channels", "sam"):
            note = f"from {' '.join(str(j) for j in a.get('sources', [a['from']]))}"
        size = a.get("size") if info.type in ("convolutional", "maxpool", "local_avgpool") else None
        stride = a.get("stride") if info.type in ("convolutional", "maxpool", "local_avgpool", "upsample",
                                                  "reorg") else None
        filters = a.get("filters") if info.type == "convolutional" else a.get("output")
        rows.append(LayerRow(info.index, _SHORT.get(info.type, info.type), filters, size, stride, info.in_shape,
                             info.out_shape, info.inputs, info.outputs, info.bflops, info.ternary,
                             info.n_params, note))
    total = sum(r.params for r, s in zip(rows, sections[1:]) if not s.read("dontsave"))
    return LayerTable(rows, total, sum(r.bflops for r in rows))


def darknet_layers(cfg, error: type = LayerSpecError) -> Layers:
    """The conv layers of a parsed darknet cfg; outputs are the convs feeding a [region]/[yolo] (else the
    last conv, as in a darknet classifier)."""
    infos = infer_layers(cfg)
    convs = [i for i in infos if i.type == "convolutional"]
    if not convs:
        raise error(f"{cfg.path}: no [convolutional] layer to ternarize")
    ids = [i.index for i in convs]
    heads = [i.index - 1 for i in infos if i.type in ("region", "yolo") and i.index - 1 in ids]
    names = [f"{i.index} conv {i.attrs['filters']} {i.attrs['size']}x{i.attrs['size']}/{i.attrs['stride']}"
             for i in convs]
    return Layers(ids, names, [i.attrs["nweights"] for i in convs], [ids[0]], heads or [ids[-1]],
                  {i.index: i.type for i in infos}, by_name=False, error=error)
