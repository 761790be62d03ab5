"""The packed ternary file (``.tnp``): one place that defines it, numpy and the standard library only.

Layout (little-endian; the full spec with examples is docs/packed-format.md)::

    0   8  magic  b"TRITNET\\x1a"
    8   2  major version (u16)          10  2  minor version (u16)
    12  4  CRC-32 of the header JSON     16  8  header length (u64)
    24  8  data length (u64)             32  4  CRC-32 of the data
    36 28  reserved, zero
    64     header JSON (UTF-8), zero-padded to a multiple of 64
    ...    data: the tensors, each at a 64-byte aligned offset from the start of the data

The header JSON holds the model facts (``model``), the architecture (``arch``: the darknet cfg text, or
``{"kind": "graph"}``), the graph (``graph``: nodes with op, inputs, attrs and tensor names) and the
tensor table (``tensors``: name → dtype, shape, offset, nbytes).

Ternary codes {-1, 0, +1} are stored as ``tern2`` (code+1 in 2 bits, four per byte, weight i in bits
2·(i mod 4)) or ``tern1.6`` (five codes per byte, Σ (code_j+1)·3^j, 1.6 bits per weight).
"""
from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAGIC = b"TRITNET\x1a"
VERSION = (1, 0)
_FIXED = struct.Struct("<8sHHIQQI28s")      # 64 bytes
ALIGN = 64
FLOAT_DTYPES = {"f32": np.float32, "f16": np.float16, "i32": np.int32, "i8": np.int8}
TERNARY_DTYPES = ("tern2", "tern1.6")

_POW3 = np.array([1, 3, 9, 27, 81], dtype=np.uint16)


class FormatError(ValueError):
    """A packed file that cannot be read as written: truncated, corrupted, newer, or not one at all."""


# ------------------------------------------------------------------------------------------ trit packing

def _as_codes(codes) -> np.ndarray:
    c = np.asarray(codes).reshape(-1)
    if c.size and (c.min() < -1 or c.max() > 1):
        raise ValueError("ternary codes must be in {-1, 0, 1}")
    return (c.astype(np.int16) + 1).astype(np.uint8)


def pack_2bit(codes) -> bytes:
    """Codes {-1,0,1} → bytes, four per byte (code+1 in bits 2·(i mod 4)); padding is code 0."""
    u = _as_codes(codes)
    u = np.concatenate([u, np.ones((-u.size) % 4, np.uint8)]).reshape(-1, 4)
    return (u[:, 0] | (u[:, 1] << 2) | (u[:, 2] << 4) | (u[:, 3] << 6)).astype(np.uint8).tobytes()


def unpack_2bit(data: bytes, count: int) -> np.ndarray:
    b = np.frombuffer(data, dtype=np.uint8)
    if b.size != -(-count // 4):
        raise ValueError(f"{b.size} bytes of 2-bit data for {count} weights (want {-(-count // 4)})")
    u = np.stack([(b >> s) & 3 for s in (0, 2, 4, 6)], axis=1).reshape(-1)[:count]
    if (u == 3).any():
        raise ValueError("2-bit data holds the invalid code 3")
    return u.astype(np.int8) - 1


def pack_trits(codes) -> bytes:
    """Codes {-1,0,1} → bytes, five per byte as Σ (code_j+1)·3^j (3^5 = 243 ≤ 256): 1.6 bits a weight."""
    u = _as_codes(codes)
    u = np.concatenate([u, np.ones((-u.size) % 5, np.uint8)]).reshape(-1, 5).astype(np.uint16)
    return (u @ _POW3).astype(np.uint8).tobytes()


def unpack_trits(data: bytes, count: int) -> np.ndarray:
    b = np.frombuffer(data, dtype=np.uint8).astype(np.int16)
    if b.size != -(-count // 5):
        raise ValueError(f"{b.size} bytes of trit data for {count} weights (want {-(-count // 5)})")
    if (b > 242).any():
        raise ValueError("trit data holds a byte above 242 (3^5 - 1)")
    digits = np.stack([(b // int(p)) % 3 for p in _POW3], axis=1).reshape(-1)[:count]
    return digits.astype(np.int8) - 1


def packed_bytes(count: int, bits: float = 2.0) -> int:
    """Bytes that ``count`` ternary weights take at 2 bits (4 per byte) or 1.6 bits (5 per byte)."""
    if bits == 2:
        return -(-count // 4)
    if abs(bits - 1.6) < 1e-9:
        return -(-count // 5)
    raise ValueError(f"packing is 2 or 1.6 bits per weight, not {bits}")


# ------------------------------------------------------------------------------------------ the file

@dataclass
class PackedModel:
    """A packed file in memory: the header facts, the graph, and the tensors (decoded to numpy)."""
    model: dict
    arch: dict
    graph: dict
    tensors: dict = field(default_factory=dict)        # name -> np.ndarray (ternary codes as int8)
    dtypes: dict = field(default_factory=dict)         # name -> storage dtype ("tern2", "f16", ...)
    version: tuple = VERSION

    def add(self, name: str, array, dtype: str) -> str:
        if name in self.tensors:
            raise ValueError(f"tensor {name!r} added twice")
        if dtype not in TERNARY_DTYPES and dtype not in FLOAT_DTYPES:
            raise ValueError(f"unknown tensor dtype {dtype!r}")
        self.tensors[name] = np.asarray(array)
        self.dtypes[name] = dtype
        return name


def _encode(array: np.ndarray, dtype: str) -> bytes:
    if dtype == "tern2":
        return pack_2bit(array)
    if dtype == "tern1.6":
        return pack_trits(array)
    return np.ascontiguousarray(array, dtype=FLOAT_DTYPES[dtype]).astype("<" + np.dtype(FLOAT_DTYPES[dtype]).str[1:]).tobytes()


def _decode(raw: bytes, dtype: str, shape, name: str, path) -> np.ndarray:
    count = int(np.prod(shape)) if len(shape) else 1
    try:
        if dtype == "tern2":
            return unpack_2bit(raw, count).reshape(shape)
        if dtype == "tern1.6":
            return unpack_trits(raw, count).reshape(shape)
        dt = np.dtype(FLOAT_DTYPES[dtype]).newbyteorder("<")
        if len(raw) != count * dt.itemsize:
            raise ValueError(f"{len(raw)} bytes for {count} values of {dtype}")
        return np.frombuffer(raw, dtype=dt).astype(FLOAT_DTYPES[dtype]).reshape(shape)
    except (ValueError, KeyError) as e:
        raise FormatError(f"{path}: tensor {name!r}: {e}") from None


def _pad(n: int) -> int:
    return (-n) % ALIGN


def encode_packed(pm: PackedModel) -> bytes:
    table, blobs, offset = {}, [], 0
    for name, arr in pm.tensors.items():
        raw = _encode(arr, pm.dtypes[name])
        table[name] = {"dtype": pm.dtypes[name], "shape": list(np.shape(arr)), "offset": offset, "nbytes": len(raw)}
        blobs.append(raw + b"\0" * _pad(len(raw)))
        offset += len(raw) + _pad(len(raw))
    header = {"format": "tritnet-packed", "version": f"{VERSION[0]}.{VERSION[1]}", "model": pm.model,
              "arch": pm.arch, "graph": pm.graph, "tensors": table}
    hj = json.dumps(header, separators=(",", ":")).encode()
    data = b"".join(blobs)
    fixed = _FIXED.pack(MAGIC, VERSION[0], VERSION[1], zlib.crc32(hj), len(hj), len(data), zlib.crc32(data),
                        b"\0" * 28)
    return fixed + hj + b"\0" * _pad(len(hj)) + data


def save_packed(pm: PackedModel, path) -> int:
    """Write ``pm`` to ``path`` (atomically: a temporary file renamed into place); returns the size."""
    data = encode_packed(pm)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return len(data)


def read_header(data: bytes, path="<packed>") -> tuple[dict, memoryview]:
    """Check magic, version, length and both checksums; return (header dict, data view)."""
    if len(data) < _FIXED.size:
        if data[:len(MAGIC)] != MAGIC[:len(data)]:
            raise FormatError(f"{path}: not a tritnet packed file (bad magic)")
        raise FormatError(f"{path}: truncated: {len(data)} bytes, shorter than the 64-byte header")
    magic, major, minor, hcrc, hlen, dlen, dcrc, _ = _FIXED.unpack_from(data)
    if magic != MAGIC:
        raise FormatError(f"{path}: not a tritnet packed file (bad magic {magic!r})")
    if (major, minor) > VERSION:
        raise FormatError(f"{path}: packed format version {major}.{minor} is newer than this runtime reads "
                          f"({VERSION[0]}.{VERSION[1]}); upgrade tritnet")
    start = _FIXED.size + hlen + _pad(hlen)
    if len(data) < start + dlen:
        raise FormatError(f"{path}: truncated: {len(data)} bytes, the header says {start + dlen}")
    if len(data) > start + dlen:
        raise FormatError(f"{path}: {len(data) - start - dlen} unexpected bytes after the data")
    hj = bytes(data[_FIXED.size:_FIXED.size + hlen])
    if zlib.crc32(hj) != hcrc:
        raise FormatError(f"{path}: corrupted: header checksum mismatch")
    view = memoryview(data)[start:start + dlen]
    if zlib.crc32(view) != dcrc:
        raise FormatError(f"{path}: corrupted: data checksum mismatch")
    try:
        header = json.loads(hj)
    except ValueError as e:
        raise FormatError(f"{path}: corrupted header JSON ({e})") from None
    for key in ("model", "arch", "graph", "tensors"):
        if key not in header:
            raise FormatError(f"{path}: header has no {key!r}")
    return header, view


def decode_packed(data: bytes, path="<packed>") -> PackedModel:
    header, view = read_header(data, path)
    try:
        version = tuple(int(v) for v in str(header["version"]).split("."))
        tensors = {name: (int(t["offset"]), int(t["nbytes"]), str(t["dtype"]), tuple(int(d) for d in t["shape"]))
                   for name, t in header["tensors"].items()}
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise FormatError(f"{path}: malformed header ({type(e).__name__}: {e})") from None
    pm = PackedModel(header["model"], header["arch"], header["graph"], version=version)
    for name, (off, n, dtype, shape) in tensors.items():
        if off < 0 or n < 0 or off + n > len(view):
            raise FormatError(f"{path}: tensor {name!r} lies outside the data")
        if dtype not in TERNARY_DTYPES and dtype not in FLOAT_DTYPES:
            raise FormatError(f"{path}: tensor {name!r} has the unknown dtype {dtype!r}")
        pm.tensors[name] = _decode(bytes(view[off:off + n]), dtype, shape, name, path)
        pm.dtypes[name] = dtype
    _check_graph(pm, path)
    return pm


ACTIVATIONS = ("linear", "relu", "leaky", "prelu", "logistic")
_INPUTS = {"conv": (1, 2), "add": (2, 2), "concat": (1, 1 << 30)}       # (fewest, most) inputs
_ONE_INPUT = ("maxpool", "avgpool", "upsample", "reorg", "linear", "act", "identity", "region", "yolo", "softmax")


def graph_shapes(pm: PackedModel, path="<packed>") -> dict:
    """(C, H, W) of every node, checking each node against its inputs and tensors on the way: a file whose
    checksums are right but whose graph does not fit together (a weight of the wrong shape, a bias too short,
    an unknown op or activation) is refused here, before any kernel could read past a buffer."""
    shapes = {"input": tuple(int(v) for v in pm.model.get("input", {}).get("shape", ()))}
    if len(shapes["input"]) != 3 or min(shapes["input"]) < 1:
        raise FormatError(f"{path}: model input shape {shapes['input']} is not (C, H, W)")
    for node in pm.graph.get("nodes", []):
        name = node.get("name")
        try:
            shapes[name] = _node_shape(pm, node, shapes)
        except FormatError as e:
            raise FormatError(f"{path}: node {name!r}: {e}") from None
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise FormatError(f"{path}: node {name!r}: malformed ({type(e).__name__}: {e})") from None
    return shapes


def _node_shape(pm, node, shapes):
    op, a, ins, t = node["op"], node.get("attrs", {}), node["inputs"], node.get("tensors", {})
    if op not in _INPUTS and op not in _ONE_INPUT:
        raise FormatError(f"unknown op {op!r}")
    need = _INPUTS.get(op, (1, 1))
    if not need[0] <= len(ins) <= need[1]:
        raise FormatError(f"op {op} takes {need[0]}..{min(need[1], 99)} inputs, got {len(ins)}")
    if "activation" in a and a["activation"] not in ACTIVATIONS:
        raise FormatError(f"unknown activation {a['activation']!r} (supported: {', '.join(ACTIVATIONS)})")
    c, h, w = shapes[ins[0]]

    def size(role, *allowed):
        got = pm.tensors[t[role]].size
        if got not in allowed:
            raise FormatError(f"tensor {role} ({t[role]!r}) holds {got} values, want {' or '.join(map(str, allowed))}")

    if op == "conv":
        (kh, kw), st, (pt, pl, pb, pr) = a["kernel"], int(a["stride"]), a["pad"]
        n = int(a["out_channels"])
        if int(a["in_channels"]) != c:
            raise FormatError(f"in_channels {a['in_channels']} but the input has {c} channels")
        wshape = pm.tensors[t["weight"]].shape
        if tuple(wshape) != (n, c, kh, kw):
            raise FormatError(f"weight shape {tuple(wshape)}, want {(n, c, kh, kw)}")
        if min(st, kh, kw) < 1 or min(pt, pl, pb, pr) < 0:
            raise FormatError("stride and kernel must be >= 1 and padding >= 0")
        ho, wo = (h + pt + pb - kh) // st + 1, (w + pl + pr - kw) // st + 1
        if min(ho, wo) < 1:
            raise FormatError(f"a {kh}x{kw} kernel does not fit the {h}x{w} input")
        size("bias", n)
        if pm.dtypes[t["weight"]] in TERNARY_DTYPES:
            size("scale", 1, n)
        if a.get("activation") == "prelu" or "prelu" in t:
            size("prelu", n)
        if a.get("input") == "ternary":
            size("act_a", c)
            size("act_b", c)
        if "residual" in a:
            if len(ins) != 2:
                raise FormatError("a residual needs a second input")
            rc, rh, rw = shapes[ins[1]]
            rs, off = int(a["residual"]["stride"]), int(a["residual"]["channel_offset"])
            if off < 0 or off + rc > n or rs < 1 or (ho - 1) * rs >= rh or (wo - 1) * rs >= rw:
                raise FormatError(f"residual input {(rc, rh, rw)} (stride {rs}, channel offset {off}) does not fit "
                                  f"the output {(n, ho, wo)}")
        elif len(ins) != 1:
            raise FormatError("a second input without a residual")
        return n, ho, wo
    if op == "maxpool":
        k, st, out = int(a["size"]), int(a["stride"]), tuple(int(v) for v in a["out"])
        if min(k, st) < 1 or len(out) != 2 or min(out) < 1:
            raise FormatError(f"bad maxpool size {k}, stride {st} or output {out}")
        return c, out[0], out[1]
    if op == "avgpool":
        return c, 1, 1
    if op == "concat":
        for i in ins[1:]:
            if shapes[i][1:] != (h, w):
                raise FormatError(f"concat of {shapes[i][1:]} and {(h, w)} pixels")
        return sum(shapes[i][0] for i in ins), h, w
    if op == "add":
        if shapes[ins[1]] != (c, h, w):
            raise FormatError(f"add of {shapes[ins[1]]} and {(c, h, w)}")
        return c, h, w
    if op == "upsample":
        st = int(a["stride"])
        if st < 1:
            raise FormatError(f"upsample stride {st}")
        return c, h * st, w * st
    if op == "reorg":
        st = int(a["stride"])
        if st < 1 or h % st or w % st:
            raise FormatError(f"reorg stride {st} does not divide {h}x{w}")
        return c * st * st, h // st, w // st
    if op == "linear":
        n = int(a["out_features"])
        if tuple(pm.tensors[t["weight"]].shape) != (n, c * h * w):
            raise FormatError(f"weight shape {pm.tensors[t['weight']].shape}, want {(n, c * h * w)}")
        size("bias", n)
        if pm.dtypes[t["weight"]] in TERNARY_DTYPES:
            size("scale", 1, n)
        return n, 1, 1
    return c, h, w


def _check_graph(pm: PackedModel, path):
    seen = set(pm.graph.get("inputs", []))
    for node in pm.graph.get("nodes", []):
        if not isinstance(node, dict) or "name" not in node or "op" not in node or "inputs" not in node:
            raise FormatError(f"{path}: malformed graph node {str(node)[:80]}")
        for i in node.get("inputs", []):
            if i not in seen:
                raise FormatError(f"{path}: node {node.get('name')!r} reads {i!r}, which no earlier node makes")
        for t in node.get("tensors", {}).values():
            if t not in pm.tensors:
                raise FormatError(f"{path}: node {node.get('name')!r} names the missing tensor {t!r}")
        seen.add(node["name"])
    for o in pm.graph.get("outputs", []):
        if o not in seen:
            raise FormatError(f"{path}: graph output {o!r} is not a node")
    graph_shapes(pm, path)


def load_packed(path) -> PackedModel:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such packed model file")
    return decode_packed(p.read_bytes(), p)
