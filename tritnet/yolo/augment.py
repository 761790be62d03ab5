"""Darknet's detection augmentation (``load_data_detection``, the crop-jitter version) and multi-scale sizes.

For one training image of size ow×oh, with ``jitter`` from the last [region]/[yolo] layer:

1. each side moves by an integer drawn from ±jitter·(side length) (``pleft, pright, ptop, pbot``); the
   image is cropped to that window, which may reach outside it (edge pixels repeat);
2. the crop is resized (bilinear, darknet's corner-aligned sampling) to the network size;
3. it is flipped left-right with probability ½ when ``flip=1`` in [net];
4. hue, saturation and exposure are distorted in HSV: hue += U(−hue, hue) (wrapping), saturation and
   value are scaled by s or 1/s (s ~ U(1, saturation), each side with probability ½), then clipped;
5. the boxes are moved with the crop (``correct_boxes``), clipped to [0, 1], shuffled, and boxes narrower
   or lower than 0.001 dropped; at most ``max_boxes`` are kept.

Evaluation uses darknet's letterbox instead (``tritnet_rt.detect.letterbox``).
"""
from __future__ import annotations

import numpy as np

__all__ = ["crop_resize", "distort_hsv", "rgb_to_hsv", "hsv_to_rgb", "correct_truth", "augment_detection",
           "train_size"]

_F = np.float32


def _axis(n_out: int, start: int, span: int, n_in: int):
    """Source indices (low, high) and weights for ``n_out`` samples of ``span`` pixels starting at ``start``."""
    scale = (span - 1) / (n_out - 1) if n_out > 1 else 0.0
    s = np.arange(n_out, dtype=np.float64) * scale
    lo = np.floor(s).astype(np.int64)
    frac = (s - lo).astype(_F)
    lo = lo + start
    return np.clip(lo, 0, n_in - 1), np.clip(lo + 1, 0, n_in - 1), frac


def crop_resize(image: np.ndarray, left: int, top: int, width: int, height: int, out_w: int, out_h: int) -> np.ndarray:
    """The window (left, top, width, height) of an HWC uint8 image, resized to (3, out_h, out_w) float32 in
    [0, 1]; pixels outside the image repeat the edge (crop and resize in one bilinear pass)."""
    ih, iw = image.shape[:2]
    y0, y1, fy = _axis(out_h, top, height, ih)
    x0, x1, fx = _axis(out_w, left, width, iw)
    img = image.astype(_F) if image.dtype != np.uint8 else image
    rows = img[y0].astype(_F) * (1 - fy)[:, None, None] + img[y1].astype(_F) * fy[:, None, None]   # (oh, iw, 3)
    out = rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]                  # (oh, ow, 3)
    scale = _F(1 / 255.0) if image.dtype == np.uint8 else _F(1)
    return np.ascontiguousarray(out.transpose(2, 0, 1)) * scale


def rgb_to_hsv(x: np.ndarray) -> np.ndarray:
    """Darknet's ``rgb_to_hsv`` on a (3, H, W) float image; h in [0, 1) (grey pixels get h = 0)."""
    r, g, b = x
    mx, mn = x.max(0), x.min(0)
    delta = mx - mn
    safe = np.where(delta > 0, delta, 1)
    h = np.where(r == mx, (g - b) / safe, np.where(g == mx, 2 + (b - r) / safe, 4 + (r - g) / safe))
    h = np.where(delta > 0, h, 0)
    h = np.where(h < 0, h + 6, h) / 6
    s = np.where(mx > 0, delta / np.where(mx > 0, mx, 1), 0)
    return np.stack([h, s, mx]).astype(_F)


def hsv_to_rgb(x: np.ndarray) -> np.ndarray:
    """Darknet's ``hsv_to_rgb`` (the six sectors of h·6)."""
    h, s, v = x[0] * 6, x[1], x[2]
    i = np.floor(h)
    f = h - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.astype(np.int64)
    r = np.select([i == 0, i == 1, i == 2, i == 3, i == 4], [v, q, p, p, t], v)
    g = np.select([i == 0, i == 1, i == 2, i == 3, i == 4], [t, v, v, q, p], p)
    b = np.select([i == 0, i == 1, i == 2, i == 3, i == 4], [p, p, t, v, v], q)
    grey = s == 0
    return np.stack([np.where(grey, v, r), np.where(grey, v, g), np.where(grey, v, b)]).astype(_F)


def _rand_scale(rng, s: float) -> float:
    """darknet's ``rand_scale``: U(1, s), inverted with probability ½."""
    scale = rng.uniform(1, s) if s >= 1 else rng.uniform(s, 1)
    return scale if rng.integers(2) else 1.0 / scale


def distort_hsv(x: np.ndarray, dhue: float, dsat: float, dexp: float) -> np.ndarray:
    """Darknet's ``distort_image``: shift hue (wrapping), scale saturation and value, back to RGB, clip."""
    if dhue == 0 and dsat == 1 and dexp == 1:
        return x
    hsv = rgb_to_hsv(x)
    hsv[1] *= _F(dsat)
    hsv[2] *= _F(dexp)
    h = hsv[0] + _F(dhue)
    hsv[0] = np.where(h > 1, h - 1, np.where(h < 0, h + 1, h))
    return np.clip(hsv_to_rgb(hsv), 0, 1)


def correct_truth(boxes: np.ndarray, dx: float, dy: float, sx: float, sy: float, flip: bool) -> np.ndarray:
    """Darknet's ``correct_boxes``: boxes (k, 4) cx, cy, w, h → the crop's coordinates, clipped to [0, 1]."""
    b = np.asarray(boxes, np.float64)
    left, right = (b[:, 0] - b[:, 2] / 2) * sx - dx, (b[:, 0] + b[:, 2] / 2) * sx - dx
    top, bottom = (b[:, 1] - b[:, 3] / 2) * sy - dy, (b[:, 1] + b[:, 3] / 2) * sy - dy
    if flip:
        left, right = 1 - right, 1 - left
    left, right, top, bottom = (np.clip(v, 0, 1) for v in (left, right, top, bottom))
    out = np.stack([(left + right) / 2, (top + bottom) / 2, right - left, bottom - top], 1)
    return out.astype(_F)


def augment_detection(image: np.ndarray, boxes: np.ndarray, classes: np.ndarray, out_w: int, out_h: int, rng, *,
                      jitter: float, hue: float, saturation: float, exposure: float, flip: bool = True,
                      max_boxes: int = 90):
    """One training sample as darknet makes it: ((3, out_h, out_w) float32, truth (max_boxes, 5) float32
    rows x, y, w, h, class; unused rows are 0, where darknet's loops stop)."""
    oh, ow = image.shape[:2]
    dw, dh = int(ow * jitter), int(oh * jitter)
    pleft, pright = int(rng.uniform(-dw, dw)), int(rng.uniform(-dw, dw))      # C's float→int truncation
    ptop, pbot = int(rng.uniform(-dh, dh)), int(rng.uniform(-dh, dh))
    swidth, sheight = ow - pleft - pright, oh - ptop - pbot
    sx, sy = swidth / ow, sheight / oh
    flipped = bool(flip) and bool(rng.integers(2))
    x = crop_resize(image, pleft, ptop, swidth, sheight, out_w, out_h)
    if flipped:
        x = np.ascontiguousarray(x[:, :, ::-1])
    x = distort_hsv(x, rng.uniform(-hue, hue), _rand_scale(rng, saturation), _rand_scale(rng, exposure))
    order = rng.permutation(len(classes))                      # darknet's randomize_boxes
    b = correct_truth(np.asarray(boxes)[order].reshape(-1, 4), (pleft / ow) / sx, (ptop / oh) / sy, 1 / sx, 1 / sy,
                      flipped)
    c = np.asarray(classes)[order][:max_boxes]
    b = b[:max_boxes]
    keep = (b[:, 2] >= 0.001) & (b[:, 3] >= 0.001)
    truth = np.zeros((max_boxes, 5), _F)
    k = int(keep.sum())
    truth[:k, :4], truth[:k, 4] = b[keep], c[keep]
    return x, truth


def train_size(mode: str, net_w: int, net_h: int, stride: int, rng, iteration: int, max_batches: int):
    """Network input (w, h) for a block of 10 iterations under multi-scale training.

    * ``darknet`` (pjreddie's detector.c): a square (rand%10 + 10)·32, i.e. 320…608, and 608 in the last
      200 iterations;
    * ``sdl`` (darknet_sdl, for ttt5; methods.md §1.11): ih = (rand % (net_h/stride))/2 + 3 grid rows and
      iw = ih + 2 columns, so 160x96, 192x128 or 224x160 for ttt5_224_160;
    * ``off``: the cfg's size.
    """
    if mode == "off":
        return net_w, net_h
    if mode == "darknet":
        dim = 608 if iteration + 200 > max_batches else (int(rng.integers(1 << 31)) % 10 + 10) * 32
        return dim, dim
    if mode == "sdl":
        ih = (int(rng.integers(1 << 31)) % max(net_h // stride, 1)) // 2 + 3
        return (ih + 2) * stride, ih * stride
    raise ValueError(f"unknown multi-scale mode {mode!r}; choose darknet, sdl or off")
