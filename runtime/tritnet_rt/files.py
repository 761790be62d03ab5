"""Reading a file a user named, which may be hostile: only a regular file (a FIFO or a device would block or
never end), and never more bytes than what it can sensibly hold, checked before reading. Every refusal is a
FileError (a ValueError) naming the file, in one line."""
from __future__ import annotations

import os
import stat

__all__ = ["MiB", "TEXT_LIMIT", "FileError", "reason_of", "file_size", "read_bytes", "read_text"]

MiB = 1 << 20
TEXT_LIMIT = 64 * MiB       # a names, .data, image-list or label file: lines of text, never this many


class FileError(ValueError):
    """``path: reason``; callers with their own error types (a cfg's, a data file's) take ``reason`` alone."""

    def __init__(self, path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")

    def __reduce__(self):
        return type(self), (self.path, self.reason)


def reason_of(e: ValueError) -> str:
    """What is wrong, without the file's name: ``reason`` of a FileError or an ImageError, else the message (a
    path may hold ': ', so the message is never split to find it)."""
    return getattr(e, "reason", None) or str(e)


def file_size(path, what: str = "file") -> int:
    """The size of ``path``, a regular file; a FileError naming it when it is missing, a folder or a special
    file. ``os.stat`` does not open the file, so a FIFO cannot block here."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise FileError(path, f"cannot read {what} ({e.strerror or e})") from None
    if stat.S_ISDIR(st.st_mode):
        raise FileError(path, f"is a folder, not a {what}")
    if not stat.S_ISREG(st.st_mode):
        raise FileError(path, f"not a regular file (a {what} is read from one)")
    return st.st_size


def read_bytes(path, what: str, limit: int) -> bytes:
    """The bytes of ``path`` (see :func:`file_size`), refused unread when it holds more than ``limit``; at most
    ``limit`` bytes are read even if the file grows meanwhile."""
    size = file_size(path, what)
    if size > limit:
        raise FileError(path, f"{size:,} bytes, more than a {what} can hold here ({limit:,})")
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise FileError(path, f"cannot read {what} ({e.strerror or e})") from None
    if len(data) > limit:
        raise FileError(path, f"more than {limit:,} bytes, more than a {what} can hold here")
    return data


def read_text(path, what: str, limit: int) -> str:
    """:func:`read_bytes` decoded as UTF-8 (a leading byte-order mark dropped, line ends kept as they are)."""
    data = read_bytes(path, what, limit)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise FileError(path, f"cannot read {what} (not UTF-8 text: byte {e.start}, {e.reason})") from None
