"""A darknet ``.data`` file for detection: ``classes``, ``train``, ``valid``, ``names``, ``backup`` (and
AlexeyAB's ``difficult``).

``train``/``valid`` name where the images and boxes are; three kinds are read:

* a darknet image list (one image path a line; YOLO label files found by darknet's rule);
* a VOC ``ImageSets/Main/<set>.txt`` (the XML read directly, difficult objects flagged);
* a COCO instances ``.json`` (images next to it, or in ``<key>_images = DIR``).

Paths in the file are tried as given (darknet: from the current folder), then next to the ``.data`` file
and its parents.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..darknet.datafile import DataFile, read_data_cfg
from .coco import coco_records, read_coco
from .labels import Issues, darknet_records
from .voc import voc_set_records

__all__ = ["DetectionData", "open_data", "source_kind"]


def source_kind(path) -> str:
    """'coco' (.json), 'voc' (an ImageSets/Main file) or 'list' (darknet image list)."""
    p = Path(path)
    if p.suffix.lower() == ".json":
        return "coco"
    if p.parent.name == "Main" and p.parent.parent.name == "ImageSets":
        return "voc"
    return "list"


@dataclass
class DetectionData:
    path: Path
    classes: int
    names: list
    options: DataFile = None                 # the .data file's values, and its path rules
    category_ids: Optional[list] = None      # COCO category ids by class index (for results files)

    def _path(self, key: str) -> Optional[Path]:
        return self.options.file(key, must_exist=True)

    @property
    def backup(self) -> Path:
        return self.options.backup

    def source(self, split: str) -> Path:
        key = {"train": "train", "valid": "valid", "test": "valid"}[split]
        p = self._path(key)
        if p is None:
            raise ValueError(f"{self.path}: no '{key} =' line (needed for {split})")
        return p

    def records(self, split: str, issues: Optional[Issues] = None) -> list:
        """Every image of ``split`` ('train' or 'valid') with its boxes; bad entries reported and skipped."""
        issues = issues if issues is not None else Issues()
        src = self.source(split)
        kind = source_kind(src)
        if kind == "coco":
            key = "train" if split == "train" else "valid"
            records, _ = coco_records(src, issues, self.names, self._path(f"{key}_images"))
        elif kind == "voc":
            records = voc_set_records(src, self.names, issues)
        else:
            difficult = self._path("difficult") if split != "train" else None
            records = darknet_records(src, self.classes, issues, difficult, bases=[self.path.parent])
        if not records:
            raise ValueError(f"{src}: no usable images ({len(issues)} entries skipped)")
        return records


def open_data(path) -> DetectionData:
    """Read a ``.data`` file; the class names come from ``names=`` (else a COCO source's categories)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such .data file")
    options = read_data_cfg(path)
    names = options.class_names() if options.get("names") else None
    coco_cats = None                     # {name: id} of the first COCO source, for results files
    for key in ("train", "valid"):
        if options.get(key) and source_kind(options[key]) == "coco":
            cats = sorted(read_coco(options.file(key))["categories"], key=lambda c: c["id"])
            coco_cats = {c["name"]: c["id"] for c in cats}
            names = names if names is not None else [c["name"] for c in cats]
            break
    classes = options.classes
    if names is None:
        if classes is None:
            raise ValueError(f"{path}: needs 'classes =' or 'names ='")
        names = [str(i) for i in range(classes)]
    classes = len(names) if classes is None else classes
    if classes != len(names):
        raise ValueError(f"{path}: classes = {classes} but the names list has {len(names)} names")
    category_ids = [coco_cats[n] for n in names] if coco_cats and all(n in coco_cats for n in names) else None
    return DetectionData(path, classes, names, options, category_ids)
