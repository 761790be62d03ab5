"""darknet classifier datasets: a `.data` file naming image lists and a labels file.

    classes = 10
    train   = data/cifar/train.list    # one image path per line
    valid   = data/cifar/test.list
    labels  = data/cifar/labels.txt    # one class name per line
    backup  = backup/
    top     = 2

As in darknet's fill_truth (src/data.c), an image's class is the label whose name
appears as a substring of its path as written in the list (strstr); darknet only
prints a warning when zero or several labels match, we refuse the image instead.
"""
from __future__ import annotations

import os
from pathlib import Path

from tritnet_rt.files import TEXT_LIMIT, FileError, read_text

from ..darknet.datafile import DataFile, read_data_cfg, read_names, resolve_data_path  # noqa: F401 (DataFile: re-exported)
from .datasets import ImageList, take_per_class
from .errors import DataError
from .transforms import to_tensor


def read_lines(path, what: str) -> list[tuple[int, str]]:
    """(line number, stripped text) of the non-blank lines of a text file."""
    try:
        lines = read_text(path, what, TEXT_LIMIT).splitlines()
    except FileError as e:
        raise DataError(path, e.reason) from None
    return [(n, s.strip()) for n, s in enumerate(lines, 1) if s.strip()]


def read_labels(path) -> list[str]:
    """The labels file's names (:func:`read_names`), which must be distinct: a class is found by name in the
    image path."""
    labels = read_names(path)
    if not labels:
        raise DataError(path, "labels file is empty")
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise DataError(path, f"duplicate labels {dup}")
    return labels


def label_of(image_path: str, labels: list[str], where: str) -> int:
    """The index of the one label that is a substring of image_path (darknet's rule)."""
    hits = [i for i, name in enumerate(labels) if name in image_path]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise DataError(where, f"no label appears in image path {image_path!r} (labels: {labels})")
    raise DataError(where, f"ambiguous: labels {[labels[i] for i in hits]} all appear in "
                           f"image path {image_path!r}")


class DarknetList(ImageList):
    """The train or valid image list of a darknet .data file, labelled by path substring.

    data: a .data path or a DataFile. Every listed image must exist (checked here,
    naming list file and line); decoding errors surface when an image is loaded.
    per_class: keep the first N images of each class in list order.
    """

    def __init__(self, data, split: str = "train", *, per_class: int | None = None,
                 size=None, transform=to_tensor):
        cfg = read_data_cfg(data)
        list_path = cfg.list_file(split)
        labels = read_labels(cfg.label_file())
        if cfg.classes is not None and cfg.classes != len(labels):
            raise DataError(cfg.path, f"classes = {cfg.classes} but {cfg.label_file()} "
                                      f"lists {len(labels)} labels")
        refs, targets = [], []
        for lineno, text in read_lines(list_path, "image list"):
            where = f"{list_path}:{lineno}"
            image = resolve_data_path(text, list_path)
            image = image if image.exists() else resolve_data_path(text, cfg.path)
            if not image.is_file():
                raise DataError(where, f"image not found: {text}")
            refs.append(str(image))
            targets.append(label_of(text, labels, where))
        keep = take_per_class(targets, per_class)
        refs, targets = [refs[i] for i in keep], [targets[i] for i in keep]
        super().__init__(refs, targets, labels, read=_read_file, where=str, origin=str(list_path),
                         name=f"{cfg.path.stem}-{split}",
                         stamp=lambda: [(s.st_size, s.st_mtime_ns) for s in map(os.stat, refs)],
                         size=size, transform=transform)
        self.config, self.split = cfg, split


def _read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
