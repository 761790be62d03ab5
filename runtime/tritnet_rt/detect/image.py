"""Images in, network input out, exactly as darknet's ``image.c`` (numpy only).

* :func:`load_image`: Pillow, RGB (grayscale becomes R=G=B), planar CHW float32 ``u8/255``. Darknet
  decodes JPEGs with stb_image, which differs from libjpeg (Pillow) by up to 3/255 on a few percent of
  the pixels; PNGs decode identically.
* :func:`letterbox`: ``letterbox_image``: keep the aspect ratio, ``resize_image``, embed centred in a
  canvas of 0.5. ``resize_image`` is bilinear with align-corners scale (W−1)/(w−1), separable (rows of
  the source first, then columns), float32 throughout; the last output column copies the last input
  column, and the last output row is (1−dy)·row[iy] alone. Every operation below is the same float32
  operation in the same order, so the result is bit for bit darknet's.
"""
from __future__ import annotations

import numpy as np

from ..files import FileError, MiB, read_bytes

__all__ = ["ImageError", "read_rgb", "rgb_from_bytes", "rgb_from_pil", "check_pixels", "too_many_pixels",
           "MAX_PIXELS", "load_image", "letterbox", "letterbox_size", "resize_image"]

_F = np.float32


class ImageError(ValueError):
    """An image refused for its size (more pixels than memory should hold, or one side that letterboxes to no
    pixel) rather than for its bytes; among many images it is skipped, as an unreadable one is. ``path`` (None
    where the caller names the image) and ``reason``, as :class:`FileError`."""

    def __init__(self, reason: str, path=None):
        self.path, self.reason = (None if path is None else str(path)), reason
        super().__init__(reason if path is None else f"{path}: {reason}")

    def __reduce__(self):
        return type(self), (self.reason, self.path)


IMAGE_LIMIT = 256 * MiB        # bytes of one image file
MAX_PIXELS = 50_000_000        # about 8,000 x 6,000: a camera's largest photo; the float copies of a bigger
                               # image take gigabytes (12 bytes a pixel each)


def too_many_pixels(width: int, height: int) -> str | None:
    """Why an image of this size is refused (more than MAX_PIXELS), or None."""
    if width * height > MAX_PIXELS:
        return f"{width}x{height} pixels, more than the {MAX_PIXELS:,} an image may have here; shrink it first"
    return None


def check_pixels(width: int, height: int, where) -> None:
    """An ImageError naming ``where`` when an image declares more than MAX_PIXELS (before it is decoded)."""
    reason = too_many_pixels(width, height)
    if reason:
        raise ImageError(reason, where)


def rgb_from_pil(im, where) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an opened Pillow image: grayscale becomes R=G=B, and 16-bit grayscale keeps its
    top 8 bits, as stb_image (darknet's decoder) converts it; Pillow's convert("RGB") would clip it to white."""
    check_pixels(*im.size, where)
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        gray = (np.asarray(im).astype(np.int64) >> 8).clip(0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    return np.asarray(im.convert("RGB"))


def rgb_from_bytes(data: bytes, where) -> np.ndarray:
    """The image in ``data`` as (H, W, 3) uint8 RGB (see :func:`rgb_from_pil`); any failure is a ValueError
    naming ``where``, in one line, with ``reason`` alone (a FileError, or an ImageError for its size)."""
    import io
    import warnings

    from PIL import Image, UnidentifiedImageError
    try:
        with warnings.catch_warnings():         # Pillow's bomb warning: check_pixels refuses it in one line
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
        with im:
            return rgb_from_pil(im, where)
    except UnidentifiedImageError:
        raise FileError(where, "not an image Pillow can read") from None
    except ImageError:
        raise
    except OSError as e:
        raise FileError(where, f"cannot read the image ({e.strerror or e})") from None
    except Exception as e:        # Pillow raises SyntaxError, DecompressionBombError, ...
        raise FileError(where, f"cannot read the image ({type(e).__name__}: {e})") from None


def read_rgb(path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB, as darknet's ``load_image_color`` and ``tritnet_rt`` read it
    (Pillow; grayscale becomes R=G=B). Any failure is a ValueError naming the file, in one line."""
    return rgb_from_bytes(read_bytes(path, "image", IMAGE_LIMIT), path)


def load_image(path) -> np.ndarray:
    """(3, H, W) float32 in [0, 1], RGB, like darknet's ``load_image_color(path, 0, 0)``."""
    return from_uint8(read_rgb(path))


def from_uint8(u8: np.ndarray) -> np.ndarray:
    """HWC uint8 RGB → CHW float32 ``u8/255`` (the same float as darknet's ``(float)u8/255.``)."""
    return (np.asarray(u8, np.uint8).transpose(2, 0, 1) / 255.0).astype(_F)


def letterbox_size(im_w: int, im_h: int, net_w: int, net_h: int) -> tuple[int, int]:
    """(new_w, new_h) of the resized image inside the canvas (also what ``correct_*_boxes`` undo); a
    ValueError for an image so thin that one side rounds to no pixel (darknet divides by that zero)."""
    if _F(net_w) / _F(im_w) < _F(net_h) / _F(im_h):
        new_w, new_h = net_w, (im_h * net_w) // im_w
    else:
        new_w, new_h = (im_w * net_h) // im_h, net_h
    if not (new_w and new_h):
        raise ImageError(f"a {im_w}x{im_h} image letterboxes to {new_w}x{new_h} pixels in a {net_w}x{net_h} "
                         "network: too thin to detect in")
    return new_w, new_h


def resize_image(im: np.ndarray, w: int, h: int) -> np.ndarray:
    """Darknet's ``resize_image`` of a (C, H, W) float32 image to (C, h, w)."""
    im = np.asarray(im, _F)
    c, ih, iw = im.shape
    part = np.empty((c, ih, w), _F)
    if iw == 1 or w == 1:
        part[:] = im[:, :, iw - 1:iw]
    else:
        w_scale = _F(iw - 1) / _F(w - 1)
        sx = np.arange(w - 1, dtype=_F) * w_scale
        ix = np.minimum(sx.astype(np.int64), iw - 2)
        dx = sx - ix.astype(_F)
        part[:, :, :w - 1] = (_F(1) - dx) * im[:, :, ix] + dx * im[:, :, ix + 1]
        part[:, :, w - 1] = im[:, :, iw - 1]
    out = np.empty((c, h, w), _F)
    h_scale = _F(ih - 1) / _F(h - 1) if h > 1 else _F(0)
    sy = np.arange(h, dtype=_F) * h_scale
    iy = np.minimum(sy.astype(np.int64), ih - 1)
    dy = (sy - iy.astype(_F))[:, None]
    out[:] = (_F(1) - dy) * part[:, iy, :]
    if ih > 1:
        rows = np.arange(h - 1)                              # the last row gets no second term
        nxt = np.minimum(iy[rows] + 1, ih - 1)
        out[:, rows, :] += dy[rows] * part[:, nxt, :]
    return out


def letterbox(im: np.ndarray, net_w: int, net_h: int) -> np.ndarray:
    """Darknet's ``letterbox_image``: (C, H, W) float32 → (C, net_h, net_w) float32."""
    c, ih, iw = im.shape
    new_w, new_h = letterbox_size(iw, ih, net_w, net_h)
    resized = resize_image(im, new_w, new_h)
    canvas = np.full((c, net_h, net_w), 0.5, _F)
    dx, dy = (net_w - new_w) // 2, (net_h - new_h) // 2
    canvas[:, dy:dy + new_h, dx:dx + new_w] = resized
    return canvas
