"""Decode a whole ImageList once into a uint8 (N, H, W, 3) array, optionally kept on disk.

Decoding the 50,000 CIFAR training JPEGs takes seconds even on the fast path; an epoch
of training on the decoded array takes no decode time at all. The .npy cache makes the
second run skip decoding too: it is keyed by ImageList.cache_key(), so a changed file
list, label set, size or source file gets a new cache instead of stale pixels.

An image that cannot be read or decoded (empty, truncated, not an image) does not stop a
training run: in_memory warns once naming it and leaves it out, as the detector loader does.
"""
from __future__ import annotations

import json
import mmap
import os
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path

import numpy as np

from ..atomic import atomic_open, write_text_atomic
from .datasets import ArrayDataset, ImageList
from .errors import DataError, Issues

_CHUNK = 1000
# What forked decode workers inherit: the dataset, the shared output array, whether to skip bad images.
_shared: tuple[ImageList, np.ndarray, bool] | None = None


def _decode_into(ds: ImageList, out: np.ndarray, start: int, stop: int, skip: bool = False) -> dict:
    """Decode images start..stop-1 into out. With skip, one that cannot be read or decoded keeps its
    zero row and comes back in {index: DataError} instead of being raised."""
    bad = {}
    for i in range(start, stop):
        try:
            img = ds.load(i)
        except DataError as e:
            if not skip:
                raise
            bad[i] = e
            continue
        if img.shape != out.shape[1:]:   # a data set problem, not one bad file: never skipped
            raise DataError(ds.where(ds.refs[i]), f"image is {img.shape[1]}x{img.shape[0]} but the "
                            f"first is {out.shape[2]}x{out.shape[1]}; pass size= to resize all")
        out[i] = img
    return bad


def _decode_span(span: tuple[int, int]) -> dict:
    ds, out, skip = _shared
    return _decode_into(ds, out, *span, skip)


def _first_shape(ds: ImageList, skip: bool) -> tuple:
    """The shape of the first image (with skip: of the first one that decodes), which all must share."""
    first_error = None
    for i in range(len(ds) if skip else 1):
        try:
            return ds.load(i).shape
        except DataError as e:
            if not skip:
                raise
            first_error = first_error or e
    raise DataError(ds.origin, f"no usable image: none of the {len(ds)} images can be read or decoded "
                               f"(the first: {first_error})")


def default_workers() -> int:
    return os.cpu_count() or 1


def decode_all(ds: ImageList, workers: int | None = None, bad: dict | None = None) -> np.ndarray:
    """Every image of ds decoded into one uint8 (N, H, W, 3) array (all the same size).

    workers: processes for decoding (default: one per CPU); 0 or 1 decodes here.
    Workers are forked, so they read ds's in-memory bytes without copies and write
    straight into a shared anonymous mmap instead of pickling pixels back; where fork
    does not exist, decoding stays in this process.
    bad: None raises the first image that cannot be read or decoded; a dict collects
    them instead, {index: DataError}, their rows left zero (if none decodes: DataError).
    """
    global _shared
    n = len(ds)
    skip = bad is not None
    shape = (n,) + _first_shape(ds, skip)
    workers = default_workers() if workers is None else workers
    spans = [(s, min(s + _CHUNK, n)) for s in range(0, n, _CHUNK)]
    if workers <= 1 or len(spans) == 1 or "fork" not in get_all_start_methods():
        out = np.zeros(shape, np.uint8)
        found = _decode_into(ds, out, 0, n, skip)
    else:
        out = np.frombuffer(mmap.mmap(-1, int(np.prod(shape))), np.uint8).reshape(shape)
        _shared = ds, out, skip
        try:
            with get_context("fork").Pool(min(workers, len(spans))) as pool:
                found = {i: e for part in pool.map(_decode_span, spans, chunksize=1) for i, e in part.items()}
        finally:
            _shared = None
    if skip:
        bad.update(found)
    return out


def save_atomic(path, array: np.ndarray) -> None:
    """np.save through tritnet.atomic: a reader (or a crash) never sees a half-written cache."""
    with atomic_open(path, "wb") as f:
        np.save(f, array)


def cache_path(ds: ImageList, cache_dir) -> Path:
    return Path(cache_dir) / f"{ds.name}-{len(ds)}-{ds.cache_key()}.npy"


def _bad_path(path: Path) -> Path:
    return path.with_suffix(".bad.json")


def _read_bad(path: Path) -> dict:
    """The images a cache file's set could not decode, as decode_all(bad=) found them."""
    side = _bad_path(path)
    if not side.exists():
        return {}
    return {int(i): DataError(where, reason) for i, (where, reason) in json.loads(side.read_text()).items()}


def load_images(ds: ImageList, cache_dir=None, workers: int | None = None, bad: dict | None = None) -> np.ndarray:
    """decode_all(ds, workers, bad), reusing or writing `<cache_dir>/<ds.name>-<N>-<key>.npy` if cache_dir is
    given. The images that failed are listed beside it (`.bad.json`, written first), so a cached set reports
    them again, as decoding would."""
    if cache_dir is None:
        return decode_all(ds, workers, bad)
    path = cache_path(ds, cache_dir)
    if path.exists():
        try:
            images, skipped = np.load(path), _read_bad(path)
            # a set with failed images is only reused by a caller that skips them (else: decode, and raise)
            if (images.dtype == np.uint8 and images.ndim == 4 and len(images) == len(ds)
                    and (bad is not None or not skipped)):
                if bad is not None:
                    bad.update(skipped)
                return images
        except (OSError, ValueError, EOFError):
            pass  # unreadable cache (e.g. edited by hand): decode again and overwrite it
    found = {} if bad is not None else None
    images = decode_all(ds, workers, found)
    if found:
        write_text_atomic(_bad_path(path), json.dumps({i: [e.path, e.reason] for i, e in found.items()}))
    else:
        _bad_path(path).unlink(missing_ok=True)
    save_atomic(path, images)
    if bad is not None:
        bad.update(found)
    return images


def in_memory(ds: ImageList, cache_dir=None, workers: int | None = None,
              issues: Issues | None = None) -> ArrayDataset:
    """ds decoded into an ArrayDataset with the same labels, classes and transform. An image that cannot be
    read or decoded is reported to issues (a warning naming it, once) and left out; only a set with no
    usable image at all is an error."""
    issues = issues if issues is not None else Issues()
    bad: dict = {}
    images, targets = load_images(ds, cache_dir, workers, bad), np.asarray(ds.targets)
    if bad:
        for i in sorted(bad):
            issues.report(bad[i].path, bad[i].reason)
        keep = np.setdiff1d(np.arange(len(ds)), list(bad))
        images, targets = images[keep], targets[keep]
    return ArrayDataset(images, targets, ds.classes, ds.transform)
