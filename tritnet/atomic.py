"""Files written so that a kill at any moment leaves the old file or the new one, never half of one: write a
temporary file beside the target, flush it to disk, then rename it over the target (checkpoints, weights,
run state, logs that must survive)."""
from __future__ import annotations

import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_open", "write_bytes_atomic", "write_text_atomic", "copy_atomic"]


@contextmanager
def atomic_open(path, mode: str = "wb"):
    """``with atomic_open(p) as f: f.write(...)``: ``p`` appears complete when the block ends, or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a unique name, made as open() makes files: the umask sets its permissions (mkstemp's 0600 would make a
    # packed model or a checkpoint unreadable to everyone else)
    tmp = str(path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
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
