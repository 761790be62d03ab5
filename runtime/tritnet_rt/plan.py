"""Packed graph → the C op list (numpy glue). Weights are laid out once per model (``prepare``); buffers
and pixel-offset tables once per batch size (``build``). Activations are float32 NHWC between ops.

Conv paths:
  t8   int8 activations (per-image min/max → u8 with zero point) x ternary weights, packed [N/16][K/4][16][4]
  tt   ternary activations (STTN: t = a·x + b, ±1 at ±0.5) x ternary weights as bit planes (popcount)
  f32  float weights (layers kept float), float activations
"""
from __future__ import annotations

import numpy as np

from .format import graph_shapes

OP = {"conv_t8": 1, "conv_tt": 2, "conv_f32": 3, "maxpool": 4, "avgpool": 5, "concat": 6, "add": 7,
      "upsample": 8, "gather": 9, "linear": 10, "act": 11}
ACT = {"linear": 0, "relu": 1, "leaky": 2, "prelu": 3, "logistic": 4}
HEADS = ("region", "yolo", "softmax")


def _ceil(a, b):
    return -(-a // b)


# ------------------------------------------------------------------------------- weight layouts

def pack_t8(codes: np.ndarray):
    """(N, C, kh, kw) codes → int8 [N16/16][K/4][16][4] with K = kh·kw·Cp (C padded to 4), flat, then 1 KiB of
    zeros (an AMX weight tile 64 deep may read past the last block's K); and Σ codes per n."""
    n, c, kh, kw = codes.shape
    cp = _ceil(c, 4) * 4
    w = np.zeros((_ceil(n, 16) * 16, kh, kw, cp), np.int8)
    w[:n, :, :, :c] = codes.transpose(0, 2, 3, 1)
    k = kh * kw * cp
    packed = np.concatenate([w.reshape(-1, 16, k // 4, 4).transpose(0, 2, 1, 3).reshape(-1), np.zeros(1024, np.int8)])
    return packed, codes.reshape(n, -1).sum(1).astype(np.int32), cp


def pack_tt(codes: np.ndarray):
    """(N, C, kh, kw) codes → u64 [N8/8][KW][2][8]: bit k = tap·C + c of the nonzero and the sign planes."""
    n, c, kh, kw = codes.shape
    k = kh * kw * c
    kwords = _ceil(k, 64)
    flat = np.zeros((_ceil(n, 8) * 8, kwords * 64), np.uint8)
    flat[:n, :k] = codes.transpose(0, 2, 3, 1).reshape(n, k) != 0
    nz = np.packbits(flat, axis=1, bitorder="little").view("<u8")
    flat[:n, :k] = codes.transpose(0, 2, 3, 1).reshape(n, k) < 0
    sg = np.packbits(flat, axis=1, bitorder="little").view("<u8")
    both = np.stack([nz, sg], 1).reshape(-1, 8, 2, kwords)          # [N8][8][2][KW]
    return np.ascontiguousarray(both.transpose(0, 3, 2, 1)).astype(np.uint64), kwords


def reorg_index(c, h, w, s):
    """NHWC gather index of darknet's reorg (forward): output NHWC slot → input NHWC slot."""
    nchw_to_nhwc = np.arange(c * h * w).reshape(h, w, c).transpose(2, 0, 1).reshape(-1)
    y = np.arange(c * h * w).reshape(c // (s * s), h, s, w, s).transpose(2, 4, 0, 1, 3)
    y = y.reshape(c * s * s, h // s, w // s)                       # NCHW index of the input, per output
    return nchw_to_nhwc[y.transpose(1, 2, 0).reshape(-1)].astype(np.int32)


class Prepared:
    """Per-node data that does not depend on the batch: packed weights, scales, biases, shapes (C, H, W)."""

    def __init__(self, pm):
        self.pm = pm
        self.nodes = pm.graph["nodes"]
        self.shapes = graph_shapes(pm)                                 # name -> (C, H, W), checked
        self.data = {}
        for node in self.nodes:
            if node["op"] in ("conv", "linear"):
                self.data[node["name"]] = self._weights(node)

    def _weights(self, node):
        t, a, pm = node["tensors"], node["attrs"], self.pm
        w = pm.tensors[t["weight"]]
        n = w.shape[0]
        d = {"bias": pm.tensors[t["bias"]].astype(np.float32),
             "prelu": pm.tensors[t["prelu"]].astype(np.float32) if "prelu" in t else None}
        ternary = pm.dtypes[t["weight"]].startswith("tern")
        if node["op"] == "linear":
            wf = w.astype(np.float32) * (pm.tensors[t["scale"]].reshape(-1, 1) if ternary else 1)
            c, h, ww = self.shapes[node["inputs"][0]]
            if h * ww > 1:      # flatten order: NCHW in the model, NHWC here
                wf = wf.reshape(n, c, h, ww).transpose(0, 2, 3, 1).reshape(n, -1)
            d["w"] = np.ascontiguousarray(wf, np.float32)
            return d
        if ternary:
            d["scale"] = np.broadcast_to(pm.tensors[t["scale"]].astype(np.float32), (n,)).copy()
            if a.get("input") == "ternary":           # the reader checked: ternary weights, channels of 8
                d["path"] = "tt"
                d["w"], d["kw"] = pack_tt(w)
                d["act_a"] = pm.tensors[t["act_a"]].astype(np.float32)
                d["act_b"] = pm.tensors[t["act_b"]].astype(np.float32)
            else:
                d["path"] = "t8"
                d["w"], d["wsum"], d["cp"] = pack_t8(w)
        else:
            d["path"] = "f32"
            kh, kw = a["kernel"]
            d["w"] = np.ascontiguousarray(w.astype(np.float32).transpose(2, 3, 1, 0).reshape(kh * kw * w.shape[1], n))
        return d


def _f32(shape):
    return np.zeros(shape, np.float32)


def build(prep: Prepared, batch: int):
    """(ops, buffers, outputs): the op tuples for _tnrt.Plan, every buffer by node name, output names."""
    B, ops, buf, keep = batch, [], {}, []
    c, h, w = prep.shapes["input"]
    buf["input"] = _f32((B, h, w, c))
    for node in prep.nodes:
        name, op, a = node["name"], node["op"], node["attrs"]
        ins = node["inputs"]
        C, H, W = prep.shapes[ins[0]]
        co, ho, wo = prep.shapes[name]
        x = buf[ins[0]]
        if op in ("identity",) + HEADS:
            buf[name] = x
            continue
        out = buf[name] = _f32((B, ho, wo, co))
        if op == "conv":
            ops.append(_conv(prep, node, B, x, out, buf, keep))
        elif op == "maxpool":
            ops.append((OP["maxpool"], (B, H, W, C, ho, wo, a["size"], a["stride"], *a["pad"]), (), (x, out)))
        elif op == "avgpool":
            ops.append((OP["avgpool"], (B, H, W, C), (), (x, out)))
        elif op == "concat":
            cs = [prep.shapes[i][0] for i in ins]
            ops.append((OP["concat"], (B, H * W, len(ins), co, *cs), (), (out, *[buf[i] for i in ins])))
        elif op == "add":
            ops.append((OP["add"], (out.size, ACT[a["activation"]], max(1, min(8, out.size // 16384))),
                        (float(a["alpha"]), float(a["beta"])), (x, buf[ins[1]], out)))
        elif op == "upsample":
            ops.append((OP["upsample"], (B, H, W, C, a["stride"]), (float(a["scale"]),), (x, out)))
        elif op == "reorg":
            idx = reorg_index(C, H, W, a["stride"])
            keep.append(idx)
            ops.append((OP["gather"], (B, idx.size, C * H * W), (), (x, idx, out)))
        elif op == "linear":
            d = prep.data[name]
            ops.append((OP["linear"], (B, C * H * W, co, ACT[a["activation"]]), (), (x, d["w"], d["bias"], out)))
        elif op == "act":
            ops.append((OP["act"], (out.size, ACT[a["activation"]], 1), (), (x, out)))
        else:
            raise ValueError(f"node {name}: the runtime has no op {op!r}")
    return ops, buf, keep


def _conv(prep, node, B, x, out, buf, keep):
    d, a = prep.data[node["name"]], node["attrs"]
    C, H, W = prep.shapes[node["inputs"][0]]
    N, Ho, Wo = prep.shapes[node["name"]]
    (kh, kw), s, (pt, pl, pb, pr) = a["kernel"], a["stride"], a["pad"]
    Hp, Wp = H + pt + pb, W + pl + pr
    oy, ox = np.divmod(np.arange(Ho * Wo), Wo)
    pixel = (oy * s) * Wp + ox * s                                  # in input pixels
    tap = (np.arange(kh)[:, None] * Wp + np.arange(kw)[None, :]).reshape(-1)   # popcount path: one segment a tap
    row = np.arange(kh) * Wp                  # t8/f32: the kw taps of a kernel row are contiguous, one segment
    res = (0, 0, 0, 0)
    rbuf = rpix = None
    if "residual" in a:
        rc, rh, rw = prep.shapes[node["inputs"][1]]
        rs = a["residual"]["stride"]
        rbuf = buf[node["inputs"][1]]
        rpix = (((oy * rs) * rw + ox * rs) * rc).astype(np.int32)
        res = (1, rc, a["residual"]["channel_offset"], rc * rh * rw)
    act = ACT[a["activation"]]
    scr = _f32(B * N + 2 * B)
    path = d["path"]
    if path == "t8":
        cp = d["cp"]
        q = np.zeros((B, Hp, Wp, cp), np.uint8)
        pix, seg = (pixel * cp).astype(np.int32), (row * cp).astype(np.int32)
        ints = (B, H, W, C, cp, Hp, Wp, pt, pl, Ho * Wo, N, kh, kw * cp, act, *res, 0, 0, 0, _ceil(N, 16))
        bufs = (x, q, pix, seg, d["w"], d["wsum"], d["scale"], d["bias"], d["prelu"], out, rbuf, rpix, scr)
        code = OP["conv_t8"]
    elif path == "tt":
        cb = C // 8
        q = np.zeros((B, Hp, Wp, 2 * cb), np.uint8)
        bits = np.zeros((B, Ho * Wo, 2, d["kw"]), np.uint64)
        pix, seg = pixel.astype(np.int32), tap.astype(np.int32)
        ints = (B, H, W, C, 0, Hp, Wp, pt, pl, Ho * Wo, N, kh * kw, 0, act, *res, 0, 0, d["kw"], _ceil(N, 8))
        bufs = (x, q, pix, seg, d["w"], np.zeros(N, np.int32), d["scale"], d["bias"], d["prelu"], out, rbuf, rpix,
                scr, bits, d["act_a"], d["act_b"])
        code = OP["conv_tt"]
    else:
        q = np.zeros((B, Hp, Wp, C), np.float32)
        pix, seg = (pixel * C).astype(np.int32), (row * C).astype(np.int32)
        ints = (B, H, W, C, C, Hp, Wp, pt, pl, Ho * Wo, N, kh, kw * C, act, *res, 0, 0, 0, 0)
        bufs = (x, q, pix, seg, d["w"], None, None, d["bias"], d["prelu"], out, rbuf, rpix, scr)
        code = OP["conv_f32"]
    keep.extend([q, pix, seg, scr])
    return code, ints, (), bufs
