"""A detector as one ONNX file: the packed graph, darknet's box decoding of its region/yolo heads, and ONNX's own
``NonMaxSuppression``, so ONNX Runtime or OpenVINO run it as a detector without tritnet.

Outputs (``N`` candidate boxes over every head, ``C`` classes):

    boxes     [batch, N, 4]   x1, y1, x2, y2 in pixels of the network input (undo the letterbox to map them to
                              the image: ``tritnet_rt.detect.letterbox_size`` gives the scaled size)
    scores    [batch, N, C]   darknet's probability: objectness x class probability
    selected  [K, 3]          (batch index, class index, box index) of every detection that survives: score above
                              ``thresh`` and per-class NMS at ``iou`` (darknet's ``do_nms_sort``: a box is
                              dropped when its IoU with a better one of its class is above ``iou``)

That is the detections of pjreddie's ``detector test`` at the same thresholds (the IoU is the same in the image's
coordinates: the letterbox correction scales each axis, which leaves IoU unchanged). Region heads (yolov2) and
yolo heads (v3/v4, with AlexeyAB's ``scale_x_y``) are decoded; ``new_coords`` heads are refused.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
from tritnet_rt.format import graph_shapes

__all__ = ["DetectorModule"]


class _NonMaxSuppression(torch.autograd.Function):
    """Per-class NMS: in ONNX the NonMaxSuppression operator (center_point_box=0, corners); in PyTorch the
    same rule in numpy (so the module also runs, and the trace has an output of the right kind)."""

    @staticmethod
    def forward(ctx, boxes, scores, iou, thresh):
        # numpy, outside the tracer: only the symbolic's one node goes into the ONNX graph
        bx, sc = boxes.detach().cpu().numpy(), scores.detach().cpu().numpy()
        out = []
        for b in range(bx.shape[0]):
            x1, y1, x2, y2 = bx[b].T
            area = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
            for c in range(sc.shape[1]):
                s = sc[b, c]
                order = [i for i in np.argsort(-s, kind="stable") if s[i] > thresh]
                kept = []
                for i in order:
                    if kept:
                        k = np.array(kept)
                        w = np.clip(np.minimum(x2[i], x2[k]) - np.maximum(x1[i], x1[k]), 0, None)
                        h = np.clip(np.minimum(y2[i], y2[k]) - np.maximum(y1[i], y1[k]), 0, None)
                        inter = w * h
                        union = area[i] + area[k] - inter
                        if np.any((union > 0) & (inter > iou * union)):
                            continue
                    kept.append(i)
                out += [[b, c, int(i)] for i in kept]
        return torch.tensor(out, dtype=torch.int64).reshape(-1, 3)

    @staticmethod
    def symbolic(g, boxes, scores, iou, thresh):
        return g.op("NonMaxSuppression", boxes, scores,
                    g.op("Constant", value_t=torch.tensor([1 << 30], dtype=torch.int64)),
                    g.op("Constant", value_t=torch.tensor([iou], dtype=torch.float32)),
                    g.op("Constant", value_t=torch.tensor([thresh], dtype=torch.float32)), center_point_box_i=0)


def _head(node, shape, raw: torch.Tensor, net_w: int, net_h: int):
    """(boxes [B, n·H·W, 4] in input pixels, x1 y1 x2 y2; scores [B, n·H·W, C]) of one region/yolo head. Every
    size is a Python int from the packed graph (a ``.shape`` would become a Shape subgraph in ONNX)."""
    a = node["attrs"]
    _, h, w = shape
    n = a["num"] if node["op"] == "region" else len(a["mask"])
    classes = a["classes"]
    y = raw.reshape(-1, n, 5 + classes, h, w)
    col = torch.tensor([float(i) for i in range(w)]).view(1, 1, 1, w)
    row = torch.tensor([float(j) for j in range(h)]).view(1, 1, h, 1)
    anchors = a["anchors"]
    if node["op"] == "region":
        if a.get("background"):
            raise ValueError("region heads with background=1 have no objectness; not exported with NMS")
        aw = torch.tensor(anchors[0::2][:n], dtype=torch.float32).view(1, n, 1, 1)
        ah = torch.tensor(anchors[1::2][:n], dtype=torch.float32).view(1, n, 1, 1)
        cx = (col + torch.sigmoid(y[:, :, 0])) / w
        cy = (row + torch.sigmoid(y[:, :, 1])) / h
        bw = torch.exp(y[:, :, 2]) * aw / w
        bh = torch.exp(y[:, :, 3]) * ah / h
        cls = torch.softmax(y[:, :, 5:], 2) if a.get("softmax") else torch.sigmoid(y[:, :, 5:])
    else:
        if a.get("new_coords"):
            raise ValueError("yolo heads with new_coords are not exported with NMS")
        mask = a["mask"]
        aw = torch.tensor([anchors[2 * m] for m in mask], dtype=torch.float32).view(1, n, 1, 1)
        ah = torch.tensor([anchors[2 * m + 1] for m in mask], dtype=torch.float32).view(1, n, 1, 1)
        s = float(a.get("scale_x_y", 1.0))
        sx = torch.sigmoid(y[:, :, 0]) * s - 0.5 * (s - 1)
        sy = torch.sigmoid(y[:, :, 1]) * s - 0.5 * (s - 1)
        cx, cy = (col + sx) / w, (row + sy) / h
        bw = torch.exp(y[:, :, 2]) * aw / net_w
        bh = torch.exp(y[:, :, 3]) * ah / net_h
        cls = torch.sigmoid(y[:, :, 5:])
    obj = torch.sigmoid(y[:, :, 4])
    boxes = torch.stack([(cx - bw / 2) * net_w, (cy - bh / 2) * net_h, (cx + bw / 2) * net_w,
                         (cy + bh / 2) * net_h], -1)                         # [B, n, H, W, 4]
    scores = (obj.unsqueeze(2) * cls).permute(0, 1, 3, 4, 2)                 # [B, n, H, W, C]
    return boxes.reshape(-1, n * h * w, 4), scores.reshape(-1, n * h * w, classes)


class DetectorModule(nn.Module):
    """The packed graph's PyTorch module with its heads decoded and NMS applied (see the module docstring)."""

    def __init__(self, graph: nn.Module, pm, thresh: float = 0.24, iou: float = 0.45):
        super().__init__()
        self.graph = graph
        nodes = {n["name"]: n for n in pm.graph["nodes"]}
        self.heads = [nodes[o] for o in pm.graph["outputs"]]
        if not self.heads or any(h["op"] not in ("region", "yolo") for h in self.heads):
            raise ValueError("--onnx-nms needs a detector (region or yolo outputs)")
        if len({h["attrs"]["classes"] for h in self.heads}) != 1:
            raise ValueError("the heads disagree on the number of classes")
        _, self.net_h, self.net_w = pm.model["input"]["shape"]
        shapes = graph_shapes(pm, "<onnx>")
        self.shapes = [shapes[h["inputs"][0]] for h in self.heads]
        self.classes = self.heads[0]["attrs"]["classes"]
        self.candidates = sum((h["attrs"]["num"] if h["op"] == "region" else len(h["attrs"]["mask"])) * sh * sw
                              for h, (_, sh, sw) in zip(self.heads, self.shapes))
        self.thresh, self.iou = float(thresh), float(iou)

    def forward(self, x):
        outs = self.graph(x)
        outs = outs if isinstance(outs, tuple) else (outs,)
        parts = [_head(node, shape, raw, self.net_w, self.net_h)
                 for node, shape, raw in zip(self.heads, self.shapes, outs)]
        boxes = torch.cat([p[0] for p in parts], 1)
        scores = torch.cat([p[1] for p in parts], 1)
        selected = _NonMaxSuppression.apply(boxes, scores.transpose(1, 2), self.iou, self.thresh)
        return boxes, scores, selected
