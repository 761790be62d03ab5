"""Packing ternary codes into bytes: a re-export of the torch-free runtime's format code (``tritnet_rt.format``),
so the trainer and the runtime share one definition.

  2 bits per weight:  code + 1 ∈ {0, 1, 2}, four weights per byte, weight i in bits 2·(i mod 4).
  5 trits per byte:   Σ_j (code_j + 1)·3^j over groups of five weights (3^5 = 243 ≤ 256), 1.6 bits per weight.
"""
from tritnet_rt.format import pack_2bit, pack_trits, packed_bytes, unpack_2bit, unpack_trits  # noqa: F401

__all__ = ["pack_2bit", "unpack_2bit", "pack_trits", "unpack_trits", "packed_bytes"]
