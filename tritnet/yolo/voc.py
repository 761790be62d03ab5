"""Pascal VOC trees (``Annotations/*.xml``, ``ImageSets/Main/<set>.txt``, ``JPEGImages/``): read directly, or
turned into darknet lists and label files as darknet's ``scripts/voc_label.py`` does.

Coordinates follow voc_label.py's ``convert``: VOC pixels are 1-based, so the centre is
``((xmin + xmax)/2 − 1)/width`` and the size ``(xmax − xmin)/width``. voc_label.py drops difficult objects;
read directly they are kept and flagged, so the VOC evaluation can ignore them as the devkit does.

The converter never writes into the VOC tree (it may be read-only, e.g. ``../shared``): images are linked
(or copied) into the output folder next to their labels, so darknet's label rule (JPEGImages → labels)
finds them::

    OUT/<tree>/JPEGImages/<id>.jpg -> the VOC image      OUT/<tree>/labels/<id>.txt
    OUT/<tree>/labels_difficult/<id>.txt                 (difficult objects, AlexeyAB's difficult= list)
    OUT/<tree>_<set>.txt   OUT/train.txt  OUT/valid.txt  OUT/<name>.names  OUT/<name>.data
"""
from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Optional, Sequence

from tritnet_rt.files import TEXT_LIMIT, read_text

from ..atomic import write_text_atomic
from ..data.errors import UnknownClasses
from .labels import Issues, Record, check_box

__all__ = ["parse_voc_xml", "voc_set_records", "voc_root_of", "voc_label", "voc_class_names"]


def _text(node, tag, path, required=True):
    child = node.find(tag)
    if child is None or child.text is None:
        if required:
            raise ValueError(f"{path}: <{tag}> missing")
        return None
    return child.text.strip()


def parse_voc_xml(path) -> dict:
    """{'filename', 'width', 'height', 'objects': [(name, difficult, xmin, ymin, xmax, ymax)]} of one XML file."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as e:
        raise ValueError(f"{path}: not a readable VOC annotation ({e})") from None
    size = root.find("size")
    if size is None:
        raise ValueError(f"{path}: <size> missing")
    try:
        w, h = int(float(_text(size, "width", path))), int(float(_text(size, "height", path)))
    except ValueError:
        raise ValueError(f"{path}: <size> width/height are not numbers") from None
    objects = []
    for obj in root.iter("object"):
        name = _text(obj, "name", path)
        diff = _text(obj, "difficult", path, required=False)
        bb = obj.find("bndbox")
        if bb is None:
            raise ValueError(f"{path}: object {name!r} has no <bndbox>")
        try:
            xmin, ymin, xmax, ymax = (float(_text(bb, k, path)) for k in ("xmin", "ymin", "xmax", "ymax"))
        except ValueError:
            raise ValueError(f"{path}: object {name!r} has a non-numeric <bndbox>") from None
        objects.append((name, bool(diff and int(float(diff))), xmin, ymin, xmax, ymax))
    return {"filename": _text(root, "filename", path, required=False), "width": w, "height": h, "objects": objects}


def _convert(w, h, xmin, ymin, xmax, ymax):
    """voc_label.py's convert: (cx, cy, bw, bh) relative, with the 1-based pixel shift."""
    return (((xmin + xmax) / 2.0 - 1) / w, ((ymin + ymax) / 2.0 - 1) / h, (xmax - xmin) / w, (ymax - ymin) / h)


def voc_root_of(imageset) -> Path:
    """The VOC tree of ``<root>/ImageSets/Main/<set>.txt``."""
    p = Path(imageset).resolve()
    if p.parent.name != "Main" or p.parent.parent.name != "ImageSets":
        raise ValueError(f"{imageset}: not a VOC ImageSets/Main/<set>.txt file")
    return p.parents[2]


def _ids(imageset) -> list[str]:
    lines = read_text(imageset, "image set", TEXT_LIMIT).splitlines()        # a ValueError naming it
    return [ln.split()[0] for ln in lines if ln.strip()]


def _image_of(root: Path, image_id: str, meta: dict) -> Path:
    name = meta.get("filename") or ""
    if name and (root / "JPEGImages" / name).is_file():
        return root / "JPEGImages" / name
    return root / "JPEGImages" / f"{image_id}.jpg"


def _objects_to_boxes(path, meta, names, issues, unknown: UnknownClasses, keep_difficult=True):
    index = {n: i for i, n in enumerate(names)}
    boxes, ids, diff = [], [], []
    for k, (name, difficult, xmin, ymin, xmax, ymax) in enumerate(meta["objects"]):
        if name not in index:
            unknown.add(name, path)                   # a class the names list lacks (voc_label.py drops it)
            continue
        if difficult and not keep_difficult:
            continue
        box, problem = check_box(*_convert(meta["width"], meta["height"], xmin, ymin, xmax, ymax),
                                 index[name], len(names))
        if problem:
            issues.report(f"{path} (object {k + 1}, {name})", problem)
            continue
        boxes.append(box)
        ids.append(index[name])
        diff.append(difficult)
    return boxes, ids, diff


def _annotated_image(root: Path, image_id: str, issues: Issues):
    """(xml path, parsed annotation, image path) of one VOC image id, or None after reporting what is wrong."""
    xml = root / "Annotations" / f"{image_id}.xml"
    if not xml.is_file():
        issues.report(xml, "annotation missing")
        return None
    try:
        meta = parse_voc_xml(xml)
    except ValueError as e:
        issues.report(xml, str(e).split(": ", 1)[-1])
        return None
    image = _image_of(root, image_id, meta)
    if not image.is_file():
        issues.report(image, "image missing")
        return None
    return xml, meta, image


def voc_set_records(imageset, names: Sequence[str], issues: Issues) -> list[Record]:
    """Records of a VOC ImageSets file, read straight from the XML (difficult objects flagged)."""
    root = voc_root_of(imageset)
    out, unknown = [], UnknownClasses()
    for image_id in _ids(imageset):
        entry = _annotated_image(root, image_id, issues)
        if entry is None:
            continue
        xml, meta, image = entry
        boxes, ids, diff = _objects_to_boxes(xml, meta, names, issues, unknown)
        out.append(Record(str(image), boxes, ids, diff, size=(meta["width"], meta["height"])))
    unknown.report(issues, imageset)
    return out


def voc_class_names(roots: Sequence, sets: Sequence[str]) -> list[str]:
    """Class names in the order they first appear (sets in order, ids in file order)."""
    seen: dict = {}
    for root in roots:
        for s in sets:
            f = Path(root) / "ImageSets" / "Main" / f"{s}.txt"
            if not f.is_file():
                continue
            for image_id in _ids(f):
                try:
                    meta = parse_voc_xml(Path(root) / "Annotations" / f"{image_id}.xml")
                except ValueError:
                    continue
                for obj in meta["objects"]:
                    seen.setdefault(obj[0], None)
    return list(seen)


def _link(src: Path, dst: Path, copy: bool):
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    if copy:
        shutil.copyfile(src, dst)
    else:
        os.symlink(src.resolve(), dst)


def _write_lines(path: Path, lines):
    write_text_atomic(path, "".join(f"{ln}\n" for ln in lines))


def voc_label(roots: Sequence, out, train_sets: Sequence[str] = ("trainval",), valid_sets: Sequence[str] = ("test",),
              names: Optional[Sequence[str]] = None, name: str = "voc", copy: bool = False,
              issues: Optional[Issues] = None) -> dict:
    """darknet's voc_label.py for one or more VOC trees; returns the paths written and the counts.

    ``names``: class order (default: order of first appearance). Images go to ``OUT/<tree>/JPEGImages``
    (symlinks, or copies with ``copy``), labels beside them, difficult objects in ``labels_difficult``.
    """
    out = Path(out).resolve()
    roots = [Path(r) for r in roots]
    for r in roots:
        if not (r / "Annotations").is_dir() or not (r / "ImageSets" / "Main").is_dir():
            raise FileNotFoundError(f"{r}: not a VOC tree (needs Annotations/ and ImageSets/Main/)")
        if out == r.resolve() or r.resolve() in out.parents:
            raise ValueError(f"{out}: the output folder must not be inside the VOC tree {r}")
    issues = issues if issues is not None else Issues()
    names = list(names) if names else voc_class_names(roots, list(train_sets) + list(valid_sets))
    if not names:
        raise ValueError(f"no objects found in {', '.join(map(str, roots))}")
    lists = {"train": [], "valid": [], "difficult": []}
    counts = {"images": 0, "boxes": 0, "difficult_boxes": 0}
    written = {}
    for r in roots:
        tag = r.resolve().name
        for split, sets in (("train", train_sets), ("valid", valid_sets)):
            for s in sets:
                imageset = r / "ImageSets" / "Main" / f"{s}.txt"
                if not imageset.is_file():
                    raise FileNotFoundError(f"{imageset}: no such image set")
                images, unknown = [], UnknownClasses()
                for image_id in _ids(imageset):
                    entry = _annotated_image(r, image_id, issues)
                    if entry is None:
                        continue
                    xml, meta, src = entry
                    image = out / tag / "JPEGImages" / f"{image_id}{src.suffix}"
                    _link(src, image, copy)
                    rows = {False: [], True: []}
                    boxes, ids, diff = _objects_to_boxes(xml, meta, names, issues, unknown)
                    for b, c, d in zip(boxes, ids, diff):
                        rows[d].append(f"{c} " + " ".join(f"{v:.6f}" for v in b))
                    _write_lines(out / tag / "labels" / f"{image_id}.txt", rows[False])
                    _write_lines(out / tag / "labels_difficult" / f"{image_id}.txt", rows[True])
                    images.append(str(image))
                    if split == "valid":
                        lists["difficult"].append(str(out / tag / "JPEGImages_difficult" / image.name))
                    counts["images"] += 1
                    counts["boxes"] += len(rows[False])
                    counts["difficult_boxes"] += len(rows[True])
                unknown.report(issues, imageset)
                _write_lines(out / f"{tag}_{s}.txt", images)
                written[f"{tag}_{s}"] = str(out / f"{tag}_{s}.txt")
                lists[split] += images
    files = {k: out / f"{k}.txt" for k in lists}
    for k, lines in lists.items():
        _write_lines(files[k], lines)
    names_file = out / f"{name}.names"
    _write_lines(names_file, names)
    data_file = out / f"{name}.data"
    _write_lines(data_file, [f"classes = {len(names)}", f"train = {files['train']}", f"valid = {files['valid']}",
                             f"difficult = {files['difficult']}", f"names = {names_file}",
                             f"backup = {out / 'backup'}"])
    return {"data": str(data_file), "names": str(names_file), "train": str(files["train"]),
            "valid": str(files["valid"]), "difficult": str(files["difficult"]), "classes": names, "lists": written,
            "skipped": len(issues), **counts}
