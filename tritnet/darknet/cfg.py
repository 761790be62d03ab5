"""Darknet ``.cfg`` text <-> a list of :class:`Section` (no torch, no numpy).

Reading follows pjreddie/darknet ``read_cfg``: each line has its spaces and tabs removed (also inside
values, so ``anchors = 1,2,  3,4`` reads as ``1,2,3,4``); empty lines and lines starting with ``#`` or
``;`` are skipped; ``[name]`` opens a section; anything else is ``key=value``. When a key appears twice
darknet uses the first one. Darknet is lenient where tritnet is strict:

* a bad value (``filters=abc``, which darknet reads as 0), a value beyond the sane limits of
  ``_schema.LIMITS`` (``filters=1000000000``, which darknet tries to allocate), a network whose parameters or
  activations for one image pass ``MAX_PARAMS``/``MAX_ACTIVATIONS``, an unknown section, an unknown activation
  (darknet: ReLU), an unknown policy (darknet: constant), a route/shortcut to a layer that does not
  exist, a shape that does not fit, ``binary=1``/``xnor=1`` -> :class:`CfgError` naming file and line;
* an unknown key -> a :class:`CfgWarning` naming file and line (darknet prints "Unused field").

The dialect (``_schema.DIALECTS``) says which darknet reads the file: ``pjreddie`` (pjreddie's darknet and its
darknetTWN fork) or ``alexeyab``. It is given (``dialect=``, ``--dialect``) or decided by the file
(:func:`detect_dialect`): AlexeyAB's when a layer uses a section, key or value that only AlexeyAB's darknet reads,
pjreddie's otherwise. Every section carries it, so keys, defaults and shapes are the ones that darknet reads.

Example::

    cfg = parse_cfg("yolov2-voc.cfg")
    set_ternary(cfg, [16, 17, 19, 22])   # layer indices, as in darknet's layer table
    text = dump_cfg(cfg)
"""
from __future__ import annotations

import copy
import re
from typing import Iterable, Optional

from tritnet_rt.files import FileError, MiB, read_bytes

from ._schema import (ACTIVATIONS_BY_DIALECT, ALL_SECTION_ALIASES, DIALECTS, PROGRAMS, REFUSED_SECTIONS,
                      REFUSED_VALUES, SECTION_ALIASES_BY_DIALECT, key_spec)
from .section import CfgError, CfgWarning, Option, Section, _convert, _warn, _where
from .shapes import infer_layers

__all__ = ["CfgError", "CfgWarning", "Option", "Section", "Cfg", "parse_cfg", "parse_cfg_string", "is_cfg_name",
           "validate_cfg", "dump_cfg", "set_ternary", "ternary_layers", "detect_dialect", "DIALECTS"]


def is_cfg_name(name) -> bool:
    """Whether a model name a user gave is a darknet cfg (the one place that decides it: by its ``.cfg`` suffix,
    as darknet's own commands take cfgs)."""
    return str(name).endswith(".cfg")


class Cfg(list):
    """The parsed cfg: a list of :class:`Section` (``[net]`` first) that remembers its ``path``, its dialect and
    why (``dialect_reason``: what made it AlexeyAB's, or that it was given)."""

    def __init__(self, sections: Iterable[Section] = (), path: Optional[str] = None,
                 dialect_reason: Optional[str] = None):
        super().__init__(sections)
        self.path = path
        self.dialect_reason = dialect_reason

    @property
    def dialect(self) -> str:
        return self[0].dialect if self else "pjreddie"

    @property
    def net(self) -> Section:
        return self[0]

    @property
    def layers(self) -> list[Section]:
        """Layer sections; ``cfg.layers[i]`` is darknet's layer ``i``."""
        return list(self[1:])

    def copy(self) -> "Cfg":
        """Deep copy (sections and options), so a staged plan can edit M1 without touching M0."""
        return copy.deepcopy(self)


# ---- reading ---------------------------------------------------------------------------------------
CFG_LIMIT = 64 * MiB        # darknet's largest cfgs are tens of kB; this leaves room for comments, not for a disk
def parse_cfg(path, *, validate: bool = True, dialect: Optional[str] = None) -> Cfg:
    """Read a darknet .cfg file. With ``validate`` (default) also check every value and infer shapes.

    ``dialect`` ("pjreddie" or "alexeyab") says which darknet reads it; None decides by the file
    (:func:`detect_dialect`)."""
    path = str(path)
    try:
        data = read_bytes(path, "cfg", CFG_LIMIT)
    except FileError as e:
        raise CfgError(e.reason, path) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise CfgError(f"not a text file ({e})", path) from None
    return parse_cfg_string(text, path=path, validate=validate, dialect=dialect)


def parse_cfg_string(text: str, path: Optional[str] = None, *, validate: bool = True,
                     dialect: Optional[str] = None) -> Cfg:
    """Parse cfg text; ``path`` is only used in messages. ``dialect`` as in :func:`parse_cfg`."""
    path = str(path) if path is not None else None
    if dialect is not None and dialect not in DIALECTS:
        raise ValueError(f"unknown darknet dialect {dialect!r}; choose one of {', '.join(DIALECTS)}")
    sections: list[Section] = []
    crlf_line = None
    for lineno, raw in enumerate(text.split("\n"), 1):
        if raw.endswith("\r"):
            raw = raw[:-1]
            crlf_line = crlf_line or lineno
        line = raw.replace(" ", "").replace("\t", "")  # darknet's strip()
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            m = re.fullmatch(r"\[([^\[\]]+)\]", line)
            if not m:
                raise CfgError(f"bad section header {raw.strip()!r}", path, lineno)
            name = m.group(1)
            if name not in ALL_SECTION_ALIASES:
                refused = [d for d in DIALECTS if name in REFUSED_SECTIONS[d]]
                if refused:
                    raise CfgError(f"section [{name}] is a layer of {PROGRAMS[refused[0]]} that tritnet does not "
                                   f"support", path, lineno)
                raise CfgError(f"unknown section [{name}] (darknet: 'Type not recognized')", path, lineno)
            sections.append(Section(ALL_SECTION_ALIASES[name], line=lineno, path=path, header=name))
            continue
        if not sections:
            raise CfgError(f"option {raw.strip()!r} before the first [section]", path, lineno)
        key, eq, value = line.partition("=")
        if not eq or not key or not value:
            raise CfgError(f"expected key=value, got {raw.strip()!r} (darknet: 'Config file error')", path, lineno)
        sections[-1].options.append(Option(key, value, lineno))
    if crlf_line:
        _warn("CRLF line endings: pjreddie darknet keeps the '\\r' (it would misread this file)", path, crlf_line)
    if dialect is None:
        dialect, reason = detect_dialect(sections)
    else:
        reason = "given"
    for sec in sections:
        sec.dialect = dialect
        _check_section_name(sec)
    cfg = Cfg(sections, path, reason)
    if validate:
        validate_cfg(cfg)
    return cfg


def detect_dialect(sections) -> tuple[str, str]:
    """(dialect, reason) for a list of sections: "alexeyab" when a layer uses a section, a key or a value that
    AlexeyAB's darknet reads and pjreddie's (with darknetTWN's additions) does not; "pjreddie" otherwise.

    ``[net]`` keys do not decide: they set up training (AlexeyAB's mosaic=1 in a cfg that pjreddie's darknet runs
    as written is still that cfg), and warn as keys the dialect's darknet ignores. The reason names the first
    feature found, with file and line (``[route] groups=2 at yolov4-tiny.cfg:60``).
    """
    for sec in sections:
        if sec.type == "net":
            continue
        if sec.header not in SECTION_ALIASES_BY_DIALECT["pjreddie"]:
            return "alexeyab", f"[{sec.header}] at {sec.where()}"
        for o in sec.options:
            if _reads(sec, o, "pjreddie") or key_spec(sec.type, o.key, "alexeyab") is None:
                continue
            # a key only AlexeyAB has (whatever its value: a bad one is then refused as AlexeyAB's), or a value
            # only AlexeyAB reads (from=-1,-3, activation=mish)
            if key_spec(sec.type, o.key, "pjreddie") is None or _reads(sec, o, "alexeyab", by_name=True):
                return "alexeyab", f"[{sec.header}] {o.key}={o.value} at {_where(sec.path, o.line)}"
    return "pjreddie", "nothing in its layers is AlexeyAB's own"


def _reads(sec: Section, o: Option, dialect: str, by_name: bool = False) -> bool:
    """Whether ``dialect``'s darknet reads option ``o`` of ``sec`` and computes its value; ``by_name``: an
    activation it knows by name, wherever it computes it (a misplaced one is then refused in that dialect)."""
    spec = key_spec(sec.type, o.key, dialect)
    if spec is None:
        return False
    if spec[0] == "activation" and by_name:
        return o.value in ACTIVATIONS_BY_DIALECT[dialect]
    probe = Section(sec.type, dialect=dialect)
    try:
        _convert(spec[0], o.value, probe, o.key)
    except CfgError:
        return False
    return True


def _check_section_name(sec: Section) -> None:
    """A section the dialect's darknet does not know, or knows but tritnet refuses, is an error at its line."""
    d = sec.dialect
    refused = REFUSED_SECTIONS[d]
    if sec.header in refused:
        why = refused[sec.header]
        raise sec.error(why or f"a layer of {PROGRAMS[d]} that tritnet does not support")
    if sec.header not in SECTION_ALIASES_BY_DIALECT[d]:
        other = [x for x in DIALECTS if sec.header in SECTION_ALIASES_BY_DIALECT[x]]
        hint = f"; {PROGRAMS[other[0]]} reads it (--dialect {other[0]})" if other else ""
        raise sec.error(f"{PROGRAMS[d]} does not know this section ('Type not recognized'){hint}")


def validate_cfg(sections) -> list:
    """Check every section (keys, values, refused options) and infer shapes; returns the layer infos."""
    if not sections:
        raise CfgError("config file has no sections", getattr(sections, "path", None), None)
    first = sections[0]
    if first.type != "net":
        raise first.error("the first section must be [net] or [network]")
    if len(sections) < 2:
        raise first.error("the network has no layers")
    for s in sections:
        if s.dialect != first.dialect:
            raise s.error(f"this section is read as {s.dialect}'s but the [net] as {first.dialect}'s: one cfg has "
                          f"one dialect")
        _check_section(s, first_net=s is first)
    return infer_layers(sections, warn=True)


def _check_section(s: Section, first_net: bool) -> None:
    if s.type == "net" and not first_net:
        raise s.error("[net] must be the first section and appear only once")
    seen = {}
    d = s.dialect
    for o in s.options:
        if o.key in seen:
            _warn(f"[{s.header}]: duplicate key {o.key!r}; darknet uses the first value (line {seen[o.key]})",
                  s.path, o.line)
            continue
        seen[o.key] = o.line
        if key_spec(s.type, o.key, d) is None:
            other = [x for x in DIALECTS if x != d and key_spec(s.type, o.key, x) is not None]
            hint = f"; {PROGRAMS[other[0]]} reads it (--dialect {other[0]})" if other else ""
            _warn(f"[{s.header}]: unknown key {o.key!r} ({PROGRAMS[d]} ignores it: 'Unused field'{hint})",
                  s.path, o.line)
        else:
            s.param(o.key)  # raises CfgError on a bad value
    for key, (harmless, what) in REFUSED_VALUES[d].get(s.type, {}).items():
        if key in s and (harmless is None or s.param(key) != harmless):
            raise s.error(f"{key}={s.get(key)} ({what}) is not supported by tritnet", key)
    if s.type == "convolutional":
        if s.param("ternary") not in (0, 1):
            raise s.error(f"ternary must be 0 or 1, not {s.get('ternary')}", "ternary")
    elif s.type == "net":
        if not s.param("inputs") and not (s.param("height") and s.param("width") and s.param("channels")):
            raise s.error("no input size: set height, width and channels (darknet: 'No input parameters supplied')")
        if s.param("policy") == "steps":
            steps, scales = s.param("steps"), s.param("scales")
            if steps is None or scales is None:
                raise s.error("policy=steps needs both steps= and scales=", "policy")
            if len(scales) < len(steps):
                raise s.error(f"{len(steps)} steps but only {len(scales)} scales", "scales")


# ---- writing ---------------------------------------------------------------------------------------
def dump_cfg(sections, *, canonical: bool = False) -> str:
    """Cfg text: one ``[header]`` per section, ``key=value`` lines, a blank line between sections.

    Comments are not kept. Headers are written as read (``[max]`` stays ``[max]``) unless ``canonical``.
    Parsing the result gives the same sections and the same network.
    """
    out = []
    for s in sections:
        out.append(f"[{s.type if canonical else s.header}]")
        out.extend(f"{o.key}={o.value}" for o in s.options)
        out.append("")
    return "\n".join(out)


def set_ternary(sections, layers: Optional[Iterable[int]] = None, on: bool = True) -> list[int]:
    """Set (``on``) or clear ``ternary`` on the given layer indices (default: every conv layer).

    Indices are darknet layer indices (``sections[i + 1]``). A non-conv index is an error. Returns the
    indices changed.
    """
    body = list(sections[1:])
    if layers is None:
        layers = [i for i, s in enumerate(body) if s.type == "convolutional"]
    done = []
    for i in layers:
        if not 0 <= i < len(body):
            raise IndexError(f"layer {i} does not exist (the network has {len(body)} layers)")
        body[i].ternary = on
        done.append(i)
    return done


def ternary_layers(sections) -> list[int]:
    """Indices of the layers with ``ternary=1``."""
    return [i for i, s in enumerate(sections[1:]) if s.ternary]
