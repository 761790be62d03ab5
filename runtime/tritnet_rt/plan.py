"""Packed graph → the C op list (numpy glue). Weights are laid out once per model (``prepare``); buffers
and pixel-offset tables once per batch size (``build``). Activations are float32 NHWC between ops (the input
NCHW where only convs read it: ``Prepared.planar_input``), but a conv read only by an int8 conv with a
calibrated input scale writes that conv's padded 8-bit input itself (``chained_convs``).

Conv paths:
  grouped  grouped / depthwise convs: float activations x the weights as floats (ternary codes ±1/0, scale after)
  t8   int8 activations (u8 with a zero point: per-image min/max, or the scale calibrated at export, attribute
       input_quant) x ternary weights, packed [N/16][K/4][16][4], or kept at 2 bits (``weight_bits``)
  tt   ternary activations (STTN: t = a·x + b, ±1 at ±0.5) x ternary weights as bit planes (popcount)
  t8t  the same ternary activations as 8-bit codes (t + 1, zero point 1) through the int8 GEMM, faster than the
       popcount one with the x86 SIMD kernels (``ternary_inputs``); the sums are the same
  f32  float weights (layers kept float), float activations; ternary layers too with activations="float"
"""
from __future__ import annotations

import numpy as np

from .format import graph_shapes
from .ops import ACTIVATIONS, OPS, PASS_THROUGH

ACT = {name: code for code, name in enumerate(ACTIVATIONS)}        # tn.h's TN_ACT_* follow this order
# int8: ternary convs quantize their input to 8 bits (the fast path); float: they run on the f32 path with
# the codes times their scales, for results equal to darknet's float forward (a check: yolov2-tiny-voc runs about
# 17x slower than int8). STTN's ternary activations are the model's own and stay.
ACTIVATION_MODES = ("int8", "float")
# ternary activations: as bit planes (popcount, path tt) or as 8-bit codes in the int8 GEMM (path t8t); "auto"
# picks int8 on AMX and AVX2, where it measured faster (STTN ResNet-20, 1 thread, int8 against bits, Xeon: AMX
# 0.23 against 0.30 ms, AVX2 0.48 / 0.59; Zen 4: AVX2 0.55 / 0.77), bits on AVX-512 (Zen 4: 0.30 against 0.27
# ms, 0.31 / 0.30 on 2 threads; the Xeon: a tie, 0.28 / 0.28) and elsewhere (serial: bits 1.6-1.9x faster; NEON
# not measured on hardware). bench/ternary_inputs.py, BENCHMARKS.md 8f and 8j. The same bits either way.
TERNARY_INPUT_MODES = ("auto", "bits", "int8")
INT8_PATHS = ("t8", "t8t", "tt")                 # the integer conv paths (fused maxpool, quantized output)
# the int8 GEMM's weights in memory: int8, or 2 bits expanded by the kernel as it goes (tn.h). "auto": 2 bits
# for the layers of K >= AMX_MIN_K (shallower ones hold a few KB) where the ISA has a 2-bit kernel (W2_MIN_BYTES):
# AMX expands a chunk at a time beside the tiles, AVX-512 a call's blocks or 64 channels at a time into a buffer
# kept in L2 (yolov2-tiny-voc: 15.2 MB of weights become 3.8, BENCHMARKS.md 8g); int8 elsewhere (AVX2, NEON: a
# 2-bit layer there is expanded per task by the serial expander, correct but slower: for tests).
WEIGHT_BITS_MODES = ("auto", 8, 2)
# the ISAs with a 2-bit kernel, and the int8 weight bytes (K·N) from which "auto" keeps a layer at 2 bits. AVX-512
# expands ahead of the tiles, a pass the tiles then wait for: worth it only where the int8 weights would not stay
# in cache (Zen 4, only the layers of 1 MB and more at 2 bits against all of K >= 256: ResNet-20 1.5-2% and
# ttt5_224_160 2.5-4.5% faster, yolov2-tiny-voc the same, whose 13x13 layers hold 15 of its 15.7 MB;
# bench/results/ab_w2_min_bytes_zen4*.json). AMX expands beside the tiles: all of them (BENCHMARKS.md 8g).
W2_MIN_BYTES = {"avx512": 1 << 20, "amx": 0}


def ternary_input_mode(mode: str = "auto") -> str:
    if mode not in TERNARY_INPUT_MODES:
        raise ValueError(f"ternary_inputs: {mode!r} is not one of {', '.join(TERNARY_INPUT_MODES)}")
    if mode != "auto":
        return mode
    from .native import ext
    return "int8" if ext().get_isa() in ("avx2", "amx") else "bits"


def weight_bits_rule(mode="auto"):
    """(K, N) of a conv (K: kh·kw·padded channels, N: output channels) -> the bits its int8-path weights are
    kept at."""
    if mode not in WEIGHT_BITS_MODES:
        raise ValueError(f"weight_bits: {mode!r} is not one of {', '.join(map(str, WEIGHT_BITS_MODES))}")
    if mode != "auto":
        return lambda k, n: mode
    from .native import ext
    isa, min_k = ext().get_isa(), ext().AMX_MIN_K
    min_bytes = W2_MIN_BYTES.get(isa)
    return lambda k, n: 2 if min_bytes is not None and k >= min_k and k * n >= min_bytes else 8


def _ceil(a, b):
    return -(-a // b)


def zeros64(shape, dtype) -> np.ndarray:
    """np.zeros on a 64-byte boundary: the kernels read weights and activations a cache line (64 bytes) at a
    time, and numpy's 16-byte alignment split every such read of the weights across two lines."""
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.zeros(n + 64, np.uint8)
    skip = -raw.ctypes.data % 64
    return raw[skip:skip + n].view(dtype).reshape(shape)


# ------------------------------------------------------------------------------- weight layouts

def t8_depth(codes: np.ndarray) -> int:
    """K of the int8 GEMM: kh·kw·C with C padded to 4."""
    n, c, kh, kw = codes.shape
    return kh * kw * _ceil(c, 4) * 4


def pack_t8(codes, bits: int = 8):
    """(N, C, kh, kw) codes (an array, or LazyCodes read 16 rows at a time) → (weights, Σ codes per n, Cp).
    bits 8: int8 [N16/16][K/4][16][4] with K = kh·kw·Cp (C padded to 4), flat, then 1 KiB of zeros (an AMX weight
    tile 64 deep may read past the last block's K).
    bits 2: uint8 [N16/16][Kp/4][16], K padded to 64, four codes a byte (v & 3 in bits 2j..2j+1 for k = 4r + j),
    channel c in slot W2_SLOTS[c] (csrc/tn.h)."""
    n, c, kh, kw = codes.shape
    cp = _ceil(c, 4) * 4
    k, blocks = t8_depth(codes), _ceil(n, 16)
    if bits == 2:
        from .native import ext
        packed = zeros64((blocks, _ceil(k, 64) * 16, 16), np.uint8)
        slots = np.array(ext().W2_SLOTS)
    else:
        packed = zeros64(blocks * 16 * k + 1024, np.int8)
        tiles = packed[:blocks * 16 * k].reshape(blocks, k // 4, 16, 4)
    block, wsum = np.zeros((16, kh, kw, cp), np.int8), np.zeros(n, np.int32)
    for b in range(blocks):            # a block at a time: no temporary the size of the layer (peak memory)
        rows = codes[16 * b:16 * b + 16]
        wsum[16 * b:16 * b + len(rows)] = rows.reshape(len(rows), -1).sum(1, dtype=np.int32)
        block[:] = 0
        block[:len(rows), :, :, :c] = rows.transpose(0, 2, 3, 1)
        quads = block.reshape(16, k // 4, 4)                          # [channel][K/4][4]
        if bits == 2:
            two = quads.view(np.uint8) & 3
            packed[b][:k // 4, slots] = (two[..., 0] | two[..., 1] << 2 | two[..., 2] << 4 | two[..., 3] << 6).T
        else:
            tiles[b] = quads.transpose(1, 0, 2)
    return packed.reshape(-1), wsum, cp


def slabs_f32(w: np.ndarray) -> np.ndarray:
    """(K, N) float weights → [N16/16][K][16] float32 (slabs of 16 output channels, zeros after N), flat: the
    float conv streams one slab contiguously while its sums stay in registers (ops.c, fgemm_task)."""
    k, n = w.shape
    padded = np.zeros((k, _ceil(n, 16) * 16), np.float32)
    padded[:, :n] = w
    return np.ascontiguousarray(padded.reshape(k, -1, 16).transpose(1, 0, 2)).reshape(-1)


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

    def __init__(self, pm, activations: str = "int8", release_codes: bool = False, ternary_inputs: str = "auto",
                 weight_bits="auto"):
        """``release_codes``: drop each int8/popcount conv's decoded codes from ``pm.tensors`` once its packed
        layout is made (for a PackedModel nobody else holds: the peak memory keeps one copy of the weights).
        ``ternary_inputs``: how convs with ternary activations run (TERNARY_INPUT_MODES). ``weight_bits``: the
        int8 GEMM's weights in memory (WEIGHT_BITS_MODES)."""
        if activations not in ACTIVATION_MODES:
            raise ValueError(f"activations: {activations!r} is not one of {', '.join(ACTIVATION_MODES)}")
        self.pm = pm
        self.float_activations = activations == "float"
        self.ternary_inputs = ternary_input_mode(ternary_inputs)
        self.weight_bits = weight_bits_rule(weight_bits)
        self.nodes = pm.graph["nodes"]
        self.by_name = {n["name"]: n for n in self.nodes}
        self.shapes = graph_shapes(pm)                                 # name -> (C, H, W), checked
        self.readers = {}                                              # name -> the nodes reading it
        for node in self.nodes:
            for i in node["inputs"]:
                self.readers.setdefault(i, []).append(node)
        self.data = {}
        for node in self.nodes:
            if node["op"] in ("conv", "linear"):
                self.data[node["name"]] = self._weights(node)
                if release_codes and self.data[node["name"]].get("path") in INT8_PATHS:
                    del pm.tensors[node["tensors"]["weight"]]
        # The caller's NCHW images go into the plan as they are when only int8 or float convs read them: their
        # padding pass interleaves the channels, so no transposing copy of the input is made (0.55 ms of
        # yolov2-tiny's 9.9 at 416x416 on one thread). Anything else reads NHWC, as every other activation.
        readers = self.readers.get("input", [])
        self.planar_input = bool(readers) and all(
            n["op"] == "conv" and n["inputs"] == ["input"] and self.data[n["name"]]["path"] in ("t8", "f32")
            for n in readers)

    def _weights(self, node):
        t, a, pm = node["tensors"], node["attrs"], self.pm
        w = pm.tensors[t["weight"]]          # an array, or LazyCodes (Net.load): pack_t8 reads 16 rows at a time
        n = w.shape[0]
        d = {"bias": pm.tensors[t["bias"]].astype(np.float32),
             "prelu": pm.tensors[t["prelu"]].astype(np.float32) if "prelu" in t else None}
        ternary = pm.dtypes[t["weight"]].startswith("tern")
        if node["op"] == "linear":
            wf = np.asarray(w, np.float32) * (pm.tensors[t["scale"]].reshape(-1, 1) if ternary else 1)
            c, h, ww = self.shapes[node["inputs"][0]]
            if h * ww > 1:      # flatten order: NCHW in the model, NHWC here
                wf = wf.reshape(n, c, h, ww).transpose(0, 2, 3, 1).reshape(n, -1)
            d["w"] = np.ascontiguousarray(wf, np.float32)
            return d
        if a.get("groups", 1) > 1:                    # grouped / depthwise: float kernel, codes as ±1/0 floats
            d["path"] = "grouped"
            d["w"] = np.ascontiguousarray(np.asarray(w, np.float32).transpose(2, 3, 1, 0))  # [kh][kw][C/groups][N]
            d["scale"] = (np.broadcast_to(pm.tensors[t["scale"]].astype(np.float32), (n,)).copy() if ternary
                          else np.ones(n, np.float32))
        elif ternary and (a.get("input") == "ternary" or not self.float_activations):
            d["scale"] = np.broadcast_to(pm.tensors[t["scale"]].astype(np.float32), (n,)).copy()
            if a.get("input") == "ternary":           # the reader checked: ternary weights, channels of 8
                if self.ternary_inputs == "bits":
                    d["path"] = "tt"
                    d["w"], d["kw"] = pack_tt(np.asarray(w))
                else:
                    d["path"] = "t8t"
                    d["wbits"] = self.weight_bits(t8_depth(w), n)
                    d["w"], d["wsum"], d["cp"] = pack_t8(w, d["wbits"])
                d["act_a"] = pm.tensors[t["act_a"]].astype(np.float32)
                d["act_b"] = pm.tensors[t["act_b"]].astype(np.float32)
            else:
                d["path"] = "t8"
                d["wbits"] = self.weight_bits(t8_depth(w), n)
                d["w"], d["wsum"], d["cp"] = pack_t8(w, d["wbits"])
        else:
            d["path"] = "f32"
            kh, kw = a["kernel"]
            wf = np.asarray(w, np.float32)
            if ternary:       # float activations asked for: codes times scales, the arithmetic of darknet's forward
                wf *= np.broadcast_to(pm.tensors[t["scale"]].astype(np.float32), (n,)).reshape(n, 1, 1, 1)
            d["w"] = slabs_f32(wf.transpose(2, 3, 1, 0).reshape(kh * kw * w.shape[1], n))
        return d


def _f32(shape):
    return zeros64(shape, np.float32)


def pooled_convs(prep: Prepared) -> dict:
    """{conv name: maxpool name} for every integer conv whose output only a 2x2 stride-2 maxpool reads (over
    an even-sized map): the pair runs as one fused op and the conv's full-size output is never stored."""
    outputs = set(prep.pm.graph["outputs"])
    fused = {}
    for node in prep.nodes:
        nxt = prep.readers.get(node["name"], [])
        if (node["op"] != "conv" or prep.data[node["name"]]["path"] not in INT8_PATHS or len(nxt) != 1
                or node["name"] in outputs):
            continue
        pool, (_, ho, wo) = nxt[0], prep.shapes[node["name"]]
        a = pool["attrs"]
        if (pool["op"] == "maxpool" and len(pool["inputs"]) == 1 and a["size"] == 2 and a["stride"] == 2
                and a["pad"] == [0, 0] and ho % 2 == 0 and wo % 2 == 0 and a["out"] == [ho // 2, wo // 2]):
            fused[node["name"]] = pool["name"]
    return fused


def chained_convs(prep: Prepared, fused: dict) -> dict:
    """{conv name: reader conv name} for every integer conv (or conv + fused maxpool) whose output only one
    node reads, as its main input: an int8 conv with a calibrated input scale (``input_quant``). The first
    writes its output straight into the reader's padded 8-bit input (csrc/ops.c, quantized_out); a residual
    the reader adds stays float."""
    outputs = set(prep.pm.graph["outputs"])
    chained = {}
    for node in prep.nodes:
        if node["op"] != "conv" or prep.data[node["name"]].get("path") not in INT8_PATHS:
            continue
        out = fused.get(node["name"], node["name"])
        nxt = prep.readers.get(out, [])
        if (len(nxt) == 1 and out not in outputs and nxt[0]["op"] == "conv" and nxt[0]["inputs"].count(out) == 1
                and nxt[0]["inputs"][0] == out
                and prep.data[nxt[0]["name"]].get("path") == "t8" and "input_quant" in nxt[0]["attrs"]):
            chained[node["name"]] = nxt[0]["name"]
    return chained


def build(prep: Prepared, batch: int, fuse: bool = True, share: bool = True, chain: bool = True):
    """(ops, buffers, keep) for _tnrt.Plan: each op is (C op name, integer fields, floats, buffers), fields
    and buffers named as in the C op table (csrc/ops.c); every node's output buffer by node name (but a conv
    fused with its maxpool, ``fuse``, has only the pooled one); the other arrays the plan reads (index tables,
    scratch), kept alive beside it. ``share``: buffers whose lives do not overlap share memory
    (``share_buffers``); without it every node's output still holds its values after a run (calibration).
    ``chain``: a conv read only by an int8 conv with a calibrated scale writes that conv's 8-bit input
    (``chained_convs``; its float output then has no buffer)."""
    B, ops, buf, keep = batch, [], {}, []
    c, h, w = prep.shapes["input"]
    buf["input"] = _f32((B, c, h, w) if prep.planar_input else (B, h, w, c))
    fused = pooled_convs(prep) if fuse else {}
    pools = set(fused.values())
    chained = chained_convs(prep, fused) if chain else {}
    quantized = {}                                    # reader conv -> its padded u8 input, written by its writer
    for node in prep.nodes:
        name, op = node["name"], node["op"]
        if name in pools:
            continue                                  # computed by its conv
        co, ho, wo = prep.shapes[name]
        x = buf[node["inputs"][0]]
        if op in PASS_THROUGH:
            buf[name] = x
            continue
        q_in = quantized.get(name)                    # written by the conv before, quantized
        if name in chained:
            reader = prep.by_name[chained[name]]
            q = quantized[reader["name"]] = padded_u8(prep, reader, B)
            buf[fused.get(name, name)] = q
            ops.append(_conv(prep, node, B, x, q, buf, keep, pool=name in fused, q_in=q_in, out_quant=reader))
            continue
        if name in fused:
            out = buf[fused[name]] = _f32((B, ho // 2, wo // 2, co))
            ops.append(_conv(prep, node, B, x, out, buf, keep, pool=True, q_in=q_in))
            continue
        if q_in is not None:
            out = buf[name] = _f32((B, ho, wo, co))
            ops.append(_conv(prep, node, B, x, out, buf, keep, q_in=q_in))
            continue
        out = buf[name] = _f32((B, ho, wo, co))
        ops.append(BUILDERS[op](Step(prep, node, B, x, out, buf, keep)))
    if not share:
        return ops, buf, keep
    pinned = [buf["input"]] + [buf[o] for o in prep.pm.graph["outputs"]]
    return share_buffers(ops, buf, keep, pinned)


# Buffers an op writes in full before anything reads them: its output and its scratch. Two such buffers whose
# lives (first op to last op using them) do not overlap share memory; the tables and weights never do.
WRITTEN_FIRST = ("out", "q", "bits", "scratch")


def share_buffers(ops, buf, keep, pinned):
    """``build``'s result with the activations and scratch buffers laid into a few shared blocks (a linear
    scan over their lifetimes, smallest free block that fits), so a plan holds about the largest live set
    instead of every layer's output (yolov2-tiny-voc at batch 1: 11.7 MB of buffers, input and outputs included,
    become 7.4). ``pinned`` arrays (the input, the graph outputs) keep their own memory."""
    pinned = {id(a) for a in pinned}
    lives = {}                                  # id -> [first op, last op, array], in order of first use
    for i, (_, _, _, bufs) in enumerate(ops):
        for field, a in bufs.items():
            if not isinstance(a, np.ndarray) or id(a) in pinned:
                continue
            if id(a) in lives:
                lives[id(a)][1] = i
            elif field in WRITTEN_FIRST:
                lives[id(a)] = [i, i, a]
    blocks, busy, moved = [], [], {}            # blocks: uint8 arrays; busy: (last op, block)
    for first, last, a in lives.values():
        for entry in [e for e in busy if e[0] < first]:
            busy.remove(entry)
        taken = {id(b) for _, b in busy}
        free = [b for b in blocks if id(b) not in taken and b.nbytes >= a.nbytes]
        block = min(free, key=lambda b: b.nbytes) if free else None
        if block is None:
            block = zeros64(a.nbytes, np.uint8)
            blocks.append(block)
        busy.append((last, block))
        moved[id(a)] = block[:a.nbytes].view(a.dtype).reshape(a.shape)
    ops = [(name, fields, floats, {k: moved.get(id(v), v) for k, v in bufs.items()})
           for name, fields, floats, bufs in ops]
    buf = {k: moved.get(id(v), v) for k, v in buf.items()}
    keep = [a for a in keep if id(a) not in moved] + blocks
    return ops, buf, keep


class Step:
    """What a builder sees of one node: the prepared model, the node, the batch, its input and output buffers,
    every buffer so far (by node name) and the list of arrays to keep alive."""

    def __init__(self, prep, node, B, x, out, buf, keep):
        self.prep, self.node, self.B, self.x, self.out, self.buf, self.keep = prep, node, B, x, out, buf, keep
        self.a = node["attrs"]
        self.C, self.H, self.W = prep.shapes[node["inputs"][0]]
        self.image = dict(batch=B, height=self.H, width=self.W, channels=self.C)


def _maxpool(s: Step):
    (pt, pl), (ho, wo) = s.a["pad"], s.a["out"]
    return ("maxpool", dict(s.image, out_height=ho, out_width=wo, size=s.a["size"], stride=s.a["stride"], pad_top=pt,
                            pad_left=pl), (), dict(x=s.x, out=s.out))


def _avgpool(s: Step):
    return "avgpool", s.image, (), dict(x=s.x, out=s.out)


def _concat(s: Step):
    ins = s.node["inputs"]
    return ("concat", dict(batch=s.B, pixels=s.H * s.W, inputs=len(ins), out_channels=s.out.shape[-1],
                           input_channels=[s.prep.shapes[i][0] for i in ins]), (),
            dict(out=s.out, **{f"in{k}": s.buf[i] for k, i in enumerate(ins)}))


def _slice(s: Step):
    return ("slice", dict(batch=s.B, pixels=s.H * s.W, channels=s.C, start=s.a["start"],
                          out_channels=s.a["channels"]), (), dict(x=s.x, out=s.out))


def _scale_channels(s: Step):
    return ("scale_channels", dict(batch=s.B, pixels=s.H * s.W, channels=s.C, activation=ACT[s.a["activation"]]), (),
            dict(x=s.x, scale=s.buf[s.node["inputs"][1]], out=s.out))


def _shortcut(s: Step):
    ins, t = s.node["inputs"], s.node["tensors"]
    w = s.prep.pm.tensors[t["weights"]].astype(np.float32) if "weights" in t else None
    if w is not None:
        s.keep.append(w)
    return ("shortcut", dict(batch=s.B, pixels=s.H * s.W, channels=s.C, inputs=len(ins) - 1,
                             activation=ACT[s.a["activation"]], weighted=int(w is not None),
                             input_channels=[s.prep.shapes[i][0] for i in ins[1:]]), (),
            dict(out=s.out, x=s.x, weights=w, **{f"in{k}": s.buf[i] for k, i in enumerate(ins[1:])}))


def _add(s: Step):
    n = s.out.size
    return ("add", dict(elements=n, activation=ACT[s.a["activation"]], tasks=max(1, min(8, n // 16384))),
            (float(s.a["alpha"]), float(s.a["beta"])), dict(a=s.x, b=s.buf[s.node["inputs"][1]], out=s.out))


def _upsample(s: Step):
    return "upsample", dict(s.image, stride=s.a["stride"]), (float(s.a["scale"]),), dict(x=s.x, out=s.out)


def _reorg(s: Step):
    idx = reorg_index(s.C, s.H, s.W, s.a["stride"])
    s.keep.append(idx)
    return ("gather", dict(batch=s.B, out_elements=idx.size, in_elements=s.C * s.H * s.W), (),
            dict(x=s.x, index=idx, out=s.out))


def _linear(s: Step):
    d = s.prep.data[s.node["name"]]
    return ("linear", dict(batch=s.B, in_features=s.C * s.H * s.W, out_features=s.out.shape[-1],
                           activation=ACT[s.a["activation"]]), (), dict(x=s.x, weights=d["w"], bias=d["bias"], out=s.out))


def _act(s: Step):
    return "act", dict(elements=s.out.size, activation=ACT[s.a["activation"]], tasks=1), (), dict(x=s.x, out=s.out)


def _conv_step(s: Step):
    d = s.prep.data[s.node["name"]]
    if d["path"] == "grouped":
        (kh, kw), (pt, pl, _, _) = s.a["kernel"], s.a["pad"]
        _, ho, wo = s.prep.shapes[s.node["name"]]
        return ("conv_grouped", dict(s.image, out_height=ho, out_width=wo, out_channels=s.out.shape[-1], kernel_h=kh,
                                     kernel_w=kw, stride=s.a["stride"], pad_top=pt, pad_left=pl, groups=s.a["groups"],
                                     activation=ACT[s.a["activation"]]), (),
                dict(x=s.x, weights=d["w"], scale=d["scale"], bias=d["bias"], out=s.out))
    return _conv(s.prep, s.node, s.B, s.x, s.out, s.buf, s.keep)


# the packed op -> the C op it becomes (csrc/ops.c's table names the fields); every op of tritnet_rt.ops has a
# builder here or passes its input through
BUILDERS = {"conv": _conv_step, "maxpool": _maxpool, "avgpool": _avgpool, "concat": _concat, "slice": _slice,
            "scale_channels": _scale_channels, "shortcut": _shortcut, "add": _add,
            "upsample": _upsample, "reorg": _reorg, "linear": _linear, "act": _act}
assert set(BUILDERS) | set(PASS_THROUGH) == set(OPS), "an op of tritnet_rt.ops without a planner rule"


def padded_dims(prep, node):
    """(H + pads, W + pads, channels padded to 4, slack) of an int8 conv's padded 8-bit input. Slack: bytes after
    the last image that the AMX kernel's direct tiles may read (16 pixels' strides and a 64-byte chunk past the
    last segment, meeting zero weights or filling rows it does not store; kernels_amx.c)."""
    pt, pl, pb, pr = node["attrs"]["pad"]
    _, H, W = prep.shapes[node["inputs"][0]]
    cp = prep.data[node["name"]]["cp"]
    return H + pt + pb, W + pl + pr, cp, 64 + 16 * node["attrs"]["stride"] * cp


def padded_u8(prep, node, B):
    """The padded 8-bit input of an int8 conv, flat: B images of padded_dims, then the slack."""
    hp, wp, cp, slack = padded_dims(prep, node)
    return zeros64(B * hp * wp * cp + slack, np.uint8)


def _conv(prep, node, B, x, out, buf, keep, pool=False, q_in=None, out_quant=None):
    """``q_in``: the padded u8 input an earlier conv wrote (x unused); ``out_quant``: the reader conv whose padded
    u8 input ``out`` is, written quantized to its input_quant."""
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
    scr = _f32(B * N + 2 * B)
    fields = dict(batch=B, height=H, width=W, channels=C, height_padded=Hp, width_padded=Wp, pad_top=pt,
                  pad_left=pl, pixels=Ho * Wo, out_channels=N, activation=ACT[a["activation"]], residual=res[0],
                  residual_channels=res[1], residual_offset=res[2], residual_image=res[3], fixed_quant=0,
                  fixed_zp=0, pool=int(pool), out_width=Wo,
                  x_planar=int(prep.planar_input and node["inputs"][0] == "input"), x_quantized=int(q_in is not None),
                  quantized_out=0, out_zp=0, out_height_padded=0, out_width_padded=0, out_channels_padded=0,
                  out_pad_top=0, out_pad_left=0, ternary_input=int(d.get("path") == "t8t"),
                  weights_2bit=int(d.get("wbits") == 2), input_slack=0)
    bufs = dict(x=x if q_in is None else None, bias=d["bias"], prelu=d["prelu"], out=out, residual=rbuf,
                residual_pixels=rpix, scratch=scr)
    path, floats = d["path"], [0.0, 0.0]             # this conv's input scale, the reader's (out_quant)
    if out_quant is not None:
        qa = out_quant["attrs"]
        qh, qw, qc, _ = padded_dims(prep, out_quant)
        fields.update(quantized_out=1, out_zp=qa["input_quant"]["zero_point"], out_height_padded=qh,
                      out_width_padded=qw, out_channels_padded=qc, out_pad_top=qa["pad"][0],
                      out_pad_left=qa["pad"][1])
        floats[1] = float(qa["input_quant"]["scale"])
    if path in ("t8", "t8t"):
        cp = d["cp"]
        if "input_quant" in a:                        # calibrated at export: no min/max pass over the input
            fields.update(fixed_quant=1, fixed_zp=a["input_quant"]["zero_point"])
            floats[0] = float(a["input_quant"]["scale"])
        q = padded_u8(prep, node, B) if q_in is None else q_in
        pix, seg = (pixel * cp).astype(np.int32), (row * cp).astype(np.int32)
        fields.update(channels_padded=cp, segments=kh, segment_len=kw * cp, kwords=0, blocks=_ceil(N, 16),
                      input_slack=padded_dims(prep, node)[3])
        bufs.update(weights=d["w"], weight_sums=d["wsum"], scale=d["scale"])
        if path == "t8t":          # tiled over a row's pixels: one flat pass a row (csrc/ops.c, tquant_task)
            bufs.update(act_a=np.tile(d["act_a"], W), act_b=np.tile(d["act_b"], W))
            keep.extend([bufs["act_a"], bufs["act_b"]])
    elif path == "tt":
        q = np.zeros((B, Hp, Wp, 2 * (C // 8)), np.uint8)
        pix, seg = pixel.astype(np.int32), tap.astype(np.int32)
        fields.update(channels_padded=0, segments=kh * kw, segment_len=0, kwords=d["kw"], blocks=_ceil(N, 8))
        bufs.update(weights=d["w"], weight_sums=np.zeros(N, np.int32), scale=d["scale"],
                    bits=np.zeros((B, Ho * Wo, 2, d["kw"]), np.uint64), act_a=d["act_a"], act_b=d["act_b"])
    else:
        q = np.zeros((B, Hp, Wp, C), np.float32)
        pix, seg = (pixel * C).astype(np.int32), (row * C).astype(np.int32)
        fields.update(channels_padded=C, segments=kh, segment_len=kw * C, kwords=0, blocks=0)
        bufs.update(weights=d["w"])
    bufs.update(q=q, pixel_table=pix, segment_table=seg)
    keep.extend([q, pix, seg, scr] + ([bufs["bits"]] if path == "tt" else []))
    return "conv_" + ("t8" if path == "t8t" else path), fields, tuple(floats), bufs
