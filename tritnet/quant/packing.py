"""Packing ternary codes into bytes (numpy only, so a torch-free runtime can share it).

Two layouts:
  2 bits per weight:  code + 1 ∈ {0, 1, 2}, four weights per byte, weight i in bits 2·(i mod 4).
  5 trits per byte:   Σ_j (code_j + 1)·3^j over groups of five weights (3^5 = 243 ≤ 256), 1.6 bits per weight.
The last byte is padded with code 0 (value 1 in 2-bit, 0 contributes +1·3^j in trits and is ignored on unpack).
"""
from __future__ import annotations

import numpy as np

_POW3 = np.array([1, 3, 9, 27, 81], dtype=np.uint16)


def _as_codes(codes) -> np.ndarray:
    c = np.asarray(codes).reshape(-1)
    if c.size and (c.min() < -1 or c.max() > 1):
        raise ValueError("ternary codes must be in {-1, 0, 1}")
    return (c.astype(np.int16) + 1).astype(np.uint8)


def pack_2bit(codes) -> bytes:
    u = _as_codes(codes)
    pad = (-u.size) % 4
    u = np.concatenate([u, np.ones(pad, np.uint8)]).reshape(-1, 4)
    packed = u[:, 0] | (u[:, 1] << 2) | (u[:, 2] << 4) | (u[:, 3] << 6)
    return packed.astype(np.uint8).tobytes()


def unpack_2bit(data: bytes, count: int) -> np.ndarray:
    b = np.frombuffer(data, dtype=np.uint8)
    if b.size * 4 < count:
        raise ValueError(f"2-bit data holds {b.size * 4} weights, {count} asked for")
    u = np.stack([(b >> s) & 3 for s in (0, 2, 4, 6)], axis=1).reshape(-1)[:count]
    if (u == 3).any():
        raise ValueError("2-bit data holds the invalid code 3")
    return u.astype(np.int8) - 1


def pack_trits(codes) -> bytes:
    u = _as_codes(codes)
    pad = (-u.size) % 5
    u = np.concatenate([u, np.ones(pad, np.uint8)]).reshape(-1, 5).astype(np.uint16)
    return (u @ _POW3).astype(np.uint8).tobytes()


def unpack_trits(data: bytes, count: int) -> np.ndarray:
    b = np.frombuffer(data, dtype=np.uint8).astype(np.int16)
    if b.size * 5 < count:
        raise ValueError(f"trit data holds {b.size * 5} weights, {count} asked for")
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
