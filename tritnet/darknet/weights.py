"""Darknet ``.weights`` files: read, write, and ``darknet partial`` (numpy only, no torch).

Layout (pjreddie/darknet ``src/parser.c``, all little-endian):

* header: int32 major, minor, revision; then ``seen`` as uint64 when ``major*10+minor >= 2`` and
  ``major < 1000`` and ``minor < 1000``, else int32 (the v0.1 header is 16 bytes);
  ``transpose = major > 1000 or minor > 1000`` (connected weights stored as [in][out]).
  AlexeyAB's darknet reads ``seen`` as uint64 whenever ``major*10+minor >= 2`` (transposed files included), else
  as uint32, and writes version 0.2.5 (pjreddie's writer 0.2.0);
* body, layers in cfg order, float32:
  convolutional: ``biases[n]``, if batch_normalize ``scales[n] rolling_mean[n] rolling_variance[n]``,
  ``weights[n][c/groups][k][k]``; connected: ``biases[out]``, ``weights[out][in]``, then the BN triplet;
  batchnorm: ``scales[c] rolling_mean[c] rolling_variance[c]`` (AlexeyAB: ``biases[c]`` first);
  AlexeyAB's weighted shortcut: ``weights[nweights]``; other layers nothing.

Per-layer keys honoured as darknet does: ``dontload`` (skipped when loading), ``dontsave`` (skipped when
saving; pjreddie only), ``numload`` (loads only the first N conv filters; pjreddie only), ``dontloadscales``
(no BN triplet when loading).

Darknet reads whatever a file holds; the reader here refuses what would run silently wrong: a ``seen`` no
training reaches, a file that stops between layers (unless a prefix is asked for), NaN/Inf values and negative
BN variances (unless ``allow_nonfinite``).

Arrays are float32 in darknet's memory layout: conv ``weights`` has shape (n, c/groups, k, k), exactly a
PyTorch Conv2d weight; connected ``weights`` has shape (out, in), a PyTorch Linear weight.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

import numpy as np
from tritnet_rt.files import MiB, read_bytes

from .cfg import parse_cfg
from .shapes import LayerInfo, infer_layers

__all__ = ["WeightsError", "WeightsHeader", "DarknetWeights", "layer_layout", "load_weights",
           "encode_weights", "save_weights", "partial"]

_BN = ("scales", "rolling_mean", "rolling_variance")

# The most images a header's ``seen`` may count. Real trainings stay far below: yolov3 on COCO saw 500,200 x 64
# images, an ImageNet classifier 1.6M x 128, both under 2^28. A damaged or foreign header does not: the high half
# of the uint64 is then arbitrary bytes (a float32 such as 0.01 there makes seen > 2^61), and the negative int32
# of a v0.1 header becomes 2^64 - n when darknet widens it. Past this, training would start beyond max_batches.
MAX_SEEN = 2**40


class WeightsError(ValueError):
    """A .weights file that does not match its cfg (wrong size, truncated inside a layer, bad header)."""


@dataclass(frozen=True)
class WeightsHeader:
    major: int = 0
    minor: int = 2
    revision: int = 0
    seen: int = 0
    dialect: str = field(default="pjreddie", compare=False)   # whose reader decides the size of seen

    @classmethod
    def new(cls, dialect: str = "pjreddie", seen: int = 0) -> "WeightsHeader":
        """The header the dialect's darknet writes: 0.2.0 (pjreddie, darknetTWN) or 0.2.5 (AlexeyAB)."""
        return cls(0, 2, 5 if dialect == "alexeyab" else 0, seen, dialect)

    @property
    def seen_size(self) -> int:
        """Bytes of ``seen``: 8 (size_t) for version >= 0.2, else 4; pjreddie also reads 4 when major or minor is
        1000 or more (a transposed file)."""
        m, n = self.major, self.minor
        if self.dialect == "alexeyab":
            return 8 if (m * 10 + n) >= 2 else 4
        return 8 if (m * 10 + n) >= 2 and m < 1000 and n < 1000 else 4

    @property
    def nbytes(self) -> int:
        return 12 + self.seen_size

    @property
    def transpose(self) -> bool:
        """Connected-layer weights are stored transposed ([in][out]) in this file version."""
        return self.major > 1000 or self.minor > 1000

    def to_bytes(self) -> bytes:
        small = "<iiiI" if self.dialect == "alexeyab" else "<iiii"
        return struct.pack("<iiiQ" if self.seen_size == 8 else small, self.major, self.minor, self.revision,
                           self.seen)

    @classmethod
    def from_bytes(cls, data: bytes, path="<weights>", dialect: str = "pjreddie") -> "WeightsHeader":
        if len(data) < 12:
            raise WeightsError(f"{path}: {len(data)} bytes is too short for a darknet header")
        major, minor, revision = struct.unpack_from("<iii", data)
        h = cls(major, minor, revision, 0, dialect)
        if len(data) < h.nbytes:
            raise WeightsError(f"{path}: {len(data)} bytes is too short for a v{major}.{minor} header "
                               f"({h.nbytes} bytes)")
        small = "<I" if dialect == "alexeyab" else "<i"      # AlexeyAB: uint32_t; pjreddie: int
        seen = struct.unpack_from("<Q" if h.seen_size == 8 else small, data, 12)[0]
        if not 0 <= seen <= MAX_SEEN:
            raise WeightsError(f"{path}: header field seen = {seen} is not a count of training images (tritnet "
                               f"accepts 0 to 2^40): the header is damaged or this is not a darknet .weights file")
        return cls(major, minor, revision, seen, dialect)


@dataclass
class DarknetWeights:
    """What a .weights file holds for a cfg: header + ``layers[index] = {name: float32 array}``."""
    header: WeightsHeader
    layers: dict = field(default_factory=dict)
    filled: int = 0                  # layers whose values were read
    end_layer: Optional[int] = None  # first layer with parameters that the file did not reach (None: complete)
    path: Optional[str] = None

    @property
    def complete(self) -> bool:
        return self.end_layer is None


def layer_layout(info: LayerInfo, *, loading: bool = False) -> list:
    """``[(name, shape), ...]`` in file order for one layer; ``[]`` for layers without parameters.

    ``loading=True`` applies ``numload``/``dontloadscales`` (darknet's reader); the writer ignores them.
    """
    sec = info.section
    bn_in_file = bool(info.attrs.get("batch_normalize")) and not (loading and sec.param("dontloadscales"))
    if info.type == "convolutional":
        a = info.attrs
        n = a["filters"]
        if loading and sec.read("numload"):
            n = sec.param("numload")
        out = [("biases", (n,))]
        out += [(k, (n,)) for k in _BN] if bn_in_file else []
        return out + [("weights", (n, info.in_shape[0] // a["groups"], a["size"], a["size"]))]
    if info.type == "connected":
        n = info.attrs["output"]
        out = [("biases", (n,)), ("weights", (n, info.inputs))]
        return out + ([(k, (n,)) for k in _BN] if bn_in_file else [])
    if info.type == "batchnorm":
        c = info.in_shape[0]
        return ([("biases", (c,))] if sec.dialect == "alexeyab" else []) + [(k, (c,)) for k in _BN]
    if info.type == "shortcut" and info.attrs.get("nweights"):
        return [("weights", (info.attrs["nweights"],))]
    return []


def _nbytes(layout) -> int:
    return 4 * sum(int(np.prod(s)) for _, s in layout)


def _layer_desc(info: LayerInfo) -> str:
    return f"layer {info.index} ([{info.section.header}], {info.section.where()})"


def _check_values(path, info: LayerInfo, name: str, a: np.ndarray) -> None:
    """Refuse NaN and ±Inf anywhere, and a negative ``rolling_variance`` (darknet divides by its square root):
    each makes every output NaN, so a detector finds nothing and says nothing."""
    bad, what = ~np.isfinite(a), "NaN or infinite"
    if not bad.any() and name == "rolling_variance":
        bad, what = a < 0, "negative"
    if not bad.any():
        return
    first = np.unravel_index(int(np.argmax(bad)), a.shape)
    n = int(bad.sum())
    raise WeightsError(f"{path}: {_layer_desc(info)}: {name} holds {n} {what} value{'s' if n > 1 else ''} "
                       f"({name}[{', '.join(str(int(k)) for k in first)}] = {a[first]}), which darknet turns into "
                       f"NaN outputs; the file is damaged (allow_nonfinite=True loads it for inspection)")


def load_weights(sections, path, upto: Optional[int] = None, *, prefix: bool = False,
                 allow_nonfinite: bool = False) -> DarknetWeights:
    """Read ``path`` for the network ``sections``, layers ``< upto`` (all by default).

    A file that stops exactly between layers is refused unless ``prefix``: a backbone made by ``darknet
    partial`` is a start for training, never a network to run. With ``prefix``, ``filled`` says how many
    layers got values and ``end_layer`` where it stopped. A file holding only a header, one that ends inside
    a layer, or (when reading the whole network) one with bytes left over is a :class:`WeightsError` giving
    the expected and actual sizes. Values that make darknet's outputs NaN (see :func:`_check_values`) are
    refused unless ``allow_nonfinite``, for looking at a broken file.
    """
    path = str(path)
    infos = infer_layers(sections)
    cutoff = len(infos) if upto is None else min(upto, len(infos))
    todo = [(i, layer_layout(i, loading=True)) for i in infos[:cutoff] if not i.section.param("dontload")]
    todo = [(i, lay) for i, lay in todo if lay]
    values_bytes = sum(_nbytes(lay) for _, lay in todo)
    # the largest header and every layer, and room for the "bytes left over" message to say how many: a file
    # far larger than its network is refused before it is read
    try:
        data = read_bytes(path, "weights file", 20 + values_bytes + 64 * MiB)
    except ValueError as e:
        raise WeightsError(str(e)) from None
    header = WeightsHeader.from_bytes(data, path, infos[0].section.dialect if infos else "pjreddie")
    expected = header.nbytes + values_bytes
    out = DarknetWeights(header, path=path)
    off = header.nbytes
    for info, layout in todo:
        need = _nbytes(layout)
        left = len(data) - off
        if left == 0:
            out.end_layer = info.index
            break
        if left < need:
            raise WeightsError(
                f"{path}: the file ends inside {_layer_desc(info)}: this layer needs {need} bytes at offset "
                f"{off}, only {left} remain; layers 0..{info.index} need {off + need} bytes "
                f"(the whole network {expected} bytes), the file has {len(data)} bytes")
        arrays = {}
        for name, shape in layout:
            count = int(np.prod(shape))
            a = np.frombuffer(data, "<f4", count, off).astype(np.float32)
            off += 4 * count
            if name == "weights" and info.type == "connected" and header.transpose:
                a = a.reshape(shape[1], shape[0]).T.copy()
            if name == "weights" and info.type == "convolutional" and info.section.param("flipped"):
                # darknet's load_convolutional_weights: transpose_matrix(weights, c·size·size, n)
                a = a.reshape(-1, shape[0]).T.copy()
            arrays[name] = a.reshape(shape)
        out.layers[info.index] = arrays
        out.filled += 1
    if out.end_layer is not None and not out.filled:
        raise WeightsError(f"{path}: the file holds only a {header.nbytes}-byte header, no layer values; the network "
                           f"needs {expected} bytes")
    if out.end_layer is not None and not prefix:
        raise WeightsError(f"{path}: the file ends before {_layer_desc(info)}: it holds {out.filled} of the "
                           f"{len(todo)} layers with parameters ({len(data)} of {expected} bytes); it is truncated, "
                           f"or a backbone made by partial, which only training starts from")
    if out.end_layer is None and cutoff == len(infos) and off != len(data):
        raise WeightsError(f"{path}: {len(data) - off} bytes left over after the last layer: the network needs "
                           f"{expected} bytes, the file has {len(data)} bytes")
    if not allow_nonfinite:     # after the sizes: a file for another cfg is a size mismatch, not bad values
        for index, arrays in out.layers.items():
            for name, a in arrays.items():
                _check_values(path, infos[index], name, a)
    return out


def encode_weights(sections, weights, *, upto: Optional[int] = None, header: Optional[WeightsHeader] = None,
                   seen: Optional[int] = None, keep_header: bool = False) -> bytes:
    """The bytes :func:`save_weights` writes.

    ``weights``: a :class:`DarknetWeights` or ``{layer_index: {name: array}}``. Layers are written in order
    up to ``upto`` (default: all) and stop at the first layer without values (a prefix file); a gap
    followed by more values is an error. The header is the dialect's darknet writer (0, 2, 0 or AlexeyAB's
    0, 2, 5; uint64 ``seen``) unless ``header`` is given or ``keep_header`` reuses the one ``weights`` was read
    with (read -> write then gives identical bytes). ``seen`` overrides the count (default: the one read, else 0).
    """
    layers: Mapping = weights.layers if isinstance(weights, DarknetWeights) else weights
    read_header = weights.header if isinstance(weights, DarknetWeights) else None
    infos = infer_layers(sections)
    dialect = infos[0].section.dialect if infos else "pjreddie"
    if header is None:
        header = read_header if keep_header and read_header is not None else WeightsHeader.new(
            dialect, read_header.seen if read_header is not None else 0)
    header = WeightsHeader(header.major, header.minor, header.revision, header.seen if seen is None else seen, dialect)
    cutoff = len(infos) if upto is None else min(upto, len(infos))
    parts = [header.to_bytes()]
    missing = None
    for info in infos[:cutoff]:
        layout = layer_layout(info)
        if not layout or info.section.read("dontsave"):
            continue
        arrays = layers.get(info.index)
        if arrays is None:
            missing = missing if missing is not None else info
            continue
        if missing is not None:
            raise WeightsError(f"{_layer_desc(missing)} has no values but {_layer_desc(info)} has: a darknet "
                               f"file cannot skip a layer")
        for name, shape in layout:
            if name not in arrays:
                raise WeightsError(f"{_layer_desc(info)}: missing array {name!r}")
            a = np.asarray(arrays[name])
            if a.size != int(np.prod(shape)):
                raise WeightsError(f"{_layer_desc(info)}: {name} has shape {a.shape}, the cfg needs {shape}")
            a = a.astype("<f4").reshape(shape)
            if name == "weights" and info.type == "connected" and header.transpose:
                a = a.T
            parts.append(np.ascontiguousarray(a).tobytes())
    return b"".join(parts)


def save_weights(sections, weights, path, **kwargs) -> int:
    """Write a .weights file (see :func:`encode_weights` for the options); returns the number of bytes."""
    data = encode_weights(sections, weights, **kwargs)
    Path(path).write_bytes(data)
    return len(data)


def partial(cfg, weights, out, n: int, *, zero_ternary: bool = False) -> int:
    """``darknet partial CFG WEIGHTS OUT N``, byte for byte: layers ``< n``, header 0.2.0 with ``seen = 0``.

    Darknet loads the whole file into the network (``load_network(cfg, weights, clear=1)``, which zeroes
    ``seen``) and saves the first ``n`` layers. Where darknet would write its random initialisation (a
    layer the file does not reach, ``numload``, ``dontloadscales``, ``dontload``), this refuses instead.
    ``zero_ternary`` reproduces the darknetTWN fork, whose ``partial`` writes zeros as the weights of
    every ``ternary=1`` conv (its ternary buffer before any forward pass). Returns the bytes written.
    """
    sections = cfg if isinstance(cfg, list) else parse_cfg(cfg)
    w = load_weights(sections, weights, prefix=True)   # a prefix covering the first n layers is enough (below)
    layers = {}
    for info in infer_layers(sections)[:n]:
        sec = info.section
        if not layer_layout(info) or sec.read("dontsave"):
            continue
        for key in ("dontload", "numload", "dontloadscales"):
            if sec.read(key):
                raise WeightsError(f"{_layer_desc(info)}: {key} is set, darknet would save random values")
        if info.index not in w.layers:
            raise WeightsError(f"{weights}: the file ends before {_layer_desc(info)}; darknet would save "
                               f"random values for it")
        arrays = dict(w.layers[info.index])
        if zero_ternary and info.ternary:
            arrays["weights"] = np.zeros_like(arrays["weights"])
        layers[info.index] = arrays
    return save_weights(sections, layers, out, upto=n, seen=0)
