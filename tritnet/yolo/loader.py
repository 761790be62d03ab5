"""Feeding images to the network: decoded once, augmented in worker processes, batched darknet's way.

* :class:`ImageStore` decodes every image once into memory (in parallel, before the workers fork, so they
  share the pixels) when the set fits ``cache_mb``; otherwise each sample is decoded when it is drawn.
  An image that cannot be decoded (unreadable, truncated) is reported once and never drawn again.
* Training draws images at random with replacement, like darknet's ``get_random_paths``. The sampler
  decides every draw, the network size of each 10-iteration block (multi-scale) and every augmentation
  seed from ``(seed, iteration)``, so a resumed run sees the same stream it would have seen.
* Evaluation letterboxes each image (``tritnet_rt.detect.letterbox``) and keeps its size for the boxes.
"""
from __future__ import annotations

import os
from multiprocessing import get_all_start_methods, get_context
from typing import Optional

import numpy as np
import torch

from tritnet_rt.detect import from_uint8, letterbox, read_rgb, resize_image
from tritnet_rt.files import FileError, reason_of

from .augment import augment_detection, train_size
from .labels import Issues

__all__ = ["ImageStore", "TrainSampler", "TrainSet", "EvalSet", "train_loader", "eval_loader"]


def _try_decode(path):
    try:
        return read_rgb(path), None
    except ValueError as e:
        return None, reason_of(e)


class ImageStore:
    """Images by index; ``cached`` when decoded up front. ``bad`` holds the indices that failed."""

    def __init__(self, paths: list, cache_mb: float = 4096, workers: int = 2, issues: Optional[Issues] = None):
        self.paths, self.images, self.bad = list(paths), None, set()
        self.issues = issues if issues is not None else Issues()
        if not self.paths:
            return
        first, _ = _try_decode(self.paths[0])
        estimate = (first.nbytes if first is not None else 640 * 480 * 3) * len(self.paths) / 2 ** 20
        if estimate <= cache_mb:
            self.images = self._decode_all(workers)

    @property
    def cached(self) -> bool:
        return self.images is not None

    def _decode_all(self, workers: int) -> list:
        if workers > 1 and len(self.paths) > 8 and "fork" in get_all_start_methods():
            with get_context("fork").Pool(workers) as pool:
                got = pool.map(_try_decode, self.paths, chunksize=8)
        else:
            got = [_try_decode(p) for p in self.paths]
        for i, (img, problem) in enumerate(got):
            if img is None:
                self.bad.add(i)
                self.issues.report(self.paths[i], problem)
        return [img for img, _ in got]

    def get(self, i: int) -> np.ndarray:
        """The image (raises ValueError if it cannot be decoded)."""
        if self.images is not None:
            if self.images[i] is None:
                raise FileError(self.paths[i], "cannot decode the image")
            return self.images[i]
        return read_rgb(self.paths[i])

    def __len__(self) -> int:
        return len(self.paths)


class TrainSampler(torch.utils.data.Sampler):
    """Yields one sub-batch at a time: [(record index, net w, net h, seed)] × (batch / subdivisions)."""

    def __init__(self, n_images: int, batch: int, subdivisions: int, start_iteration: int, max_batches: int,
                 seed: int, net_w: int, net_h: int, multiscale: str = "off", stride: int = 32, rank: int = 0,
                 iteration_step: int = 1, exclude=()):
        self.n, self.sub, self.subdivisions = n_images, batch // subdivisions, subdivisions
        self.start, self.max_batches, self.seed = start_iteration, max_batches, seed
        self.net_w, self.net_h, self.multiscale, self.stride = net_w, net_h, multiscale, stride
        self.rank, self.step = rank, iteration_step
        self.allowed = np.setdiff1d(np.arange(n_images), np.fromiter(exclude, np.int64, len(exclude)))

    def size_at(self, iteration: int) -> tuple[int, int]:
        block = iteration // 10
        rng = np.random.default_rng([self.seed, 7, block])
        return train_size(self.multiscale, self.net_w, self.net_h, self.stride, rng, block * 10, self.max_batches)

    def __iter__(self):
        for it in range(self.start, self.max_batches, self.step):
            w, h = self.size_at(it)
            rng = np.random.default_rng([self.seed, self.rank, it])
            picks = rng.choice(self.allowed, self.sub * self.subdivisions)
            seeds = rng.integers(1 << 62, size=len(picks))
            for s in range(self.subdivisions):
                part = slice(s * self.sub, (s + 1) * self.sub)
                yield [(int(i), w, h, int(k)) for i, k in zip(picks[part], seeds[part])]

    def __len__(self) -> int:
        return len(range(self.start, self.max_batches, self.step)) * self.subdivisions


class TrainSet(torch.utils.data.Dataset):
    """Augmented samples; an image that fails to decode is replaced by the next good one and named in
    the sample's ``skipped`` list, so the main process can report it once."""

    def __init__(self, records, store: ImageStore, aug: dict, max_boxes: int):
        self.records, self.store, self.aug, self.max_boxes = records, store, aug, max_boxes

    def __getitem__(self, key):
        i, w, h, seed = key
        skipped = []
        for k in range(len(self.records)):
            j = (i + k) % len(self.records)
            try:
                image = self.store.get(j)
            except ValueError as e:
                skipped.append((self.store.paths[j], reason_of(e)))
                continue
            r = self.records[j]
            x, truth = augment_detection(image, r.boxes, r.classes, w, h, np.random.default_rng(seed),
                                         max_boxes=self.max_boxes, **self.aug)
            return torch.from_numpy(x), torch.from_numpy(truth), skipped
        raise ValueError("no image of the training set can be decoded")

    def __len__(self) -> int:
        return len(self.records)


def _collate(samples):
    xs, truths, skipped = zip(*samples)
    return torch.stack(xs), torch.stack(truths), [s for group in skipped for s in group]


class EvalSet(torch.utils.data.Dataset):
    """(letterboxed or stretched image, index, image w, image h, problem) for each record."""

    def __init__(self, records, store: ImageStore, net_w: int, net_h: int, letterbox_input: bool = True):
        self.records, self.store, self.w, self.h, self.letterbox = records, store, net_w, net_h, letterbox_input

    def __getitem__(self, i):
        try:
            image = self.store.get(i)
        except ValueError as e:
            return torch.zeros(3, self.h, self.w), i, 0, 0, reason_of(e)
        im = from_uint8(image)                       # darknet's load_image_color: u8/255 as float32
        x = letterbox(im, self.w, self.h) if self.letterbox else resize_image(im, self.w, self.h)
        return torch.from_numpy(x), i, image.shape[1], image.shape[0], None

    def __len__(self) -> int:
        return len(self.records)


def _loader_kwargs(workers: int) -> dict:
    workers = min(workers, os.cpu_count() or 1)
    if workers <= 0:
        return {"num_workers": 0}
    return {"num_workers": workers, "persistent_workers": False, "prefetch_factor": 4,
            "multiprocessing_context": "fork" if "fork" in get_all_start_methods() else None}


def train_loader(dataset: TrainSet, sampler: TrainSampler, workers: int = 2):
    return torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=_collate, **_loader_kwargs(workers))


def _eval_collate(samples):
    xs, idx, ws, hs, problems = zip(*samples)
    return torch.stack(xs), list(idx), list(ws), list(hs), list(problems)


def eval_loader(dataset: EvalSet, batch: int = 8, workers: int = 2):
    return torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=False, collate_fn=_eval_collate,
                                       **_loader_kwargs(workers))
