"""Files written so that a kill at any moment leaves the old file or the new one, never half of one: write a
temporary file beside the target, flush it to disk, then rename it over the target (checkpoints, weights,
run state, logs that must survive)."""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_open", "write_bytes_atomic", "write_text_atomic", "copy_atomic"]


@contextmanager
def atomic_open(path, mode: str = "wb"):
    """``with atomic_open(p) as f: f.write(...)``: ``p`` appears complete when the block ends, or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path, data: bytes) -> Path:
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)


def write_text_atomic(path, text: str) -> Path:
    with atomic_open(path, "w") as f:
        f.write(text)
    return Path(path)


def copy_atomic(src, dst) -> Path:
    with open(src, "rb") as s, atomic_open(dst, "wb") as d:
        shutil.copyfileobj(s, d)
    return Path(dst)
