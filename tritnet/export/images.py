"""Real images like a packed model's inputs, preprocessed as tritnet_rt preprocesses one image: what the int8
scales are calibrated on (``tritnet export --calibration``) and what ``tritnet bench`` feeds every tool."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tritnet_rt.detect.image import IMAGE_LIMIT, rgb_from_bytes
from tritnet_rt.files import read_bytes
from tritnet_rt.sources import IMAGE_SUFFIXES


def default_images(pm, root=None) -> Path:
    """Real images of the kind the model takes, in the data root (``tritnet.paths``): CIFAR-10 JPEGs for a
    classifier, BCCD blood-cell photographs for a detector."""
    from tritnet.paths import data_root
    shared = data_root(root)
    if pm.model.get("task") == "detect":
        return shared / "bccd" / "JPEGImages"
    return shared / "cifar10" / "cifar10-jpeg.tar.gz"


def load_images(pm, source, n: int, minimum: int | None = None) -> np.ndarray:
    """(n, C, H, W) float32: ``n`` images spread evenly over ``source`` (a folder of images, searched
    recursively, or a tar(.gz) of them), each pre-processed as tritnet_rt pre-processes one image for this
    model (letterbox or resize and normalise); with ``minimum``, all of them when there are fewer than ``n`` but
    at least ``minimum``. An image that does not decode is an error naming it."""
    from tritnet_rt.net import Net
    source = Path(source)
    if source.is_dir():
        names = sorted(str(p) for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        read = lambda name: read_bytes(name, "image", IMAGE_LIMIT)  # noqa: E731
    elif source.is_file():
        from tritnet.data.tarball import read_tar
        files = read_tar(source, lambda name: name.lower().endswith(IMAGE_SUFFIXES))
        names, read = sorted(files), files.__getitem__
    else:
        raise FileNotFoundError(f"{source}: no such folder or archive of images (give real images like the "
                                "model's inputs)")
    if minimum is not None:
        n = max(minimum, min(n, len(names)))
    if len(names) < n:
        raise ValueError(f"{source}: {len(names)} images, {n} are needed")
    net = Net(pm)
    out = []
    for name in (names[i * len(names) // n] for i in range(n)):
        out.append(net.preprocess(rgb_from_bytes(read(name), name))[0])     # a ValueError naming a bad one
    return np.concatenate(out)
