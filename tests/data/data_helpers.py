"""Small image and file builders shared by the tests/data tests."""
import io

import numpy as np
from PIL import Image

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                 "dog", "frog", "horse", "ship", "truck"]  # the official CIFAR-10 label order


def jpeg_bytes(array: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "JPEG", **kw)
    return buf.getvalue()


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def random_image(seed: int, h: int = 8, w: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def write_image_tree(root, layout: dict, size=(8, 8), fmt="png") -> dict:
    """layout {'train/cat': 3, ...} -> files root/train/cat/000.png...; returns {relpath: pixels}."""
    pixels = {}
    for i, (folder, count) in enumerate(sorted(layout.items())):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for j in range(count):
            img = random_image(100 * i + j, *size)
            rel = f"{folder}/{j:03d}.{fmt}"
            (root / rel).write_bytes(png_bytes(img) if fmt == "png" else jpeg_bytes(img))
            pixels[rel] = img
    return pixels
