"""Where the example data lives: one setting, the data root, decided here and nowhere else.

The data root is the folder holding the data sets and pretrained files that named data (``cifar10``), the demo and
the benchmarks' default images refer to. It comes from, in this order: the command line (``--data-root``), the
``TRITNET_DATA`` environment variable, ``data-root`` under ``[tool.tritnet]`` in the ``pyproject.toml`` of the
working folder (as Ultralytics keeps ``datasets_dir`` in its settings; this project's file names
``../shared/data``). No path is assumed in the code: without any of them, a command that needs the root says how
to give it.
"""
from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Optional

__all__ = ["data_root", "data_path", "ENV"]

ENV = "TRITNET_DATA"


def _project_setting() -> Optional[str]:
    try:
        with open("pyproject.toml", "rb") as f:
            return tomllib.load(f).get("tool", {}).get("tritnet", {}).get("data-root")
    except (OSError, tomllib.TOMLDecodeError):
        return None


def data_root(given=None) -> Path:
    """The data root (see the module's docstring); a ValueError naming the three ways when none is set."""
    root = given or os.environ.get(ENV) or _project_setting()
    if not root:
        raise ValueError(f"no data folder: pass --data-root DIR, set {ENV}=DIR, or set data-root under "
                         "[tool.tritnet] in the project's pyproject.toml")
    return Path(root).expanduser()


def data_path(relative: str, root=None) -> Path:
    """``relative`` under the data root, e.g. ``data_path("pretrained/resnet_cifar10")``."""
    return data_root(root) / relative
