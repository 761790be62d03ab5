"""Which layers a stage makes ternary: the weight layers of a model, the seeds' order, and layer specs.

A :class:`Layers` lists a model's weight layers: the ``[convolutional]`` sections of a darknet cfg (by
darknet layer index; ``ternary=1`` exists only there) or the Conv2d/Linear modules of a classifier (by
position in ``tritnet.nn.weight_layers``, names allowed).

The automatic order is the one the seeds' yolov2 plan follows (methods.md §1.7): the layers next to the
detector first, then the late backbone, then the early backbone; the first layer and the output layers
(the convs feeding a [region]/[yolo], or a classifier's last layer) come last. That is the cfg order
reversed, with the first and output layers moved to the end; on yolov2-voc its first 4, 14 and 21 of 23
layers are exactly the seeds' M0, M1 and M2. A fraction ``f`` takes the first f·N of it (rounded half up,
at least one).

Spec items: ``23`` (an index), ``"12-16"`` (the weight layers in a range), ``"layer3.0.conv1"`` (a name),
``all``, ``first``, ``last``, ``0.4`` or ``"40%"`` (a fraction); a list or a comma-separated string of them.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .errors import PlanError, did_you_mean

__all__ = ["Layers", "parse_spec", "darknet_layers", "classifier_layers"]

_RANGE = re.compile(r"(\d+)\s*-\s*(\d+)")
_INDEX = re.compile(r"\d+")
_PERCENT = re.compile(r"(\d+(?:\.\d*)?)\s*%")
KEYWORDS = ("all", "first", "last")


def parse_spec(spec, where: str) -> list[tuple]:
    """Items of a spec as (kind, value): ("index", 23), ("range", (12, 16)), ("fraction", .4), ("name", s),
    ("keyword", "all"). Only the syntax is checked here; PlanError names ``where`` on a bad item."""
    if spec is None:
        raise PlanError(f"{where}: missing")
    items = spec if isinstance(spec, list) else [spec]
    out = []
    for item in items:
        if isinstance(item, str) and "," in item:
            out += parse_spec([s for s in item.split(",") if s.strip()], where)
            continue
        out.append(_parse_item(item, where))
    return out


def _parse_item(item, where):
    if isinstance(item, bool) or not isinstance(item, (int, float, str)):
        raise PlanError(f"{where}: {item!r} is not a layer index, range, name, keyword or fraction")
    if isinstance(item, int):
        if item < 0:
            raise PlanError(f"{where}: layer index {item} is negative")
        return ("index", item)
    if isinstance(item, float):
        return ("fraction", _fraction(item, item, where))
    s = item.strip()
    if s in KEYWORDS:
        return ("keyword", s)
    if _INDEX.fullmatch(s):
        return ("index", int(s))
    if m := _RANGE.fullmatch(s):
        a, b = int(m.group(1)), int(m.group(2))
        if a > b:
            raise PlanError(f"{where}: range {s!r} runs backwards")
        return ("range", (a, b))
    if m := _PERCENT.fullmatch(s):
        return ("fraction", _fraction(float(m.group(1)) / 100, s, where))
    if re.fullmatch(r"[+-]?\d*\.\d+|[+-]?\d+\.\d*", s):
        return ("fraction", _fraction(float(s), s, where))
    if not re.fullmatch(r"[A-Za-z_][\w.]*", s):
        raise PlanError(f"{where}: {s!r} is not a layer index, range, name, keyword or fraction")
    return ("name", s)


def _fraction(f: float, shown, where) -> float:
    if not 0.0 < f <= 1.0:
        raise PlanError(f"{where}: fraction {shown!r} is out of range (0, 1]")
    return f


@dataclass
class Layers:
    """A model's weight layers: ``ids`` (darknet indices or positions), display names, weights per layer."""
    ids: list
    names: list
    params: list
    first: list                  # the input layer
    outputs: list                # the output layers (detector convs / the classifier's last layer)
    kinds: dict                  # darknet: {index: section type} of every layer, for messages
    by_name: bool                # classifier: names are valid items

    def auto_order(self) -> list:
        """The seeds' order: reversed cfg order, first and output layers last."""
        tail = [i for i in self.ids if i in self.first] + [i for i in self.ids if i in self.outputs
                                                             and i not in self.first]
        return [i for i in reversed(self.ids) if i not in tail] + tail

    def take_fraction(self, f: float) -> list:
        n = len(self.ids)
        return self.auto_order()[:max(1, min(n, math.floor(f * n + 0.5)))]

    def name_of(self, i) -> str:
        return self.names[self.ids.index(i)]

    def resolve(self, spec, where: str) -> list:
        """The sorted ids a spec picks; PlanError (naming ``where``) for a layer that does not exist or
        cannot be ternary."""
        chosen = set()
        for kind, v in parse_spec(spec, where):
            if kind == "keyword":
                chosen |= set(self.ids if v == "all" else self.first if v == "first" else self.outputs)
            elif kind == "fraction":
                chosen |= set(self.take_fraction(v))
            elif kind == "index":
                chosen.add(self._index(v, where))
            elif kind == "range":
                picked = [i for i in self.ids if v[0] <= i <= v[1]]
                if not picked:
                    raise PlanError(f"{where}: no weight layer in {v[0]}-{v[1]}")
                chosen |= set(picked)
            else:
                chosen.add(self._name(v, where))
        return sorted(chosen)

    def _index(self, i: int, where: str):
        if i in self.ids:
            return i
        if self.kinds and 0 <= i < len(self.kinds):
            raise PlanError(f"{where}: layer {i} is a [{self.kinds[i]}]; only [convolutional] layers can be "
                            f"ternary")
        total = len(self.kinds) if self.kinds else len(self.ids)
        raise PlanError(f"{where}: layer {i} does not exist (the model has {total} layers"
                        f"{', ' + str(len(self.ids)) + ' with weights' if self.kinds else ''})")

    def _name(self, name: str, where: str):
        if not self.by_name:
            raise PlanError(f"{where}: {name!r}: darknet layers are chosen by index, range ('12-16'), "
                            f"fraction or {', '.join(KEYWORDS)}")
        if name not in self.names:
            raise PlanError(f"{where}: no Conv2d/Linear layer named {name!r}{did_you_mean(name, self.names)}")
        return self.ids[self.names.index(name)]


def darknet_layers(cfg) -> Layers:
    """The conv layers of a parsed darknet cfg; outputs are the convs feeding a [region]/[yolo] (else the
    last conv, as in a darknet classifier)."""
    from ..darknet import infer_layers
    infos = infer_layers(cfg)
    convs = [i for i in infos if i.type == "convolutional"]
    if not convs:
        raise PlanError(f"{cfg.path}: no [convolutional] layer to ternarize")
    ids = [i.index for i in convs]
    heads = [i.index - 1 for i in infos if i.type in ("region", "yolo") and i.index - 1 in ids]
    names = [f"{i.index} conv {i.attrs['filters']} {i.attrs['size']}x{i.attrs['size']}/{i.attrs['stride']}"
             for i in convs]
    return Layers(ids, names, [i.attrs["nweights"] for i in convs], [ids[0]], heads or [ids[-1]],
                  {i.index: i.type for i in infos}, by_name=False)


def classifier_layers(model) -> Layers:
    from ..nn import weight_layers
    wl = weight_layers(model)
    if not wl:
        raise PlanError(f"{type(model).__name__}: no Conv2d/Linear layer to ternarize")
    ids = list(range(len(wl)))
    return Layers(ids, [n for n, _ in wl], [m.weight.numel() for _, m in wl], [0], [len(wl) - 1], {}, by_name=True)
