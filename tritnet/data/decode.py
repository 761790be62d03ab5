"""Bytes -> uint8 RGB array (H, W, 3), with every Pillow failure turned into a DataError."""
from __future__ import annotations

import io
import struct
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError
from tritnet_rt.detect.image import IMAGE_LIMIT, rgb_from_pil, too_many_pixels
from tritnet_rt.files import FileError, read_bytes
from tritnet_rt.sources import IMAGE_SUFFIXES

from .errors import DataError

# Start-of-frame markers libjpeg decodes: baseline, extended sequential, progressive.
_SOF_MARKERS = (0xC0, 0xC1, 0xC2)


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def jpeg_header(data: bytes) -> tuple[int, int, int] | None:
    """(height, width, components) read from a JPEG's SOF marker, or None if not found."""
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 10 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
        elif marker in _SOF_MARKERS:
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return (h, w, data[i + 9]) if h and w else None
        elif marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length field
            i += 2
        elif marker == 0xD9:  # end of image before any frame
            return None
        else:
            i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
    return None


def _as_hw(size) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _check_pixels(width: int, height: int, where: str) -> None:
    reason = too_many_pixels(width, height)
    if reason:
        raise DataError(where, reason)


def decode_image(data: bytes, where: str = "<bytes>", size=None) -> np.ndarray:
    """Decode image bytes to a uint8 RGB array (H, W, 3).

    size: None to keep the stored size, an int for square, or (height, width); resized
    bilinearly with Pillow. where: the file name used in error messages.
    """
    want = None if size is None else _as_hw(size)
    if not data:
        raise DataError(where, "cannot decode image (the file is empty)")
    try:
        header = jpeg_header(data)
        if header:
            _check_pixels(header[1], header[0], where)     # before libjpeg allocates it
        if header and header[2] == 3 and want in (None, header[:2]):
            # Image.open spends ~90 us probing formats and parsing headers in Python, more
            # than the decode itself for a 32x32 CIFAR image; asking the JPEG decoder
            # directly gives the identical pixels in half the time.
            h, w, _ = header
            return np.asarray(Image.frombytes("RGB", (w, h), data, "jpeg", "RGB", ""))
        with warnings.catch_warnings():         # Pillow's bomb warning: _check_pixels refuses it in one line
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data))
        with opened as im:
            _check_pixels(*im.size, where)
            if want is not None:
                # For big JPEGs, let libjpeg decode at 1/2..1/8 scale (never below want).
                im.draft("RGB", (want[1], want[0]))
            rgb = rgb_from_pil(im, where)              # 16-bit grayscale: its top 8 bits, not clipped
            if want is not None and rgb.shape[:2] != want:
                rgb = np.asarray(Image.fromarray(rgb).resize((want[1], want[0]), Image.BILINEAR))
            return rgb
    except DataError:
        raise
    except UnidentifiedImageError:  # its message names a BytesIO object, not the file
        raise DataError(where, "cannot decode image (not in an image format Pillow reads)") from None
    except Exception as e:  # Pillow raises OSError, ValueError, SyntaxError, bomb errors...
        raise DataError(where, f"cannot decode image ({type(e).__name__}: {e})") from e


def read_image(path, size=None) -> np.ndarray:
    """Read and decode one image file (see decode_image)."""
    try:
        data = read_bytes(path, "image", IMAGE_LIMIT)
    except FileError as e:
        raise DataError(path, e.reason) from None
    return decode_image(data, str(path), size)
