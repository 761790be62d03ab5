"""ImageNet-style folders, `[split/]<class>/<image>`, read from a directory or a tarball."""
from __future__ import annotations

import os
from pathlib import Path

from tritnet_rt.detect.image import IMAGE_LIMIT
from tritnet_rt.files import FileError, read_bytes

from .datasets import ImageList
from .decode import is_image_name
from .errors import DataError
from .tarball import is_tarball, read_tar
from .transforms import to_tensor


class DirFiles:
    """The image files under a directory, by relative 'a/b/c.jpg' name."""

    def __init__(self, root):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(self.root, "no such directory")
        self.names = sorted(
            os.path.relpath(os.path.join(d, f), self.root).replace(os.sep, "/")
            for d, _, files in os.walk(self.root) for f in files if is_image_name(f))

    def read(self, name: str) -> bytes:
        try:
            return read_bytes(self.root / name, "image", IMAGE_LIMIT)      # not a FIFO named x.jpg
        except FileError as e:
            raise DataError(e.path, e.reason) from None

    def where(self, name: str) -> str:
        return str(self.root / name)

    def stamp(self, names) -> object:
        stats = (os.stat(self.root / n) for n in names)
        return [(s.st_size, s.st_mtime_ns) for s in stats]


class TarFiles:
    """The image files inside a .tar/.tar.gz, held in memory as compressed bytes
    (the whole CIFAR-10 tarball: 55 MB, read in ~1 s)."""

    def __init__(self, path):
        self.root = Path(path)
        self.blobs = read_tar(self.root, keep=is_image_name)
        self.names = sorted(self.blobs)

    def read(self, name: str) -> bytes:
        return self.blobs[name]

    def where(self, name: str) -> str:
        return f"{self.root}:{name}"

    def stamp(self, names) -> object:
        s = os.stat(self.root)
        return s.st_size, s.st_mtime_ns


def _stem(path: Path) -> str:
    for ext in (".tar.gz", ".tgz", ".tar"):
        if path.name.lower().endswith(ext):
            return path.name[:-len(ext)]
    return path.name


def open_files(root) -> DirFiles | TarFiles:
    """A directory or tarball, listed once; pass the result to several ImageFolders
    (train and test) to avoid reading a tarball twice."""
    if isinstance(root, (DirFiles, TarFiles)):
        return root
    if not os.path.exists(root):
        raise DataError(root, "no such file or directory")
    return TarFiles(root) if is_tarball(root) and os.path.isfile(root) else DirFiles(root)


def top_folders(files: DirFiles | TarFiles) -> list[str]:
    return sorted({n.split("/", 1)[0] for n in files.names if "/" in n})


class ImageFolder(ImageList):
    """Images under `root[/split]/<class>/...`, labelled by class folder.

    root: a directory, a .tar/.tar.gz, or an open_files() result.
    split: a top-level folder such as "train" or "test"; None takes root itself.
    classes: the class order; default the sorted class folders (for CIFAR-10 that is
        the standard airplane..truck order). Pass the train classes to the test split
        so a class missing there cannot shift the labels.
    per_class: keep the first N files of each class in sorted name order.
    size: resize to (height, width) or int when decoding; transform: see ImageList.
    Classes are the folders holding at least one image; files lying beside the class
    folders belong to no class and are ignored.
    """

    def __init__(self, root, split: str | None = None, *, classes=None, per_class: int | None = None,
                 size=None, transform=to_tensor):
        files = open_files(root)
        prefix = f"{split.strip('/')}/" if split else ""
        origin = str(files.root) + (f" [{split}]" if split else "")
        by_class: dict[str, list[str]] = {}
        for name in files.names:
            parts = name[len(prefix):].split("/") if name.startswith(prefix) else []
            if len(parts) >= 2:
                by_class.setdefault(parts[0], []).append(name)
        if split and not by_class:
            raise DataError(files.root, f"no images under split '{split}/<class>/' "
                                        f"(top-level folders: {top_folders(files)})")
        classes = list(classes) if classes is not None else sorted(by_class)
        unknown = sorted(set(by_class) - set(classes))
        if unknown:
            raise DataError(files.where(prefix + unknown[0]), f"class folder '{unknown[0]}' is not "
                                                              f"one of the {len(classes)} known classes")
        if per_class is not None and per_class < 1:
            raise ValueError(f"per_class must be a positive int, got {per_class}")
        refs, targets = [], []
        for label, name in enumerate(classes):
            members = by_class.get(name, [])[:per_class]  # files.names is sorted already
            refs += members
            targets += [label] * len(members)
        super().__init__(refs, targets, classes, read=files.read, where=files.where, origin=origin,
                         name="-".join(filter(None, (_stem(files.root), split))).replace("/", "_"),
                         stamp=lambda: files.stamp(refs), size=size, transform=transform)
        self.files, self.split = files, split
