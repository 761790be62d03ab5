"""The text-level pieces of a darknet ``.cfg``: :class:`Section` (one ``[type]`` block of :class:`Option`), the
value conversion every key goes through, and the errors and warnings that name ``file:line``. ``cfg`` reads and
writes whole files with them; ``shapes`` infers the layers from them."""
from __future__ import annotations

import math
import os
import re
import sys
import warnings
from dataclasses import dataclass
from typing import Iterable, Optional

from ._schema import (ACTIVATION_SECTIONS, ACTIVATIONS_BY_DIALECT, ALL_SECTION_ALIASES, COST_TYPES, DIALECTS,
                      POLICIES_BY_DIALECT, PROGRAMS, key_limits, key_spec, known_keys)

__all__ = ["CfgError", "CfgWarning", "Option", "Section"]

# ASCII digits only: Python's \d and int() take other scripts' digits ("٦" is 6), darknet's atoi reads them as 0
_INT_RE = re.compile(r"[+-]?\d{1,19}", re.ASCII)  # 64-bit at most (int() refuses 4300 digits, naming no file)
_FLOAT_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


class CfgError(ValueError):
    """A cfg darknet would reject, crash on, or silently misread. The message starts with ``file:line:``."""

    def __init__(self, message: str, path: Optional[str] = None, line: Optional[int] = None):
        self.path, self.line, self.reason = path, line, message
        super().__init__(f"{_where(path, line)}: {message}")

    def __reduce__(self):
        return type(self), (self.reason, self.path, self.line)


class CfgWarning(UserWarning):
    """Something darknet accepts but probably is not what was meant (an unknown key, a duplicate key...)."""


def _where(path, line) -> str:
    p = path if path else "<cfg>"
    return f"{p}:{line}" if line else p             # a whole-file problem (unreadable, too large) has no line


def _user_stacklevel() -> int:
    """stacklevel pointing at the first caller outside this package (for warnings.warn)."""
    here = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(2), 2
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == here:
        frame, level = frame.f_back, level + 1
    return level


def _warn(msg, path, line):
    warnings.warn(f"{_where(path, line)}: {msg}", CfgWarning, stacklevel=_user_stacklevel())


@dataclass
class Option:
    key: str
    value: str
    line: Optional[int] = None  # None for an option set from code


class Section:
    """One ``[type]`` block: canonical ``type``, the ``header`` as written, ordered ``options``."""

    def __init__(self, type: str, options: Optional[Iterable[Option]] = None, *, line: Optional[int] = None,
                 path: Optional[str] = None, header: Optional[str] = None, dialect: str = "pjreddie"):
        canonical = ALL_SECTION_ALIASES.get(type)
        if canonical is None:
            raise ValueError(f"unknown section type {type!r}")
        if dialect not in DIALECTS:
            raise ValueError(f"unknown darknet dialect {dialect!r}; choose one of {', '.join(DIALECTS)}")
        self.type = canonical
        self.header = header or type
        self.line = line
        self.path = path
        self.dialect = dialect       # which darknet reads it: the keys, defaults and shapes below are that one's
        self.options: list[Option] = list(options or [])

    def __repr__(self):
        return f"Section([{self.header}] line {self.line}, {len(self.options)} options)"

    # ---- raw access ---------------------------------------------------------------------------
    def _find(self, key) -> Optional[Option]:
        for o in self.options:
            if o.key == key:
                return o
        return None

    def __contains__(self, key) -> bool:
        return self._find(key) is not None

    def get(self, key: str, default: Optional[str] = None) -> Optional[str]:
        """Raw string value of ``key`` (the first occurrence, as darknet), or ``default``."""
        o = self._find(key)
        return default if o is None else o.value

    def line_of(self, key: Optional[str] = None) -> Optional[int]:
        """Line of ``key`` (of the header when ``key`` is None or absent)."""
        o = self._find(key) if key else None
        return o.line if o is not None and o.line else self.line

    def where(self, key: Optional[str] = None) -> str:
        return _where(self.path, self.line_of(key))

    def error(self, message: str, key: Optional[str] = None) -> CfgError:
        return CfgError(f"[{self.header}]: {message}", self.path, self.line_of(key))

    def set(self, key: str, value) -> None:
        """Set ``key`` (replacing the first occurrence, dropping later duplicates) or append it."""
        value = _format_value(value)
        o = self._find(key)
        if o is None:
            self.options.append(Option(key, value))
            return
        o.value = value
        self.options = [x for x in self.options if x.key != key or x is o]

    def remove(self, key: str) -> None:
        self.options = [o for o in self.options if o.key != key]

    # ---- typed access with darknet's defaults -------------------------------------------------
    def param(self, key: str):
        """Typed value of ``key`` with darknet's default when absent; CfgError on a bad value."""
        spec = key_spec(self.type, key, self.dialect)
        if spec is None:
            raise KeyError(f"{PROGRAMS[self.dialect]} does not read {key!r} in [{self.type}]")
        kind, default = spec
        o = self._find(key)
        if o is None:
            return default(self.param) if callable(default) else (list(default) if isinstance(default, list)
                                                                    else default)
        return _convert(kind, o.value, self, key)

    def read(self, key: str, default=0):
        """Typed value of ``key`` when the dialect's darknet reads it in this section, else ``default`` (for keys
        only one dialect has, such as pjreddie's ``dontsave`` and ``numload``)."""
        return self.param(key) if key_spec(self.type, key, self.dialect) is not None else default

    def params(self) -> dict:
        """Every key darknet reads in this section, typed, with defaults filled in."""
        return {k: self.param(k) for k in known_keys(self.type, self.dialect)}

    @property
    def ternary(self) -> bool:
        return self.type == "convolutional" and bool(self.param("ternary"))

    @ternary.setter
    def ternary(self, on: bool) -> None:
        if self.type != "convolutional":
            raise ValueError(f"{self.where()}: ternary=1 only exists in [convolutional], not [{self.header}]")
        self.set("ternary", 1 if on else 0)


def _format_value(v) -> str:
    if isinstance(v, bool):
        v = int(v)
    if isinstance(v, (list, tuple)):
        return ",".join(_format_value(x) for x in v)
    s = str(v) if not isinstance(v, float) else repr(v)
    s = "".join(s.split())
    if not s or any(ch in s for ch in "[]=#;\n"):
        raise ValueError(f"cannot write value {v!r} to a darknet cfg")
    return s


def _convert(kind, text, section, key):
    def bad(what):
        shown = text if len(text) <= 40 else text[:40] + "..."   # one readable line, whatever the file holds
        return section.error(f"bad value for {key}: {shown!r} is not {what}", key)

    if kind == "int":
        if not _INT_RE.fullmatch(text):
            raise bad("an integer")
        value = int(text)
        limits = key_limits(section.type, key)
        if limits and not limits[0] <= value <= limits[1]:
            raise section.error(f"{key}={text} is out of range: tritnet accepts {limits[0]} to {limits[1]}", key)
        return value
    if kind == "float":
        if not _FLOAT_RE.fullmatch(text) or not math.isfinite(float(text)):  # 1e999 reads as inf
            raise bad("a finite number")
        return float(text)
    if kind in ("ints", "floats"):
        parts = text.split(",")
        rx, cast = (_INT_RE, int) if kind == "ints" else (_FLOAT_RE, float)
        if not all(rx.fullmatch(p) and math.isfinite(cast(p)) for p in parts):
            raise bad("a comma-separated list of " + ("integers" if kind == "ints" else "finite numbers"))
        return [cast(p) for p in parts]
    if kind == "activation":
        names = ACTIVATIONS_BY_DIALECT[section.dialect]
        if text not in names:
            raise bad(f"an activation of {PROGRAMS[section.dialect]} (" + ", ".join(names) + ")")
        program, restricted = ACTIVATION_SECTIONS[section.dialect]
        only = restricted.get(text)
        if only and section.type not in only:
            raise section.error(f"{key}={text}: {program} computes {text} only in "
                                + " and ".join(f"[{t}]" for t in only) + " layers (elsewhere its activate() "
                                "returns 0)", key)
        return text
    if kind == "policy":
        names = POLICIES_BY_DIALECT[section.dialect]
        if text not in names:
            raise bad("a learning-rate policy (" + ", ".join(names) + ")")
        return text
    if kind == "cost":
        if text not in COST_TYPES:
            raise bad("a cost type (" + ", ".join(COST_TYPES) + ")")
        return text
    if isinstance(kind, tuple):         # a fixed set of names (darknet silently takes its default for others)
        if text not in kind:
            raise bad("one of " + ", ".join(kind))
        return text
    return text
