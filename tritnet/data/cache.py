"""Decode a whole ImageList once into a uint8 (N, H, W, 3) array, optionally kept on disk.

Decoding the 50,000 CIFAR training JPEGs takes seconds even on the fast path; an epoch
of training on the decoded array takes no decode time at all. The .npy cache makes the
second run skip decoding too: it is keyed by ImageList.cache_key(), so a changed file
list, label set, size or source file gets a new cache instead of stale pixels.
"""
from __future__ import annotations

import mmap
import os
import uuid
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path

import numpy as np

from .datasets import ArrayDataset, ImageList
from .errors import DataError

_CHUNK = 1000
# What forked decode workers inherit: the dataset and the shared output array.
_shared: tuple[ImageList, np.ndarray] | None = None


def _decode_into(ds: ImageList, out: np.ndarray, start: int, stop: int) -> None:
    for i in range(start, stop):
        img = ds.load(i)
        if img.shape != out.shape[1:]:
            raise DataError(ds.where(ds.refs[i]), f"image is {img.shape[1]}x{img.shape[0]} but the "
                            f"first is {out.shape[2]}x{out.shape[1]}; pass size= to resize all")
        out[i] = img


def _decode_span(span: tuple[int, int]) -> None:
    _decode_into(*_shared, *span)


def default_workers() -> int:
    return os.cpu_count() or 1


def decode_all(ds: ImageList, workers: int | None = None) -> np.ndarray:
    """Every image of ds decoded into one uint8 (N, H, W, 3) array (all the same size).

    workers: processes for decoding (default: one per CPU); 0 or 1 decodes here.
    Workers are forked, so they read ds's in-memory bytes without copies and write
    straight into a shared anonymous mmap instead of pickling pixels back; where fork
    does not exist, decoding stays in this process.
    """
    global _shared
    n = len(ds)
    shape = (n,) + ds.load(0).shape
    workers = default_workers() if workers is None else workers
    spans = [(s, min(s + _CHUNK, n)) for s in range(0, n, _CHUNK)]
    if workers <= 1 or len(spans) == 1 or "fork" not in get_all_start_methods():
        out = np.empty(shape, np.uint8)
        _decode_into(ds, out, 0, n)
        return out
    out = np.frombuffer(mmap.mmap(-1, int(np.prod(shape))), np.uint8).reshape(shape)
    _shared = ds, out
    try:
        with get_context("fork").Pool(min(workers, len(spans))) as pool:
            pool.map(_decode_span, spans, chunksize=1)
    finally:
        _shared = None
    return out


def save_atomic(path, array: np.ndarray) -> None:
    """np.save to a temporary file beside `path`, then rename it into place: a reader
    (or a crash) never sees a half-written cache."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:  # plain open keeps the umask's permissions
            np.save(f, array)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def cache_path(ds: ImageList, cache_dir) -> Path:
    return Path(cache_dir) / f"{ds.name}-{len(ds)}-{ds.cache_key()}.npy"


def load_images(ds: ImageList, cache_dir=None, workers: int | None = None) -> np.ndarray:
    """decode_all(ds), reusing or writing `<cache_dir>/<ds.name>-<N>-<key>.npy` if cache_dir is given."""
    if cache_dir is None:
        return decode_all(ds, workers)
    path = cache_path(ds, cache_dir)
    if path.exists():
        try:
            images = np.load(path)
            if images.dtype == np.uint8 and images.ndim == 4 and len(images) == len(ds):
                return images
        except (OSError, ValueError, EOFError):
            pass  # unreadable cache (e.g. edited by hand): decode again and overwrite it
    images = decode_all(ds, workers)
    save_atomic(path, images)
    return images


def in_memory(ds: ImageList, cache_dir=None, workers: int | None = None) -> ArrayDataset:
    """ds decoded into an ArrayDataset with the same labels, classes and transform."""
    return ArrayDataset(load_images(ds, cache_dir, workers), ds.targets, ds.classes, ds.transform)
