"""``Net``: a packed model ready to run. ``forward`` takes NCHW float32 images and returns the graph
outputs (NCHW, heads raw); ``classify`` and ``detect`` add the pre- and post-processing of one image."""
from __future__ import annotations

import threading

import numpy as np

from .native import ext as _ext
from .format import LazyCodes, PackedModel, load_packed
from .heads import HEADS_OPS, detect as _detect_heads
from .plan import Prepared, build


class Net:
    def __init__(self, pm: PackedModel, activations: str = "int8", *, ternary_inputs: str = "auto",
                 weight_bits="auto", _owned: bool = False):
        """``activations``: ``int8`` (ternary convs on 8-bit activations, the fast path) or ``float`` (float
        activations everywhere: darknet's float results, through the plain float kernel, which is many times
        slower: a check, not the deployment path). ``ternary_inputs``: STTN's ternary activations as bit planes
        (``bits``, popcount) or as 8-bit codes in the int8 GEMM (``int8``); ``auto``: the faster one on this
        CPU (plan.py). Both give the same bits. ``weight_bits``: the int8 path's weights kept in memory as int8
        (8) or at 2 bits (2, expanded by the kernel as it runs); ``auto``: 2 for the layers of K >= 256 where this
        CPU's kernel reads them (AMX, AVX-512), a quarter of the memory. The same results either way."""
        self.pm = pm
        self.model = pm.model
        self.activations = activations
        self.prep = Prepared(pm, activations, release_codes=_owned, ternary_inputs=ternary_inputs,
                             weight_bits=weight_bits)
        for name, t in pm.tensors.items():       # the codes no conv layout took (Net.load's lazy ones), decoded
            if isinstance(t, LazyCodes):
                pm.tensors[name] = np.asarray(t)
        self.outputs = list(pm.graph["outputs"])
        # bytes of the convs' prepared weights, as the kernels read them (int8, 2-bit, bit planes, floats)
        self.weight_bytes = sum(d["w"].nbytes for d in self.prep.data.values() if isinstance(d.get("w"), np.ndarray))
        self._nodes = {n["name"]: n for n in pm.graph["nodes"]}
        self._largest_activation = max(4 * c * h * w for c, h, w in self.prep.shapes.values())
        self._plans = {}
        self._lock = threading.Lock()      # a plan's buffers hold one call's input and outputs at a time

    @classmethod
    def load(cls, path, **kw) -> "Net":
        """The packed file at ``path``, prepared. The net owns what it read, so each conv's decoded codes are
        dropped once its packed layout is made (``self.pm.tensors`` keeps the rest; ``load_packed`` gives all),
        and the peak memory holds one copy of the weights; the codes are decoded 16 rows at a time as the
        weights are laid out (``LazyCodes``)."""
        return cls(load_packed(path, lazy=True), _owned=True, **kw)

    @property
    def input_shape(self):
        return tuple(self.prep.shapes["input"])

    def _plan(self, batch, slot=0):
        """The plan for ``batch`` images; ``slot``: one of several plans of that batch with their own buffers
        (one a thread when a batch is split between threads)."""
        if (batch, slot) not in self._plans:
            ops, buf, keep = build(self.prep, batch)
            self._plans[batch, slot] = (_ext().Plan(ops, input=buf["input"]), buf, keep)
        return self._plans[batch, slot]

    def _input(self, buf, part):
        """What a plan's run takes for these images: the caller's array itself where the ops can read it in
        place, else None after copying it into the plan's input buffer."""
        if self.prep.planar_input and part.flags.c_contiguous and part.flags.writeable:
            return part
        buf["input"][...] = part if self.prep.planar_input else part.transpose(0, 2, 3, 1)
        return None

    def forward(self, x: np.ndarray) -> list:
        """The outputs (N, C, H, W) for images x (N, C, H, W) or one image (C, H, W). With several threads and
        at least as many images, the batch is split into one contiguous share a thread, and each thread runs its
        share through the whole network alone (``_ext().run_together``): no barrier between layers, and each
        core keeps its own images' activations (ResNet-20 at batch 8 ran slower on two threads than on one
        with the threads sharing every layer). Only for networks whose weights fit SPLIT_MAX_WEIGHT_BYTES: every
        thread then reads all of them, where sharing a layer splits them (yolov2-tiny-voc's 4 MB ran 10% slower
        split on AMX). The same bits either way."""
        x = np.asarray(x, np.float32)
        if x.ndim == 3:
            x = x[None]
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"input of shape {tuple(x.shape[1:])}; the model takes {self.input_shape} (C, H, W)")
        shares = self.shares(x.shape[0])
        if len(shares) == 1 and self.micro_batch(x.shape[0]) == x.shape[0]:
            with self._lock:             # one plan over the whole batch: a small network's call is tens of us
                plan, buf, _ = self._plan(x.shape[0])
                plan.run(self._input(buf, x))
                return [buf[o].transpose(0, 3, 1, 2).copy() for o in self.outputs]
        queues = []                                   # per share: its micro-batches
        for _, first, size in shares:
            step = self.micro_batch(size)
            queues.append([x[i:min(i + step, first + size)] for i in range(first, first + size, step)])
        outs = [[] for _ in queues]
        with self._lock:
            for r in range(max(len(q) for q in queues)):
                runs = []
                for t, q in enumerate(queues):
                    if r < len(q):
                        plan, buf, _ = self._plan(len(q[r]), t)
                        runs.append((t, plan, buf, self._input(buf, q[r])))
                if len(runs) == 1:
                    runs[0][1].run(runs[0][3])
                else:
                    _ext().run_together([(plan, part) for _, plan, _, part in runs])
                for t, _, buf, _ in runs:
                    outs[t].append([buf[o].transpose(0, 3, 1, 2).copy() for o in self.outputs])
        parts = [p for share in outs for p in share]
        return parts[0] if len(parts) == 1 else [np.concatenate(p) for p in zip(*parts)]

    def shares(self, n: int, threads: int | None = None) -> list:
        """(slot, first image, images) of each thread's share of a batch of n on ``threads`` (by default the
        runtime's): one a thread where the batch is split between threads (forward), else one."""
        threads = _ext().get_threads() if threads is None else threads
        if 1 < threads <= n and self.weight_bytes <= self.SPLIT_MAX_WEIGHT_BYTES:
            return [(t, n * t // threads, n * (t + 1) // threads - n * t // threads) for t in range(threads)]
        return [(0, 0, n)]

    def micro_batch(self, batch: int) -> int:
        """Images run through the network together. Every op runs over the whole micro-batch before the
        next, so a batch whose activations outgrow the caches streams them through memory at every layer: the
        micro-batch keeps the largest activation under ``CACHE_BYTES`` (one image at a time for a 416x416
        detector, a whole batch of 32x32 images at once, where batching feeds the threads)."""
        return max(1, min(batch, self.CACHE_BYTES // self._largest_activation, self.MAX_MICRO_BATCH))

    CACHE_BYTES = 4 << 20
    MAX_MICRO_BATCH = 256          # per-image state (int8 scales, GEMM arguments) lives on the C stack
    SPLIT_MAX_WEIGHT_BYTES = 2 << 20

    __call__ = forward

    def memory_bytes(self, batch: int = 1) -> int:
        """Bytes held by the prepared weights and the buffers that running a batch of ``batch`` needs."""
        found = list(v for d in self.prep.data.values() for v in d.values() if isinstance(v, np.ndarray))
        for slot, _, images in self.shares(batch):
            step = self.micro_batch(images)
            for size in {step, images % step or step}:
                _, buf, keep = self._plan(size, slot)
                found += list(buf.values()) + keep
        arrays = {}
        for a in found:
            while a.base is not None and isinstance(a.base, np.ndarray):    # views of a shared block count once
                a = a.base
            arrays[id(a)] = a
        return sum(a.nbytes for a in arrays.values())

    # ------------------------------------------------------------------ one image
    def preprocess(self, image):
        """(x (1, C, H, W), image width, image height) for an image path or an HWC uint8 array."""
        from .detect import from_uint8, letterbox, load_image, resize_image
        inp = self.model["input"]
        c, h, w = inp["shape"]
        im = load_image(image) if not isinstance(image, np.ndarray) else from_uint8(image)
        if inp.get("preprocess") == "letterbox":
            return letterbox(im, w, h)[None], im.shape[2], im.shape[1]
        if inp.get("preprocess") == "resize":          # darknet's resize_image: stretched, values u8/255
            return resize_image(im, w, h)[None], im.shape[2], im.shape[1]
        if im.shape[1:] != (h, w):
            from PIL import Image
            u8 = (im.transpose(1, 2, 0) * 255).round().astype(np.uint8)
            im = np.asarray(Image.fromarray(u8).resize((w, h), Image.BILINEAR), np.float32).transpose(2, 0, 1) / 255
        mean = np.asarray(inp.get("mean") or [0] * c, np.float32)[:, None, None]
        std = np.asarray(inp.get("std") or [1] * c, np.float32)[:, None, None]
        return ((im - mean) / std)[None].astype(np.float32), im.shape[2], im.shape[1]

    def classify(self, image, top: int = 5) -> list:
        x, _, _ = self.preprocess(image)
        out = self.forward(x)[0].reshape(-1)
        node = self._nodes[self.outputs[0]]
        if node["op"] == "softmax":
            from .heads import activate
            out = activate(node, out.reshape(-1, 1, 1))
        e = np.exp(out - out.max())
        probs = e / e.sum() if node["op"] != "softmax" else out
        names = self.model.get("classes") or [str(i) for i in range(out.size)]
        order = np.argsort(-out, kind="stable")[:top]
        return [{"class": names[i] if i < len(names) else str(i), "index": int(i), "probability": float(probs[i])}
                for i in order]

    def detect(self, image, thresh: float = 0.24, nms: float = 0.45, names=None) -> list:
        heads = [self._nodes[o] for o in self.outputs if self._nodes[o]["op"] in HEADS_OPS]
        if not heads:
            raise ValueError("this model has no region/yolo head to detect with")
        x, im_w, im_h = self.preprocess(image)
        outs = self.forward(x)
        _, h, w = self.input_shape
        return _detect_heads(heads, [o[0] for o in outs], im_w, im_h, w, h, thresh, nms,
                             names or self.model.get("classes"), self.model.get("dialect", "pjreddie"),
                             self.model["input"].get("preprocess") == "letterbox")
