"""Darknet ``.data`` files (``classes=``, ``names=``, ``train=``, ...) and ``.names`` label lists: the one reader
every verb, trainer and loader uses. No torch.

    classes = 3
    train   = data/train.txt       # detector: image list, VOC ImageSets file or COCO json; classifier: image list
    valid   = data/test.txt
    names   = data/obj.names       # one class name per line (the classifier's ``labels =`` is the same)
    backup  = backup/

Lines are read as darknet reads them: whitespace is removed everywhere in the line (``train = a b`` is
``ab`` to darknet, so paths with spaces cannot appear in a .data file), ``#`` and ``;`` start comments, and the
first value of a repeated key wins. Darknet opens the paths relative to the directory it runs in; tritnet tries
that first, then the ``.data`` file's own directory and its parents, so a data file that travels with its lists
works from anywhere. Class names keep their inner spaces ("traffic light").
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Optional

from tritnet_rt.files import TEXT_LIMIT, FileError, read_text

from ..errors import DataError

__all__ = ["DataFile", "read_data_cfg", "read_names", "resolve_data_path", "names_from_data"]

_SPLITS = {"train": "train", "valid": "valid", "val": "valid", "test": "valid"}


def resolve_data_path(value: str, data_path) -> Path:
    """A path named in a ``.data`` file (or a list beside it): as given when it exists from the working folder
    (darknet's rule), else next to the ``.data`` file or under one of its parents; as given when none exists
    (the caller says what is missing)."""
    p = Path(value).expanduser()
    if p.is_absolute() or p.exists():
        return p
    here = Path(data_path).parent
    for base in [here, *here.resolve().parents]:
        if (base / p).exists():
            return base / p
    return p


def read_names(path) -> list:
    """One class name per non-blank line, trailing whitespace dropped (darknet's fgetl), inner spaces kept."""
    try:
        text = read_text(path, "names file", TEXT_LIMIT)
    except FileError as e:
        raise DataError(path, e.reason) from None
    return [line.rstrip() for line in text.splitlines() if line.strip()]


class DataFile(Mapping):
    """A parsed ``.data`` file: a read-only mapping of its raw values (``data["train"]``) plus what the values
    mean: ``classes``/``top`` as integers, ``file(key)`` as a resolved path, ``class_names()``."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            lines = read_text(self.path, ".data file", TEXT_LIMIT).splitlines()
        except FileError as e:
            raise DataError(self.path, e.reason) from None
        self.options: dict[str, str] = {}
        for lineno, raw in enumerate(lines, 1):
            line = "".join(raw.split())
            if not line or line[0] in "#;":
                continue
            key, eq, value = line.partition("=")
            if not eq or not key:
                raise DataError(f"{self.path}:{lineno}", f"expected 'key = value', got {raw.strip()!r}")
            self.options.setdefault(key, value)           # darknet's option_find returns the first match
        self.classes, self.top = self._integer("classes"), self._integer("top")

    def _integer(self, key) -> Optional[int]:
        """A count (classes, top): at least 1, ASCII digits (int() would take "٦" as 6, darknet's atoi as 0)."""
        if key not in self.options:
            return None
        value = self.options[key]
        if not re.fullmatch(r"\+?[0-9]{1,9}", value) or int(value) < 1:
            raise DataError(self.path, f"'{key}' must be an integer >= 1, got {value!r}")
        return int(value)

    def __getitem__(self, key):
        return self.options[key]

    def __iter__(self):
        return iter(self.options)

    def __len__(self):
        return len(self.options)

    def __repr__(self):
        return f"DataFile({str(self.path)!r}, {self.options})"

    def file(self, key: str, *, must_exist: bool = False) -> Optional[Path]:
        """The path ``key`` names, resolved (:func:`resolve_data_path`); None when the key is absent."""
        value = self.options.get(key)
        if not value:
            return None
        p = resolve_data_path(value, self.path)
        if must_exist and not p.exists():
            raise FileNotFoundError(f"{self.path}: {key} = {value}: no such file")
        return p

    train = property(lambda self: self.file("train"))
    valid = property(lambda self: self.file("valid"))
    labels = property(lambda self: self.file("labels"))
    names = property(lambda self: self.file("names"))

    @property
    def backup(self) -> Path:
        """Where darknet writes weights during training (``backup/`` when the file names none)."""
        return self.file("backup") or resolve_data_path("backup", self.path)

    def list_file(self, split: str) -> Path:
        key = _SPLITS.get(split)
        if key is None:
            raise ValueError(f"split must be 'train' or 'valid', got {split!r}")
        if not self.options.get(key):
            raise DataError(self.path, f"no '{key}' list")
        return self.file(key)

    def label_file(self) -> Path:
        """The class-name file: ``names =`` (detectors) or ``labels =`` (classifiers); either is accepted."""
        value = self.file("names") or self.file("labels")
        if value is None:
            raise DataError(self.path, "no 'labels' (or 'names') file")
        return value

    def class_names(self, classes: Optional[int] = None) -> list:
        """The names its ``names =``/``labels =`` file lists, else "0", "1", ... for ``classes``."""
        key = "names" if self.options.get("names") else "labels" if self.options.get("labels") else None
        if key is None:
            return [str(i) for i in range(self.classes if self.classes is not None else classes or 0)]
        return read_names(self.file(key, must_exist=True))


def read_data_cfg(path) -> DataFile:
    """Read a ``.data`` file (DataError naming file and line when it is unreadable or malformed)."""
    return path if isinstance(path, DataFile) else DataFile(path)


def names_from_data(data_path, classes: Optional[int] = None) -> list:
    """The class names a ``.data`` file points to (``names=``, or ``labels=`` as the classifier reads it)."""
    return read_data_cfg(data_path).class_names(classes)
