"""From a dataset spec to the train/valid DataLoaders a classifier trainer needs.

A spec is one of
- a name from NAMED ("cifar10"), looked up under the data root (``tritnet.paths``);
- a directory or .tar/.tar.gz with train/ and test/ (or val/, valid/) class folders;
- a cifar-10-batches-py directory (pickle batches);
- a darknet classifier .data file (its train and valid lists).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..paths import data_path
from .cache import in_memory
from .cifar import is_cifar_dir, load_cifar10
from .darknet_data import DarknetList, read_data_cfg
from .datasets import ImageList
from .decode import read_image
from .errors import DataError
from .folder import ImageFolder, open_files, top_folders
from .transforms import IMAGENET_MEAN, IMAGENET_STD, BatchTransform, normalize, to_tensor

# named data sets, under the data root (tritnet.paths: --data-root, $TRITNET_DATA or pyproject's [tool.tritnet])
NAMED = {"cifar10": "cifar10/cifar10-jpeg.tar.gz"}
VALID_SPLITS = ("test", "val", "valid")


def resolve_spec(spec, data_root=None) -> Path:
    if str(spec) in NAMED:
        path = data_path(NAMED[str(spec)], data_root)
        if not path.exists():
            raise DataError(path, f"dataset '{spec}' not found here; pass data_root= or a path")
        return path
    path = Path(spec)
    if not path.exists():
        raise DataError(path, f"no such dataset (names known: {sorted(NAMED)})")
    return path


def open_datasets(spec, *, data_root=None, train_per_class: int | None = None,
                  valid_per_class: int | None = None, size=None, transform=to_tensor):
    """(train, valid) datasets for spec, still compressed (ImageList) except pickle
    batches (ArrayDataset). valid always uses the train classes' order."""
    path = resolve_spec(spec, data_root)
    if path.suffix == ".data":
        cfg = read_data_cfg(path)
        return (DarknetList(cfg, "train", per_class=train_per_class, size=size, transform=transform),
                DarknetList(cfg, "valid", per_class=valid_per_class, size=size, transform=transform))
    if path.is_dir() and is_cifar_dir(path):
        return (load_cifar10(path, True, per_class=train_per_class, transform=transform),
                load_cifar10(path, False, per_class=valid_per_class, transform=transform))
    files = open_files(path)  # a tarball is read once for both splits
    valid_split = next((s for s in VALID_SPLITS if s in top_folders(files)), None)
    if valid_split is None:
        raise DataError(path, f"no validation split: expected one of {VALID_SPLITS} beside train/ "
                              f"(top-level folders: {top_folders(files)})")
    train = ImageFolder(files, "train", per_class=train_per_class, size=size, transform=transform)
    valid = ImageFolder(files, valid_split, classes=train.classes, per_class=valid_per_class,
                        size=size, transform=transform)
    return train, valid


@dataclass
class ClassificationData:
    train: DataLoader | None  # None when built with train=False
    valid: DataLoader
    class_names: list[str]
    train_sampler: DistributedSampler | None = None

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle the training set for `epoch`, the same way on every rank and on resume."""
        if self.train_sampler is not None:
            self.train_sampler.set_epoch(epoch)


def build_classification_loaders(data, *, batch_size: int = 128, workers: int | None = None,
                                 train_per_class: int | None = None, valid_per_class: int | None = None,
                                 cache_dir=None, decode: bool = True, decode_workers: int | None = None,
                                 size=None, padding: int = 4, flip: bool = True,
                                 mean=IMAGENET_MEAN, std=IMAGENET_STD, train: bool = True,
                                 distributed: bool = False, rank: int = 0, world_size: int = 1,
                                 seed: int = 0, data_root=None) -> ClassificationData:
    """Loaders yielding (float32 NCHW normalised images, int64 labels).

    data: a spec (see module doc). decode: decode every image once into memory first,
        cached as .npy under cache_dir if given; an image that cannot be decoded is
        warned about and left out. False decodes per batch in the loader workers, for
        sets too big for RAM (then pass size= unless all images match; a bad image
        stops the run there, naming the file).
    workers: DataLoader processes; default 0 for decoded data (batches are only indexed
        and augmented, ~3 ms per 128 CIFAR images, less than worker IPC costs), 2 else.
    padding/flip: train augmentation on uint8 batches (zero-pad-and-crop, mirror);
        0/False to disable. valid is never augmented.
    mean/std: normalisation of x/255; the default ImageNet statistics are what the
        registered models and the pretrained CIFAR ResNets expect.
    train=False skips building (and decoding) the training set.
    distributed: shard train (DistributedSampler, reshuffled by set_epoch) and valid
        (every world_size-th image, no padding, so shard sizes add up exactly).
    """
    train_set, valid_set = open_datasets(data, data_root=data_root, train_per_class=train_per_class,
                                         valid_per_class=valid_per_class, size=size, transform=None)
    if decode:
        valid_set = _decoded(valid_set, cache_dir, decode_workers)
        train_set = _decoded(train_set, cache_dir, decode_workers) if train else None
    if workers is None:
        workers = 0 if decode else min(2, os.cpu_count() or 1)
    common = dict(num_workers=workers, persistent_workers=workers > 0)

    valid_sampler = range(rank, len(valid_set), world_size) if distributed else None
    valid = DataLoader(valid_set, batch_size, sampler=valid_sampler, collate_fn=BatchTransform(mean, std),
                       **common)
    train_loader = sampler = None
    if train:
        # A seeded sampler even on one process: set_epoch(e) gives the same order on resume.
        sampler = DistributedSampler(train_set, num_replicas=world_size if distributed else 1,
                                     rank=rank if distributed else 0, shuffle=True, seed=seed)
        train_loader = DataLoader(train_set, batch_size, sampler=sampler,
                                  collate_fn=BatchTransform(mean, std, padding, flip), **common)
    return ClassificationData(train_loader, valid, list(valid_set.classes), sampler)


def _decoded(ds: Dataset, cache_dir, workers) -> Dataset:
    return in_memory(ds, cache_dir, workers) if isinstance(ds, ImageList) else ds


def load_image_for_model(path, size, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """One image file as the float32 CHW tensor a model takes: resized to size
    ((height, width) or int), scaled to [0, 1], normalised."""
    return normalize(to_tensor(read_image(path, size)), mean, std)
