"""The packed graph's op set, defined once: each op's inputs, attributes (type and range), tensors and shape
rule. The reader checks every file against this table before anything runs (``check_graph``), so the planner
and the C kernels only ever see graphs whose names are unique, whose inputs exist, whose attributes have the
right types and sane sizes, and whose tensors fit the shapes they are used with.

Limits refuse files no real model comes near, before anything is allocated: a 32-bit C index, a multi-GB
buffer or a loop over millions of inputs is never reached from a hostile header.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np


class GraphError(ValueError):
    """A header or graph that breaks the op table; the reader names the file (``FormatError``)."""


# --------------------------------------------------------------------------------------------- limits
MAX_NODES = 10_000
MAX_TENSORS = 4 * MAX_NODES
MAX_NAME = 256                       # characters in a node or tensor name
MAX_FAN_IN = 16                      # concat inputs (darknet routes join up to 4)
MAX_DIM = 16_384                     # height or width of the input or of any feature map
MAX_CHANNELS = 65_536
MAX_KERNEL = 64                      # conv kernel side and padding
MAX_POOL = 1_024                     # maxpool window (global pooling of a large map)
MAX_STRIDE = 64
MAX_SCALE = 32                       # upsample and reorg stride
MAX_ELEMENTS = 1 << 28               # values in one tensor or one image's feature map (1 GiB of float32)
MAX_IMAGE_BYTES = 2 << 30            # all feature maps and conv scratch of one image
MAX_IMAGE_OPS = 10 ** 12             # multiply-adds (and window compares) for one image: yolov4-p6 at 1280 needs 6e11
MAX_CLASSES = 100_000
MAX_ANCHORS = 64
MAX_ANCHOR = 1e5                     # an anchor side (pixels for yolo, grid cells for region)

ACTIVATIONS = ("linear", "relu", "leaky", "prelu", "logistic", "swish", "mish")   # csrc/tn.h's TN_ACT_*, in order
ELEMENTWISE = tuple(a for a in ACTIVATIONS if a != "prelu")     # prelu needs a per-channel tensor: convs only
TERNARY_DTYPES = ("tern2", "tern1.6")
FLOAT_DTYPES = ("f32", "f16")
PREPROCESS = ("normalize", "letterbox", "resize")
TASKS = ("classify", "detect")
DIALECTS = ("pjreddie", "alexeyab")          # whose detector test the detections follow (tritnet_rt.heads)
NMS_KINDS = ("default", "greedynms", "diounms")


# --------------------------------------------------------------------------------------------- attributes
@dataclass(frozen=True)
class Attr:
    """One attribute: ``kind`` int | float | bool | str | ints | floats | strs | dict, a closed range [lo, hi] for
    numbers (each element of a list), ``choices`` for strings, ``length`` (fewest, most) for lists, ``fields``
    for a dict; ``optional`` attributes may be missing, ``nullable`` ones may be null."""
    kind: str
    lo: float = -math.inf
    hi: float = math.inf
    choices: tuple = ()
    length: tuple = (0, 1 << 20)
    fields: dict = None
    optional: bool = False
    nullable: bool = False
    max_chars: int = 4096            # a string's length


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def check_value(where: str, spec: Attr, v):
    """Raise GraphError unless ``v`` fits ``spec``; ``where`` names it in the message."""
    if v is None:
        if spec.nullable:
            return
        raise GraphError(f"{where} is null")
    k = spec.kind
    if k in ("int", "float"):
        if not (_is_int(v) if k == "int" else _is_number(v)):
            raise GraphError(f"{where} must be {'an integer' if k == 'int' else 'a finite number'}, not {v!r:.40}")
        if not spec.lo <= v <= spec.hi:
            raise GraphError(f"{where} = {v} is outside [{spec.lo:g}, {spec.hi:g}]")
    elif k == "bool":
        if not isinstance(v, bool):
            raise GraphError(f"{where} must be true or false, not {v!r:.40}")
    elif k == "str":
        if not isinstance(v, str):
            raise GraphError(f"{where} must be a string, not {v!r:.40}")
        if len(v) > spec.max_chars:
            raise GraphError(f"{where} is a string of {len(v)} characters (at most {spec.max_chars})")
        if spec.choices and v not in spec.choices:
            raise GraphError(f"{where} = {v!r:.40} is not one of {', '.join(spec.choices)}")
    elif k in ("ints", "floats", "strs"):
        if not isinstance(v, list) or not spec.length[0] <= len(v) <= spec.length[1]:
            n = len(v) if isinstance(v, list) else None
            raise GraphError(f"{where} must be a list of {spec.length[0]}..{spec.length[1]} values, got "
                             f"{'a list of ' + str(n) if n is not None else repr(v)[:40]}")
        one = Attr(k[:-1], spec.lo, spec.hi)
        for i, x in enumerate(v):
            check_value(f"{where}[{i}]", one, x)
    elif k == "dict":
        check_fields(where, spec.fields, v)
    else:                                                            # pragma: no cover - a table typo
        raise AssertionError(f"unknown attribute kind {k}")


def check_fields(where: str, fields: dict, d):
    """A dict against its field specs: no unknown key, every required one present and valid."""
    if not isinstance(d, dict):
        raise GraphError(f"{where} must be an object, not {d!r:.40}")
    for key in d:
        if key not in fields:
            raise GraphError(f"{where} has the unknown field {key!r:.40}")
    for key, spec in fields.items():
        if key not in d:
            if not spec.optional:
                raise GraphError(f"{where} has no {key!r}")
            continue
        check_value(f"{where}.{key}", spec, d[key])


def _int(lo=0, hi=math.inf, **kw):
    return Attr("int", lo, hi, **kw)


def _float(lo=-math.inf, hi=math.inf, **kw):
    return Attr("float", lo, hi, **kw)


def _act(choices=ACTIVATIONS):
    return Attr("str", choices=choices)


# --------------------------------------------------------------------------------------------- shape rules
class Tensors:
    """A node's tensor roles, looked up as its shape rule asks for them; roles it never asks for are an error."""

    def __init__(self, node_tensors: dict, table: dict):
        self.names, self.table, self.used = node_tensors, table, set()

    def get(self, role: str, dtypes, shape=None):
        """(dtype, shape) of role, checking the dtype and, given a tuple of allowed shapes, the shape."""
        if role not in self.names:
            raise GraphError(f"has no {role!r} tensor")
        self.used.add(role)
        name = self.names[role]
        if name not in self.table:
            raise GraphError(f"names the missing tensor {name!r:.80}")
        dtype, got = self.table[name]
        if dtype not in dtypes:
            raise GraphError(f"tensor {role} ({name!r:.80}) is {dtype}, want {' or '.join(dtypes)}")
        if shape is not None and got not in shape:
            raise GraphError(f"tensor {role} ({name!r:.80}) has shape {got}, want {' or '.join(map(str, shape))}")
        return dtype, got

    def has(self, role: str) -> bool:
        return role in self.names

    def unused(self):
        return sorted(set(self.names) - self.used)


@dataclass
class Ctx:
    """What a shape rule sees: the node's attributes, its input shapes (C, H, W), its tensors, and the
    scratch bytes it adds to the image's memory budget."""
    attrs: dict
    ins: list
    tensors: Tensors
    scratch: int = 0
    work: int = 0                    # multiply-adds or compares beyond one per output value


def _conv(x: Ctx):
    a, t = x.attrs, x.tensors
    c, h, w = x.ins[0]
    (kh, kw), st, (pt, pl, pb, pr), n = a["kernel"], a["stride"], a["pad"], a["out_channels"]
    groups = a.get("groups", 1)
    if a["in_channels"] != c:
        raise GraphError(f"in_channels {a['in_channels']} but the input has {c} channels")
    if c % groups or n % groups:
        raise GraphError(f"{groups} groups do not divide {c} input and {n} output channels")
    if groups > 1 and ("residual" in a or "input" in a or a["activation"] == "prelu"):
        raise GraphError("a grouped conv takes no residual, ternary input or prelu")
    ho, wo = (h + pt + pb - kh) // st + 1, (w + pl + pr - kw) // st + 1
    if min(ho, wo) < 1:
        raise GraphError(f"a {kh}x{kw} kernel with padding {a['pad']} does not fit the {h}x{w} input")
    dtype, _ = t.get("weight", TERNARY_DTYPES + FLOAT_DTYPES, ((n, c // groups, kh, kw),))
    t.get("bias", FLOAT_DTYPES, ((n,),))
    ternary = dtype in TERNARY_DTYPES
    if ternary:
        t.get("scale", FLOAT_DTYPES, ((1,), (n,)))
    if a["activation"] == "prelu":
        t.get("prelu", FLOAT_DTYPES, ((n,),))
    hp, wp = h + pt + pb, w + pl + pr
    x.work = ho * wo * n * kh * kw * (c // groups)
    x.scratch = hp * wp * ((c + 3) // 4 * 4 if ternary else 4 * c)      # the padded, quantized input
    if groups > 1:
        x.scratch = 4 * kh * kw * (c // groups) * n                       # float weights, no padded copy
    if a.get("input") == "ternary":
        if not ternary or c % 8:
            raise GraphError("ternary activations need ternary weights and a multiple of 8 input channels")
        t.get("act_a", FLOAT_DTYPES, ((c,),))
        t.get("act_b", FLOAT_DTYPES, ((c,),))
        x.scratch = hp * wp * c // 4 + ho * wo * 16 * -(-kh * kw * c // 64)      # bit planes, im2col bits
    if "input_quant" in a and (not ternary or groups > 1 or a.get("input") == "ternary"):
        raise GraphError("input_quant (fixed int8 input scale) is for ternary convs on 8-bit activations only")
    if "residual" in a:
        if len(x.ins) != 2:
            raise GraphError("a residual needs a second input")
        rc, rh, rw = x.ins[1]
        rs, off = a["residual"]["stride"], a["residual"]["channel_offset"]
        if off + rc > n or (ho - 1) * rs >= rh or (wo - 1) * rs >= rw:
            raise GraphError(f"residual input {(rc, rh, rw)} (stride {rs}, channel offset {off}) does not fit "
                             f"the output {(n, ho, wo)}")
    elif len(x.ins) != 1:
        raise GraphError("a second input without a residual")
    return n, ho, wo


def _maxpool(x: Ctx):
    a = x.attrs
    c, h, w = x.ins[0]
    k, s, (pt, pl), (oh, ow) = a["size"], a["stride"], a["pad"], a["out"]
    if pt >= k or pl >= k:
        raise GraphError(f"padding {a['pad']} of a {k}-wide window leaves windows outside the input")
    # darknet: out = (in + padding - size) / stride + 1, padding = 2·pad or 2·pad + 1
    for got, size, p, axis in ((oh, h, pt, "height"), (ow, w, pl, "width")):
        allowed = {(size + 2 * p + extra - k) // s + 1 for extra in (0, 1)}
        if got not in allowed or got < 1:
            raise GraphError(f"output {axis} {got} does not follow from the input {axis} {size}, size {k}, "
                             f"stride {s} and pad {p} (want {' or '.join(map(str, sorted(allowed)))})")
    x.work = c * oh * ow * k * k
    return c, oh, ow


def _concat(x: Ctx):
    c, h, w = x.ins[0]
    for s in x.ins[1:]:
        if s[1:] != (h, w):
            raise GraphError(f"concat of {s[1:]} and {(h, w)} pixels")
    return sum(s[0] for s in x.ins), h, w


def _add(x: Ctx):
    if x.ins[1] != x.ins[0]:
        raise GraphError(f"add of {x.ins[1]} and {x.ins[0]}")
    return x.ins[0]


def _upsample(x: Ctx):
    c, h, w = x.ins[0]
    s = x.attrs["stride"]
    return c, h * s, w * s


def _slice(x: Ctx):
    c, h, w = x.ins[0]
    start, n = x.attrs["start"], x.attrs["channels"]
    if start + n > c:
        raise GraphError(f"channels [{start}, {start + n}) are not inside the input's {c}")
    return n, h, w


def _scale_channels(x: Ctx):
    (c, h, w), s = x.ins
    if s != (c, 1, 1):
        raise GraphError(f"scales of shape {s} for a {(c, h, w)} map (want {(c, 1, 1)})")
    return c, h, w


def _shortcut(x: Ctx):
    c, h, w = x.ins[0]
    for s in x.ins[1:]:
        if s[1:] != (h, w):
            raise GraphError(f"shortcut of {s[1:]} and {(h, w)} pixels")
    if x.tensors.has("weights"):
        x.tensors.get("weights", FLOAT_DTYPES, ((len(x.ins), c),))
    x.work = c * h * w * len(x.ins)
    return c, h, w


def _reorg(x: Ctx):
    c, h, w = x.ins[0]
    s = x.attrs["stride"]
    if h % s or w % s:
        raise GraphError(f"reorg stride {s} does not divide {h}x{w}")
    return c * s * s, h // s, w // s


def _linear(x: Ctx):
    c, h, w = x.ins[0]
    n, t = x.attrs["out_features"], x.tensors
    if x.attrs["in_features"] != c * h * w:
        raise GraphError(f"in_features {x.attrs['in_features']} but the input holds {c * h * w} values")
    dtype, _ = t.get("weight", TERNARY_DTYPES + FLOAT_DTYPES, ((n, c * h * w),))
    t.get("bias", FLOAT_DTYPES, ((n,),))
    if dtype in TERNARY_DTYPES:
        t.get("scale", FLOAT_DTYPES, ((1,), (n,)))
    x.work = n * c * h * w
    return n, 1, 1


def _same(x: Ctx):
    return x.ins[0]


def _region(x: Ctx):
    a = x.attrs
    c, h, w = x.ins[0]
    n = a["num"]
    if a["anchors"] is not None and len(a["anchors"]) != 2 * n:
        raise GraphError(f"{len(a['anchors'])} anchor values for num={n} (want {2 * n})")
    if c != n * (a["classes"] + a["coords"] + 1):
        raise GraphError(f"input has {c} channels; num={n} anchors of {a['classes']} classes need "
                         f"{n * (a['classes'] + a['coords'] + 1)}")
    return _head_shape(x)


def _yolo(x: Ctx):
    a = x.attrs
    c, h, w = x.ins[0]
    n, mask = a["num"], a["mask"]
    if len(a["anchors"]) != 2 * n:
        raise GraphError(f"{len(a['anchors'])} anchor values for num={n} (want {2 * n})")
    if max(mask) >= n or len(set(mask)) != len(mask):
        raise GraphError(f"mask {mask} must name distinct anchors below num={n}")
    if c != len(mask) * (a["classes"] + 5):
        raise GraphError(f"input has {c} channels; {len(mask)} anchors of {a['classes']} classes need "
                         f"{len(mask) * (a['classes'] + 5)}")
    return _head_shape(x)


def _head_shape(x: Ctx):
    if tuple(x.attrs["shape"]) != x.ins[0]:
        raise GraphError(f"shape {x.attrs['shape']} is not its input's {list(x.ins[0])}")
    return x.ins[0]


def _softmax(x: Ctx):
    c, h, w = x.ins[0]
    if (c * h * w) % x.attrs["groups"]:
        raise GraphError(f"{x.attrs['groups']} groups do not divide {c * h * w} values")
    return x.ins[0]


@dataclass(frozen=True)
class OpSpec:
    name: str
    inputs: tuple                    # (fewest, most)
    attrs: dict
    shape: Callable
    tensors: tuple = ()              # the roles it may name
    head: bool = False               # an output head, decoded after the network ran


_ANCHORS = Attr("floats", 0.0, MAX_ANCHOR, length=(2, 2 * MAX_ANCHORS))
_SHAPE = Attr("ints", 1, MAX_ELEMENTS, length=(3, 3))

OPS = {s.name: s for s in (
    OpSpec("conv", (1, 2), {
        "in_channels": _int(1, MAX_CHANNELS), "out_channels": _int(1, MAX_CHANNELS),
        "kernel": Attr("ints", 1, MAX_KERNEL, length=(2, 2)), "stride": _int(1, MAX_STRIDE),
        "pad": Attr("ints", 0, MAX_KERNEL, length=(4, 4)), "activation": _act(),
        "residual": Attr("dict", fields={"stride": _int(1, MAX_STRIDE), "channel_offset": _int(0, MAX_CHANNELS)},
                         optional=True),
        "groups": _int(1, MAX_CHANNELS, optional=True),          # grouped / depthwise: weight (N, C/groups, kh, kw)
        "input": Attr("str", choices=("ternary",), optional=True),
        # int8 input at a fixed scale calibrated at export (tritnet_rt.calibrate), instead of each image's min/max
        "input_quant": Attr("dict", fields={"scale": _float(1e-30, 1e30), "zero_point": _int(0, 255)},
                            optional=True)},
        _conv, ("weight", "bias", "scale", "prelu", "act_a", "act_b")),
    OpSpec("maxpool", (1, 1), {"size": _int(1, MAX_POOL), "stride": _int(1, MAX_POOL),
                               "pad": Attr("ints", 0, MAX_POOL, length=(2, 2)),
                               "out": Attr("ints", 1, MAX_DIM, length=(2, 2))}, _maxpool),
    OpSpec("avgpool", (1, 1), {}, lambda x: (x.ins[0][0], 1, 1)),
    OpSpec("concat", (1, MAX_FAN_IN), {}, _concat),
    OpSpec("slice", (1, 1), {"start": _int(0, MAX_CHANNELS - 1), "channels": _int(1, MAX_CHANNELS)}, _slice),
    OpSpec("scale_channels", (2, 2), {"activation": _act(ELEMENTWISE)}, _scale_channels),   # act(x · s[c])
    # AlexeyAB's shortcut: act(w[0]·x + Σ w[i]·from_i), from_i adding to its first channels; weights [inputs][C]
    OpSpec("shortcut", (2, MAX_FAN_IN), {"activation": _act(ELEMENTWISE)}, _shortcut, ("weights",)),
    OpSpec("add", (2, 2), {"alpha": _float(), "beta": _float(), "activation": _act(ELEMENTWISE)}, _add),
    OpSpec("upsample", (1, 1), {"stride": _int(1, MAX_SCALE), "scale": _float()}, _upsample),
    OpSpec("reorg", (1, 1), {"stride": _int(1, MAX_SCALE)}, _reorg),
    OpSpec("linear", (1, 1), {"in_features": _int(1, MAX_ELEMENTS), "out_features": _int(1, MAX_CHANNELS),
                              "activation": _act(ELEMENTWISE)}, _linear, ("weight", "bias", "scale")),
    OpSpec("act", (1, 1), {"activation": _act(ELEMENTWISE)}, _same),
    OpSpec("identity", (1, 1), {}, _same),
    OpSpec("region", (1, 1), {
        "num": _int(1, MAX_ANCHORS), "classes": _int(0, MAX_CLASSES), "coords": _int(4, 4),
        "softmax": Attr("bool"), "background": Attr("bool"),
        "anchors": Attr("floats", 0.0, MAX_ANCHOR, length=(2, 2 * MAX_ANCHORS), nullable=True),
        "shape": _SHAPE}, _region, head=True),
    OpSpec("yolo", (1, 1), {
        "num": _int(1, MAX_ANCHORS), "classes": _int(0, MAX_CLASSES),
        "mask": Attr("ints", 0, MAX_ANCHORS - 1, length=(1, MAX_ANCHORS)), "anchors": _ANCHORS,
        "shape": _SHAPE,
        # AlexeyAB: x, y = scale·σ − (scale − 1)/2; new_coords: the conv's logistic outputs, w = (2·t)²·anchor;
        # the last head's NMS kind is the detector's
        "scale_x_y": _float(0.0, 1e3, optional=True), "new_coords": Attr("bool", optional=True),
        "nms_kind": Attr("str", choices=NMS_KINDS, optional=True), "beta_nms": _float(0.0, 1e3, optional=True)},
        _yolo, head=True),
    OpSpec("softmax", (1, 1), {"groups": _int(1, MAX_ELEMENTS), "temperature": _float(1e-6, 1e6)},
           _softmax, head=True),
)}
# ops that compute nothing in the network: identity, and the heads (decoded after it by tritnet_rt.heads);
# every other op has a planner rule (plan.BUILDERS) and a PyTorch rule (tritnet.export.torch_graph.TORCH_OPS)
PASS_THROUGH = ("identity",) + tuple(name for name, spec in OPS.items() if spec.head)


# --------------------------------------------------------------------------------------------- the header
MODEL_FIELDS = {
    "name": Attr("str", optional=True), "family": Attr("str", optional=True),
    "task": Attr("str", choices=TASKS, optional=True),
    "input": Attr("dict", fields={
        "shape": Attr("ints", 1, MAX_DIM, length=(3, 3)),
        "mean": Attr("floats", length=(1, MAX_CHANNELS), optional=True, nullable=True),
        "std": Attr("floats", 1e-12, math.inf, length=(1, MAX_CHANNELS), optional=True, nullable=True),
        "preprocess": Attr("str", choices=PREPROCESS, optional=True)}),
    "classes": Attr("strs", length=(0, MAX_CLASSES), optional=True, nullable=True),
    "dialect": Attr("str", choices=DIALECTS, optional=True),
}
ARCH_FIELDS = {"kind": Attr("str", choices=("graph", "darknet")),
               "cfg": Attr("str", optional=True, max_chars=1 << 20)}      # efficientnet_b0's cfg: 23 KB
NODE_FIELDS = ("name", "op", "inputs", "attrs", "tensors")


def check_model(model) -> None:
    """The header's ``model`` facts: task, input shape and preprocessing, class names."""
    check_fields("model", MODEL_FIELDS, model)
    inp = model["input"]
    c = inp["shape"][0]
    if c > MAX_CHANNELS:
        raise GraphError(f"model.input.shape has {c} channels (at most {MAX_CHANNELS})")
    for key in ("mean", "std"):
        if inp.get(key) is not None and len(inp[key]) != c:
            raise GraphError(f"model.input.{key} has {len(inp[key])} values for {c} channels")


def check_graph(model: dict, graph, table: dict) -> dict:
    """Validate the graph against the op table; ``table`` maps tensor names to (dtype, shape). Returns every
    node's (C, H, W), "input" included. Raises GraphError naming the node and field."""
    check_model(model)
    if not isinstance(graph, dict) or set(graph) != {"inputs", "outputs", "nodes"}:
        raise GraphError("graph must hold exactly inputs, outputs and nodes")
    if graph["inputs"] != ["input"]:
        raise GraphError(f"graph.inputs must be [\"input\"], not {str(graph['inputs'])[:60]}")
    nodes = graph["nodes"]
    if not isinstance(nodes, list) or not 1 <= len(nodes) <= MAX_NODES:
        raise GraphError(f"graph.nodes must be a list of 1..{MAX_NODES} nodes")
    shapes = {"input": tuple(model["input"]["shape"])}
    budget, work = 4 * math.prod(shapes["input"]), 0
    for i, node in enumerate(nodes):
        where = f"node {i}"
        if isinstance(node, dict) and isinstance(node.get("name"), str):
            where = f"node {i} ({node['name'][:MAX_NAME]!r})"
        try:
            shape, ctx = _node_shape(node, shapes, table)
        except GraphError as e:
            raise GraphError(f"{where}: {e}") from None
        budget += 4 * math.prod(shape) + ctx.scratch
        work += math.prod(shape) + ctx.work
        if budget > MAX_IMAGE_BYTES:
            raise GraphError(f"{where}: the network needs over {MAX_IMAGE_BYTES >> 30} GiB of feature maps "
                             "for one image")
        if work > MAX_IMAGE_OPS:
            raise GraphError(f"{where}: the network needs over {MAX_IMAGE_OPS:.0e} operations for one image")
        shapes[node["name"]] = shape
        if node["op"] == "yolo" and node["attrs"].get("new_coords") and model.get("dialect") != "alexeyab":
            # only AlexeyAB's decoder reads new_coords: checked here, not found by the first detect() call
            raise GraphError(f"{where}: new_coords is AlexeyAB's yolo decoding; model.dialect must be alexeyab, "
                             f"not {model.get('dialect', 'pjreddie')}")
    outs = graph["outputs"]
    if not isinstance(outs, list) or not outs or len(set(map(str, outs))) != len(outs):
        raise GraphError("graph.outputs must be a non-empty list of distinct node names")
    for o in outs:
        if not isinstance(o, str) or o == "input" or o not in shapes:
            raise GraphError(f"graph output {str(o)[:80]!r} is not a node")
    for node in nodes:
        if OPS[node["op"]].head and node["name"] not in outs:
            raise GraphError(f"head {node['name']!r} is not a graph output")
    return shapes


def _node_shape(node, shapes: dict, table: dict):
    if not isinstance(node, dict) or set(node) != set(NODE_FIELDS):
        raise GraphError(f"must hold exactly {', '.join(NODE_FIELDS)}")
    name, op, ins = node["name"], node["op"], node["inputs"]
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
        raise GraphError(f"name must be a string of 1..{MAX_NAME} characters")
    if name in shapes:
        raise GraphError("a second node of this name" if name != "input" else "'input' names the graph input")
    spec = OPS.get(op) if isinstance(op, str) else None
    if spec is None:
        raise GraphError(f"unknown op {str(op)[:40]!r} (known: {', '.join(OPS)})")
    if not isinstance(ins, list) or not spec.inputs[0] <= len(ins) <= spec.inputs[1]:
        raise GraphError(f"op {op} takes {spec.inputs[0]}..{spec.inputs[1]} inputs, got "
                         f"{len(ins) if isinstance(ins, list) else repr(ins)[:40]}")
    for i in ins:
        if not isinstance(i, str) or i not in shapes:
            raise GraphError(f"reads {str(i)[:80]!r}, which no earlier node makes")
    tensors = node["tensors"]
    if not isinstance(tensors, dict) or not all(isinstance(v, str) for v in tensors.values()):
        raise GraphError("tensors must map roles to tensor names")
    for role in tensors:
        if role not in spec.tensors:
            raise GraphError(f"op {op} has no tensor role {role!r:.40}")
    check_fields("attrs", spec.attrs, node["attrs"])
    ctx = Ctx(node["attrs"], [shapes[i] for i in ins], Tensors(tensors, table))
    shape = tuple(spec.shape(ctx))
    if ctx.tensors.unused():
        raise GraphError(f"tensor roles {', '.join(ctx.tensors.unused())} are not used by this {op}")
    if min(shape) < 1 or math.prod(shape) > MAX_ELEMENTS or max(shape[1:]) > MAX_DIM:
        raise GraphError(f"output shape {shape} is empty or beyond the limits ({MAX_ELEMENTS} values, "
                         f"{MAX_DIM} pixels a side)")
    return shape, ctx


def check_values(name: str, array: np.ndarray) -> None:
    """Float tensors hold finite numbers: a NaN scale would run and give NaN detections without a word."""
    if array.dtype.kind == "f" and array.size and not np.isfinite(array).all():
        raise GraphError(f"tensor {name!r:.80} holds NaN or infinite values")
