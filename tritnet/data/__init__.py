"""Classifier data for tritnet: image folders and tarballs, CIFAR-10 pickle batches,
darknet .data lists, a decoded-image cache, and torch-only transforms.

    from tritnet.data import build_classification_loaders
    data = build_classification_loaders("../shared/data/cifar10/cifar10-jpeg.tar.gz", cache_dir="runs/cache")
    # data.train, data.valid: DataLoaders of (float32 NCHW, int64); data.class_names
"""
from .cache import decode_all, in_memory, load_images, save_atomic
from .cifar import load_cifar10, read_cifar_batch, read_cifar_meta, write_cifar_batch, write_cifar_meta
from .darknet_data import DarknetList, DataFile, label_of, read_data_cfg, read_labels
from .datasets import ArrayDataset, ImageList, take_per_class
from .decode import decode_image, read_image
from .errors import DataError, DataWarning, Issues
from .folder import ImageFolder, open_files
from .loaders import (ClassificationData, build_classification_loaders, load_image_for_model,
                      open_datasets)
from .tarball import read_tar
from .transforms import (CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD, BatchTransform,
                         Compose, Normalize, RandomCrop, RandomHFlip, Resize, crop, crop_batch,
                         flip_batch, hflip, normalize, normalize_batch, pad, pad_batch,
                         random_crop_batch, random_flip_batch, resize, to_tensor)

__all__ = [
    "DataError", "DataWarning", "Issues", "ImageFolder", "ImageList", "ArrayDataset", "DarknetList", "DataFile",
    "open_files", "read_tar", "decode_image", "read_image", "decode_all", "load_images",
    "in_memory", "save_atomic", "read_cifar_batch", "write_cifar_batch", "read_cifar_meta",
    "write_cifar_meta", "load_cifar10", "read_data_cfg", "read_labels", "label_of",
    "take_per_class", "build_classification_loaders", "ClassificationData", "load_image_for_model",
    "open_datasets",
    "pad", "crop", "hflip", "resize", "to_tensor", "normalize", "RandomCrop", "RandomHFlip",
    "Resize", "Normalize", "Compose", "pad_batch", "crop_batch", "flip_batch",
    "random_crop_batch", "random_flip_batch", "normalize_batch", "BatchTransform",
    "IMAGENET_MEAN", "IMAGENET_STD", "CIFAR10_MEAN", "CIFAR10_STD",
]
