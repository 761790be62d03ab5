"""The two Dataset shapes every loader produces, both returning (image, label):

- ImageList: compressed images decoded on demand (folder, tarball, darknet list);
- ArrayDataset: images already decoded into one uint8 (N, H, W, 3) array.

With transform=None an item is the raw uint8 HWC array, which is what the batched
augmentation (transforms.BatchTransform) wants; the default gives a float CHW tensor.
"""
from __future__ import annotations

import hashlib
from typing import Callable, Sequence

import numpy as np
from torch.utils.data import Dataset

from .decode import decode_image
from .errors import DataError
from .transforms import to_tensor


def take_per_class(targets: Sequence[int], per_class: int | None) -> list[int]:
    """Indices of the first `per_class` samples of each class, in their original order."""
    if per_class is None:
        return list(range(len(targets)))
    if per_class < 1:
        raise ValueError(f"per_class must be a positive int, got {per_class}")
    seen: dict[int, int] = {}
    keep = []
    for i, t in enumerate(targets):
        if seen.get(t, 0) < per_class:
            seen[t] = seen.get(t, 0) + 1
            keep.append(i)
    return keep


class ImageList(Dataset):
    """Images read by name through `read(name) -> bytes` and decoded per access.

    refs: one name per sample; where(ref) names it in errors (a path, or
    'archive.tar.gz:train/cat/0001.jpg'). origin names the whole set (tarball, list
    file) in errors; name is its short form for cache file names. origin and `stamp`
    (anything that changes when the files do) key the decoded-image cache.
    size: resize every image to (height, width) or int.
    """

    def __init__(self, refs: list[str], targets: list[int], classes: list[str], *,
                 read: Callable[[str], bytes], where: Callable[[str], str], origin: str,
                 name: str = "images", stamp: Callable[[], object] = lambda: None, size=None,
                 transform: Callable | None = to_tensor):
        if not refs:
            raise DataError(origin, "empty dataset: no images found")
        self.refs, self.targets, self.classes = refs, list(targets), list(classes)
        self.read, self.where, self.origin, self.name, self.stamp = read, where, origin, name, stamp
        self.size, self.transform = size, transform

    def __len__(self):
        return len(self.refs)

    def load(self, i: int) -> np.ndarray:
        """Image i as a uint8 (H, W, 3) array."""
        ref = self.refs[i]
        try:
            data = self.read(ref)
        except (OSError, KeyError) as e:
            raise DataError(self.where(ref), f"cannot read image ({e})") from e
        return decode_image(data, self.where(ref), self.size)

    def __getitem__(self, i):
        img = self.load(i)
        return (self.transform(img) if self.transform else img), self.targets[i]

    def cache_key(self) -> str:
        """Changes whenever the list, labels, size or the files' stamp change."""
        h = hashlib.sha1(repr((self.origin, self.size, self.classes, self.stamp())).encode())
        for ref, t in zip(self.refs, self.targets):
            h.update(f"{ref}\0{t}\n".encode())
        return h.hexdigest()[:16]


class ArrayDataset(Dataset):
    """Decoded images in memory: images uint8 (N, H, W, 3), targets (N,) ints."""

    def __init__(self, images: np.ndarray, targets, classes: list[str] | None = None,
                 transform: Callable | None = to_tensor):
        images, targets = np.asarray(images), np.asarray(targets, dtype=np.int64)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
        if len(images) != len(targets):
            raise ValueError(f"{len(images)} images but {len(targets)} targets")
        self.images, self.targets, self.transform = images, targets, transform
        if classes is None:
            classes = [str(c) for c in range(int(targets.max(initial=-1)) + 1)]
        self.classes = list(classes)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        img = self.images[i]
        return (self.transform(img) if self.transform else img), int(self.targets[i])

    def subset(self, indices) -> "ArrayDataset":
        return ArrayDataset(self.images[indices], self.targets[indices], self.classes, self.transform)
