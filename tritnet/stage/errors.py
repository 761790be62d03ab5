"""The plan's error and its wording: every message starts with ``file: field:``, and an unknown word names the
close ones."""
from __future__ import annotations

import difflib
from typing import Optional

__all__ = ["PlanError", "did_you_mean", "where"]


class PlanError(ValueError):
    """A plan the runner cannot run; the message starts with ``file: field:``."""


def did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=2)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else \
        f"; known: {', '.join(sorted(map(str, choices)))}"


def where(source: Optional[str], path: str) -> str:
    return f"{source or '<plan>'}: {path}"
