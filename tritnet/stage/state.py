"""The pipeline's memory between runs, ``<out>/state.json``: which stages finished, what each one started
from and chose, its scores and its training time. Every write goes through a temporary file and a rename,
so a kill at any moment leaves either the old or the new file, never half of one."""
from __future__ import annotations

import json
from pathlib import Path

from ..atomic import copy_atomic, write_text_atomic

__all__ = ["State", "write_text_atomic", "copy_atomic"]


class State:
    """``stages``: {name: {"fingerprint", "status" (running | done), "seconds", "start", "weights",
    "metrics", "size", ...}}; ``start``: the scores of the initial weights (the float row)."""

    def __init__(self, path):
        self.path = Path(path)
        self.data = {"stages": {}, "start": None}
        if self.path.is_file():
            try:
                self.data = json.loads(self.path.read_text())
            except json.JSONDecodeError as e:
                raise ValueError(f"{self.path}: unreadable pipeline state ({e}); delete it to start over") from None

    def stage(self, name: str) -> dict | None:
        return self.data["stages"].get(name)

    def update(self, name: str, **fields) -> dict:
        rec = self.data["stages"].setdefault(name, {})
        rec.update(fields)
        self.save()
        return rec

    def add_seconds(self, name: str, seconds: float) -> None:
        rec = self.data["stages"].setdefault(name, {})
        rec["seconds"] = rec.get("seconds", 0.0) + seconds
        self.save()

    def save(self) -> None:
        write_text_atomic(self.path, json.dumps(self.data, indent=2, default=str))
