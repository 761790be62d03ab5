"""The official CIFAR-10 python format, `cifar-10-batches-py/`:

data_batch_1..5 and test_batch are pickled dicts with b'data' (N, 3072) uint8 rows
holding the 1024 red, then 1024 green, then 1024 blue pixels of a 32x32 image in
row-major order, and b'labels' (N ints). batches.meta has b'label_names'.

Unpickling runs code named inside the file, so only the few numpy names that the
official files (and numpy's own pickles) use are allowed.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from .datasets import ArrayDataset, take_per_class
from .errors import DataError
from .transforms import to_tensor

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES = ("test_batch",)

_ALLOWED = {
    ("_codecs", "encode"), ("__builtin__", "bytes"), ("builtins", "bytes"),  # protocol-2 bytes
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _unpickle(path) -> dict:
    try:
        with open(path, "rb") as f:
            # encoding="bytes": the official files were written by Python 2.
            obj = _NumpyOnlyUnpickler(f, encoding="bytes").load()
    except OSError as e:
        raise DataError(path, f"cannot read CIFAR batch ({e.strerror or e})") from e
    except Exception as e:  # UnpicklingError, EOFError, ValueError... from a bad file
        raise DataError(path, f"not a CIFAR pickle ({type(e).__name__}: {e})") from e
    if not isinstance(obj, dict):
        raise DataError(path, f"not a CIFAR pickle (holds a {type(obj).__name__}, not a dict)")
    return obj


def read_cifar_batch(path) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 32, 32, 3), labels int64 (N,)) from one batch file."""
    d = _unpickle(path)
    if b"data" not in d or not ({b"labels", b"fine_labels"} & d.keys()):
        raise DataError(path, f"CIFAR batch lacks b'data' or b'labels' (keys: {sorted(d)})")
    data = np.asarray(d[b"data"])
    labels = np.asarray(d.get(b"labels", d.get(b"fine_labels")), dtype=np.int64)  # CIFAR-100
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DataError(path, f"expected uint8 data (N, 3072) and N labels, got data "
                              f"{data.dtype} {data.shape} and {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels


def write_cifar_batch(path, images: np.ndarray, labels, batch_label: str = "") -> None:
    """Write images uint8 (N, 32, 32, 3) and labels in the official batch format."""
    images = np.asarray(images, dtype=np.uint8)
    if images.shape[1:] != (32, 32, 3):
        raise ValueError(f"CIFAR images are (N, 32, 32, 3), got {images.shape}")
    record = {
        b"batch_label": batch_label.encode(),
        b"labels": [int(x) for x in labels],
        b"data": images.transpose(0, 3, 1, 2).reshape(len(images), 3072),
        b"filenames": [f"{i:05d}.png".encode() for i in range(len(images))],
    }
    with open(path, "wb") as f:
        pickle.dump(record, f, protocol=2)


def read_cifar_meta(root) -> list[str]:
    """Class names from <root>/batches.meta (b'label_names')."""
    d = _unpickle(Path(root) / "batches.meta")
    names = d.get(b"label_names", d.get(b"fine_label_names"))
    if names is None:
        raise DataError(Path(root) / "batches.meta", "lacks b'label_names'")
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def write_cifar_meta(root, names) -> None:
    with open(Path(root) / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [n.encode() for n in names], b"num_vis": 3072}, f, protocol=2)


def is_cifar_dir(path) -> bool:
    return Path(path, "batches.meta").is_file() or Path(path, TRAIN_BATCHES[0]).is_file()


def load_cifar10(root, train: bool = True, *, per_class: int | None = None,
                 transform=to_tensor) -> ArrayDataset:
    """The five training batches (or test_batch) of a cifar-10-batches-py directory.

    Class names come from batches.meta when present, else '0'..'9'.
    per_class: keep the first N images of each class in file order.
    """
    root = Path(root)
    parts = [read_cifar_batch(root / name) for name in (TRAIN_BATCHES if train else TEST_BATCHES)]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if not len(labels):
        raise DataError(root, "empty dataset: the CIFAR batches hold no images")
    classes = read_cifar_meta(root) if (root / "batches.meta").is_file() else None
    if classes is not None and len(labels) and labels.max() >= len(classes):
        raise DataError(root, f"label {labels.max()} but batches.meta names {len(classes)} classes")
    keep = take_per_class(labels.tolist(), per_class)
    return ArrayDataset(images[keep], labels[keep], classes, transform)
