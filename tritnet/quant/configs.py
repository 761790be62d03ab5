"""Ternarization settings: one plain dataclass per method, and a registry from method name to config.

A config says *how* to ternarize a layer; which layers get ternarized is chosen by ``tritnet.ternarize_``.
"No ternarization" is ``None`` in the library; the command line's ``float`` (and the older ``none``) mean it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class TWNConfig:
    """Ternary Weight Networks / darknetTWN: Δ = threshold·mean|W|, identity straight-through gradient."""
    threshold: float = 0.7
    per_channel: bool = False
    method = "twn"

    def __post_init__(self):
        if not 0 < self.threshold < 10:
            raise ValueError(f"TWN threshold factor must be in (0, 10), got {self.threshold}")


@dataclass(frozen=True)
class TTNConfig:
    """He et al.'s TTN: Δ = threshold·max|W|, gradient zeroed where |W| ≥ clip; t_ex > 1 adds the
    Residual Expansion Layer (t_ex ternary tensors at thresholds 0.05, 0.1, 0.15, 0.2)."""
    threshold: float = 0.05
    per_channel: bool = False
    t_ex: int = 1
    clip: float = 1.0
    method = "ttn"

    def __post_init__(self):
        if not 0 < self.threshold < 1:
            raise ValueError(f"TTN threshold factor must be in (0, 1), got {self.threshold}")
        if self.t_ex not in (1, 2, 4):
            raise ValueError(f"TTN t_ex must be 1, 2 or 4, got {self.t_ex}")
        if self.t_ex > 1 and self.threshold != 0.05:
            raise ValueError(f"TTN with t_ex={self.t_ex} uses the residual expansion's own thresholds "
                             f"(0.05, 0.1, 0.15, 0.2); threshold={self.threshold} would be ignored")


@dataclass(frozen=True)
class STTNConfig:
    """Soft Threshold Ternary Networks: two binary filters per ternary filter, per-channel scale.

    ``init_threshold`` sets how a float layer is split into the pair when converted (``sttn_split``): the
    pair starts as the per-channel TWN ternarization of the float layer with that threshold factor, codes and
    values, instead of from random filters. ``clip`` is the straight-through window of sign: a float weight
    with |W| > clip gets no gradient through its sign (the paper's 1[|W| ≤ 1]; the weights are not clamped).
    """
    init_threshold: float = 0.7
    clip: float = 1.0
    method = "sttn"

    def __post_init__(self):
        if not 0 < self.init_threshold < 10:
            raise ValueError(f"STTN init_threshold must be in (0, 10), got {self.init_threshold}")
        if not self.clip > 0:
            raise ValueError(f"STTN clip must be positive, got {self.clip}")


METHODS = {"twn": TWNConfig, "ttn": TTNConfig, "sttn": STTNConfig}
FLOAT = "float"                     # the command line's word for no ternarization


def method_name(method: Optional[str]) -> Optional[str]:
    """None for no ternarization (None, "float", "none"); otherwise the method's name, lower case (any other
    word is kept: ``make_config`` and darknet's ``darknettwn`` check it where it is used)."""
    if method is None or str(method).lower() in (FLOAT, "none"):
        return None
    return str(method).lower()


def ternarizer_options(method: Optional[str], *, per_channel: bool = False, threshold: Optional[float] = None,
                       t_ex: Optional[int] = None) -> dict:
    """The config options a command line's settings give ``method``: per-channel scales (TWN, TTN; STTN's scale
    is per channel by construction), the threshold factor, TTN's residual expansion. Nothing for a float build."""
    method = method_name(method)
    if method is None:
        return {}
    opts = {}
    if per_channel:
        if method not in ("twn", "ttn"):
            raise ValueError(f"per-channel scales are an option of twn and ttn, not of {method}")
        opts["per_channel"] = True
    if threshold is not None:
        opts["threshold" if method != "sttn" else "init_threshold"] = threshold
    if t_ex is not None and t_ex != 1:
        if method != "ttn":
            raise ValueError(f"t_ex (the residual expansion) is an option of ttn, not of {method}")
        opts["t_ex"] = t_ex
    return opts


def make_config(method: str, **options):
    """Config for a method by name, e.g. ``make_config("ttn", t_ex=2)``; unknown names are clear errors."""
    key = str(method).lower()
    if key not in METHODS:
        raise ValueError(f"unknown ternarization method {method!r}; choose one of {', '.join(METHODS)}")
    cls = METHODS[key]
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for method {key!r}; it takes {sorted(fields)}")
    return cls(**options)


def config_to_dict(config) -> dict:
    return {"method": config.method, **dataclasses.asdict(config)}


def config_from_dict(d: dict):
    d = dict(d)
    return make_config(d.pop("method"), **d)
