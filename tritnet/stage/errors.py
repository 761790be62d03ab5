"""The plan's error and its wording: every message starts with ``file: field:``, and an unknown word names the
close ones."""
from __future__ import annotations

from typing import Optional

from ..layerspec import did_you_mean

__all__ = ["PlanError", "did_you_mean", "where"]


class PlanError(ValueError):
    """A plan the runner cannot run; the message starts with ``file: field:``."""


def where(source: Optional[str], path: str) -> str:
    return f"{source or '<plan>'}: {path}"
