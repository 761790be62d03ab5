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
import math
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import ops

MAGIC = b"TRITNET\x1a"
VERSION = (1, 1)           # 1.1: conv input_quant
_FIXED = struct.Struct("<8sHHIQQI28s")      # 64 bytes
ALIGN = 64
FLOAT_DTYPES = {"f32": np.float32, "f16": np.float16, "i32": np.int32, "i8": np.int8}
TERNARY_DTYPES = ops.TERNARY_DTYPES

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


# byte -> its codes, through one table each: a decode allocates its result and a flag per byte, nothing the size
# of the tensor besides (yolov2-tiny's 9.4M-weight layer took 37 MB of temporaries through shifts and casts)
_BYTE_2BIT = (np.arange(256)[:, None] >> np.array([0, 2, 4, 6])) & 3
_BAD_2BIT = (_BYTE_2BIT == 3).any(1)
_CODES_2BIT = (_BYTE_2BIT - 1).astype(np.int8)


def _ternary_bytes(data, count: int, storage: str) -> np.ndarray:
    """The stored bytes of ``count`` ternary codes (``tern2`` or ``tern1.6``), checked: their number, no invalid
    code."""
    b = np.frombuffer(data, dtype=np.uint8)
    per, what = (4, "2-bit") if storage == "tern2" else (5, "trit")
    if b.size != -(-count // per):
        raise ValueError(f"{b.size} bytes of {what} data for {count} weights (want {-(-count // per)})")
    if per == 4 and _BAD_2BIT[b].any():
        raise ValueError("2-bit data holds the invalid code 3")
    if per == 5 and b.size and b.max() > 242:
        raise ValueError("trit data holds a byte above 242 (3^5 - 1)")
    return b


def unpack_2bit(data: bytes, count: int) -> np.ndarray:
    return _CODES_2BIT[_ternary_bytes(data, count, "tern2")].reshape(-1)[:count]


def pack_trits(codes) -> bytes:
    """Codes {-1,0,1} → bytes, five per byte as Σ (code_j+1)·3^j (3^5 = 243 ≤ 256): 1.6 bits a weight."""
    u = _as_codes(codes)
    u = np.concatenate([u, np.ones((-u.size) % 5, np.uint8)]).reshape(-1, 5).astype(np.uint16)
    return (u @ _POW3).astype(np.uint8).tobytes()


_CODES_TRITS = np.stack([(np.arange(243) // int(p)) % 3 for p in _POW3], axis=1).astype(np.int8) - 1


def unpack_trits(data: bytes, count: int) -> np.ndarray:
    return _CODES_TRITS[_ternary_bytes(data, count, "tern1.6")].reshape(-1)[:count]


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


def _decode(raw: bytes, dtype: str, shape, name: str, path, lazy: bool = False) -> np.ndarray:
    """``lazy``: a ternary tensor's bytes are checked and kept as ``LazyCodes``."""
    count = int(np.prod(shape)) if len(shape) else 1
    try:
        if lazy and dtype in TERNARY_DTYPES:
            _ternary_bytes(raw, count, dtype)
            return LazyCodes(raw, dtype, shape, name, path)
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


class LazyCodes:
    """A ternary tensor kept as its stored bytes (checked when the file was read) and decoded each time it is
    read, as an array or a range of rows: ``Net.load`` lays out each layer's weights from 16 rows of codes at a
    time, so the load never holds the int8 codes of the model, or of a whole layer (yolov2-tiny-voc: 15 MB, the
    process's peak before)."""
    dtype = np.dtype(np.int8)

    def __init__(self, raw, storage: str, shape, name: str, path):
        self.raw, self.storage, self.shape, self.name, self.path = raw, storage, tuple(shape), name, path

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __array__(self, dtype=None, copy=None):
        a = _decode(self.raw, self.storage, self.shape, self.name, self.path)
        return a if dtype is None else a.astype(dtype)

    def __getitem__(self, rows):
        """codes[start:stop] along the first axis, decoded from those rows' bytes alone."""
        if not isinstance(rows, slice) or rows.step not in (None, 1):
            return np.asarray(self)[rows]
        start, stop, _ = rows.indices(self.shape[0])
        stop = max(start, stop)
        per, size = (4 if self.storage == "tern2" else 5), int(np.prod(self.shape[1:]))
        first, count = start * size, (stop - start) * size
        skip = first % per                       # rows need not start on a byte: decode from the byte's first code
        unpack = unpack_2bit if per == 4 else unpack_trits
        codes = unpack(self.raw[first // per:-(-(first + count) // per)], count + skip)[skip:]
        return codes.reshape((stop - start,) + self.shape[1:])


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


def _strict_json(text: bytes):
    """The header JSON, refusing what json.loads would quietly accept: a repeated key (a second node list
    hidden behind the first), NaN and Infinity, nesting deep enough to exhaust the stack."""
    def pairs(items):
        d = {}
        for k, v in items:
            if k in d:
                raise ValueError(f"the key {k!r:.40} appears twice")
            d[k] = v
        return d

    def constant(name):
        raise ValueError(f"{name} is not a number JSON allows")

    try:
        return json.loads(text.decode("utf-8"), object_pairs_hook=pairs, parse_constant=constant)
    except (ValueError, RecursionError) as e:
        raise ValueError(str(e) or type(e).__name__) from None


HEADER_KEYS = ("format", "version", "model", "arch", "graph", "tensors")


def read_header(data: bytes, path="<packed>") -> tuple[dict, memoryview]:
    """Check magic, version, lengths, reserved and padding bytes and both checksums; return (header dict,
    data view)."""
    if len(data) < _FIXED.size:
        if data[:len(MAGIC)] != MAGIC[:len(data)]:
            raise FormatError(f"{path}: not a tritnet packed file (bad magic)")
        raise FormatError(f"{path}: truncated: {len(data)} bytes, shorter than the 64-byte header")
    magic, major, minor, hcrc, hlen, dlen, dcrc, reserved = _FIXED.unpack_from(data)
    if magic != MAGIC:
        raise FormatError(f"{path}: not a tritnet packed file (bad magic {magic!r})")
    if (major, minor) > VERSION:
        raise FormatError(f"{path}: packed format version {major}.{minor} is newer than this runtime reads "
                          f"({VERSION[0]}.{VERSION[1]}); upgrade tritnet")
    if major < VERSION[0]:
        raise FormatError(f"{path}: packed format version {major}.{minor} was never released; this runtime "
                          f"reads {VERSION[0]}.0 to {VERSION[0]}.{VERSION[1]}")
    if reserved != bytes(len(reserved)):
        raise FormatError(f"{path}: reserved header bytes 36..63 are not zero")
    start = _FIXED.size + hlen + _pad(hlen)
    if len(data) < start + dlen:
        raise FormatError(f"{path}: truncated: {len(data)} bytes, the header says {start + dlen}")
    if len(data) > start + dlen:
        raise FormatError(f"{path}: {len(data) - start - dlen} unexpected bytes after the data")
    hj = bytes(data[_FIXED.size:_FIXED.size + hlen])
    if zlib.crc32(hj) != hcrc:
        raise FormatError(f"{path}: corrupted: header checksum mismatch")
    if any(data[_FIXED.size + hlen:start]):
        raise FormatError(f"{path}: the header JSON's padding is not zero")
    view = memoryview(data)[start:start + dlen]
    if zlib.crc32(view) != dcrc:
        raise FormatError(f"{path}: corrupted: data checksum mismatch")
    try:
        header = _strict_json(hj)
    except ValueError as e:
        raise FormatError(f"{path}: corrupted header JSON ({e})") from None
    if not isinstance(header, dict):
        raise FormatError(f"{path}: the header JSON is not an object")
    for key in HEADER_KEYS:
        if key not in header:
            raise FormatError(f"{path}: header has no {key!r}")
    extra = sorted(set(header) - set(HEADER_KEYS))
    if extra:
        raise FormatError(f"{path}: header has the unknown field {extra[0]!r:.40}")
    if header["format"] != "tritnet-packed" or header["version"] != f"{major}.{minor}":
        raise FormatError(f"{path}: header says format {str(header['format'])[:40]!r} version "
                          f"{str(header['version'])[:20]!r}, the file is tritnet-packed {major}.{minor}")
    return header, view


def _tensor_table(tensors, dlen: int, path) -> dict:
    """name -> (offset, nbytes, dtype, shape), checked: known dtype, integer shape within the limits, the
    exact byte count for it, 64-byte aligned offsets inside the data, no two tensors overlapping."""
    if not isinstance(tensors, dict) or len(tensors) > ops.MAX_TENSORS:
        raise FormatError(f"{path}: tensors must be a table of at most {ops.MAX_TENSORS} tensors")
    table = {}
    for name, t in tensors.items():
        where = f"{path}: tensor {name!r:.80}"
        if len(name) > ops.MAX_NAME:
            raise FormatError(f"{where}: a name over {ops.MAX_NAME} characters")
        try:
            ops.check_fields("entry", _TENSOR_FIELDS, t)
        except ops.GraphError as e:
            raise FormatError(f"{where}: {e}") from None
        dtype, shape, off, n = t["dtype"], tuple(t["shape"]), t["offset"], t["nbytes"]
        count = math.prod(shape)
        if count > ops.MAX_ELEMENTS:
            raise FormatError(f"{where}: shape {list(shape)} holds {count} values (at most {ops.MAX_ELEMENTS})")
        want = _nbytes(dtype, count)
        if n != want:
            raise FormatError(f"{where}: {n} bytes for {count} values of {dtype} (want {want})")
        if off % ALIGN or off + n > dlen:
            raise FormatError(f"{where}: offset {off} is not {ALIGN}-byte aligned inside the {dlen}-byte data")
        table[name] = (off, n, dtype, shape)
    end = 0
    for name, (off, n, _, _) in sorted(table.items(), key=lambda kv: kv[1][0]):
        if off < end:
            raise FormatError(f"{path}: tensor {name!r:.80} at offset {off} overlaps the tensor before it")
        end = off + n
    return table


_TENSOR_FIELDS = {"dtype": ops.Attr("str", choices=TERNARY_DTYPES + tuple(FLOAT_DTYPES)),
                  "shape": ops.Attr("ints", 0, ops.MAX_ELEMENTS, length=(0, 8)),
                  "offset": ops.Attr("int", 0, 1 << 62), "nbytes": ops.Attr("int", 0, 1 << 62)}


def _nbytes(dtype: str, count: int) -> int:
    if dtype == "tern2":
        return -(-count // 4)
    if dtype == "tern1.6":
        return -(-count // 5)
    return count * np.dtype(FLOAT_DTYPES[dtype]).itemsize


def decode_packed(data: bytes, path="<packed>", lazy: bool = False) -> PackedModel:
    """A packed file's bytes → PackedModel, verified in full against the format and the op table
    (``tritnet_rt.ops``) before anything is returned; every failure is a FormatError naming the file.
    ``lazy``: ternary tensors stay ``LazyCodes`` over ``data`` (their bytes checked here all the same)."""
    header, view = read_header(data, path)
    table = _tensor_table(header["tensors"], len(view), path)
    major, minor = (int(v) for v in header["version"].split("."))
    pm = PackedModel(header["model"], header["arch"], header["graph"], version=(major, minor))
    for name, (off, n, dtype, shape) in table.items():
        pm.tensors[name] = _decode(view[off:off + n] if lazy else bytes(view[off:off + n]), dtype, shape, name,
                                   path, lazy)
        pm.dtypes[name] = dtype
        try:
            ops.check_values(name, pm.tensors[name])
        except ops.GraphError as e:
            raise FormatError(f"{path}: {e}") from None
    graph_shapes(pm, path)
    return pm


def graph_shapes(pm: PackedModel, path="<packed>") -> dict:
    """(C, H, W) of every node, "input" included, after checking the header facts and every node against the
    op table (``tritnet_rt.ops``): a file whose checksums are right but whose graph does not fit together is
    refused here, before any kernel could read past a buffer."""
    try:
        ops.check_fields("arch", ops.ARCH_FIELDS, pm.arch)
        table = {name: (pm.dtypes.get(name), tuple(np.shape(a))) for name, a in pm.tensors.items()}
        return ops.check_graph(pm.model, pm.graph, table)
    except ops.GraphError as e:
        raise FormatError(f"{path}: {e}") from None


def load_packed(path, lazy: bool = False) -> PackedModel:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such packed model file")
    return decode_packed(p.read_bytes(), p, lazy)
