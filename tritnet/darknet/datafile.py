"""Darknet ``.data`` files (``classes=``, ``names=``, ``train=``, ...) and ``.names`` label lists. No torch.

Darknet opens the paths in a ``.data`` file relative to the directory it runs in. tritnet tries that
first, then the ``.data`` file's own directory and its parents, so a data file that travels with its
names file works from anywhere.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

__all__ = ["read_data_cfg", "read_names", "resolve_data_path"]


def read_data_cfg(path) -> dict:
    """``key=value`` lines (``#`` comments, blanks ignored) → dict of strings; the first value of a key wins."""
    out: dict = {}
    for lineno, raw in enumerate(Path(path).read_text().splitlines(), 1):
        line = "".join(raw.split())
        if not line or line[0] in "#;":
            continue
        key, eq, value = line.partition("=")
        if not eq or not key:
            raise ValueError(f"{path}:{lineno}: expected key=value, got {raw.strip()!r}")
        out.setdefault(key, value)
    return out


def resolve_data_path(value: str, data_path) -> Path:
    """A path named in a ``.data`` file: as given (darknet: from the current directory), else next to the
    ``.data`` file or under one of its parent directories."""
    p = Path(value)
    if p.is_absolute() or p.exists():
        return p
    for base in [Path(data_path).resolve().parent, *Path(data_path).resolve().parents]:
        if (base / p).exists():
            return base / p
    raise FileNotFoundError(f"{data_path}: {value!r} not found (from the current directory or next to the "
                            f".data file)")


def read_names(path) -> list:
    """One class name per line (trailing spaces dropped, like darknet's fgetl)."""
    return [line.rstrip() for line in Path(path).read_text().splitlines() if line.strip()]


def names_from_data(data_path, classes: Optional[int] = None) -> list:
    """The class names a ``.data`` file points to (``names=``, or ``labels=`` as the classifier reads it)."""
    d = read_data_cfg(data_path)
    key = "names" if "names" in d else "labels" if "labels" in d else None
    if key is None:
        n = int(d.get("classes", classes or 0))
        return [str(i) for i in range(n)]
    return read_names(resolve_data_path(d[key], data_path))
