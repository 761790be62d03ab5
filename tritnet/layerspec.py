"""Which weight layers a spec picks, in one syntax for ``ternarize_``, darknet classifiers, the CLI's
``--layers`` and staged plans. No torch.

Spec items: ``23`` (an index), ``"12-16"`` (the weight layers in a range), ``"layer3.0.conv1"`` (a module
name, PyTorch models only; a number that is a module's name, as in ``nn.Sequential``, means that module),
``all``, ``first``, ``last``, ``all_but_first_last`` (alias ``inner``: every layer but the first and the output
layers), ``0.4`` or ``"40%"`` (a fraction, in the seeds' order); a list or a comma-separated string of them.

A :class:`Layers` lists a model's weight layers: the ``[convolutional]`` sections of a darknet cfg (by darknet
layer index, ``tritnet.darknet.darknet_layers``) or the Conv2d/Linear modules of a PyTorch model (by position
in ``weight_layers``, names allowed, ``tritnet.nn.classifier_layers``).

The seeds' order (fractions, automatic stage plans, methods.md §1.7): the layers next to the detector first,
then the late backbone, then the early backbone; the first layer and the output layers (the convs feeding a
[region]/[yolo], or a classifier's last layer) come last. That is the cfg order reversed, with the first and
output layers moved to the end; on yolov2-voc its first 4, 14 and 21 of 23 layers are exactly the seeds' M0,
M1 and M2. A fraction ``f`` takes the first f·N of it (rounded half up, at least one).
"""
from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass

__all__ = ["Layers", "LayerSpecError", "parse_spec", "did_you_mean", "KEYWORDS"]


class LayerSpecError(ValueError):
    """A layer spec that picks nothing valid; the message starts with where the spec came from."""


def did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=2)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else \
        f"; known: {', '.join(sorted(map(str, choices)))}"


_RANGE = re.compile(r"(\d+)\s*-\s*(\d+)")
_INDEX = re.compile(r"\d+")
_PERCENT = re.compile(r"(\d+(?:\.\d*)?)\s*%")
KEYWORDS = ("all", "first", "last", "all_but_first_last", "inner")


def parse_spec(spec, where: str, error: type = LayerSpecError) -> list[tuple]:
    """Items of a spec as (kind, value): ("index", 23), ("range", (12, 16)), ("fraction", .4), ("name", s),
    ("keyword", "all"). Only the syntax is checked here; ``error`` names ``where`` on a bad item."""
    if spec is None:
        raise error(f"{where}: missing")
    items = spec if isinstance(spec, list) else [spec]
    out = []
    for item in items:
        if isinstance(item, str) and "," in item:
            out += parse_spec([s for s in item.split(",") if s.strip()], where, error)
            continue
        out.append(_parse_item(item, where, error))
    return out


def _parse_item(item, where, error):
    if isinstance(item, bool) or not isinstance(item, (int, float, str)):
        raise error(f"{where}: {item!r} is not a layer index, range, name, keyword or fraction")
    if isinstance(item, int):
        if item < 0:
            raise error(f"{where}: layer index {item} is negative")
        return ("index", item)
    if isinstance(item, float):
        return ("fraction", _fraction(item, item, where, error))
    s = item.strip()
    if s in KEYWORDS:
        return ("keyword", s)
    if _INDEX.fullmatch(s):
        return ("index", int(s))
    if m := _RANGE.fullmatch(s):
        a, b = int(m.group(1)), int(m.group(2))
        if a > b:
            raise error(f"{where}: range {s!r} runs backwards")
        return ("range", (a, b))
    if m := _PERCENT.fullmatch(s):
        return ("fraction", _fraction(float(m.group(1)) / 100, s, where, error))
    if re.fullmatch(r"[+-]?\d*\.\d+|[+-]?\d+\.\d*", s):
        return ("fraction", _fraction(float(s), s, where, error))
    if not re.fullmatch(r"[A-Za-z_][\w.]*", s):
        raise error(f"{where}: {s!r} is not a layer index, range, name, keyword or fraction")
    return ("name", s)


def _fraction(f: float, shown, where, error) -> float:
    if not 0.0 < f <= 1.0:
        raise error(f"{where}: fraction {shown!r} is out of range (0, 1]")
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
    error: type = LayerSpecError  # what a bad spec raises (the stage runner's PlanError)

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
        """The sorted ids a spec picks; ``error`` (naming ``where``) for a layer that does not exist or
        cannot be ternary."""
        chosen = set()
        for kind, v in parse_spec(spec, where, self.error):
            if kind == "keyword":
                chosen |= set(self.keyword(v))
            elif kind == "fraction":
                chosen |= set(self.take_fraction(v))
            elif kind == "index" and self.by_name and str(v) in self.names:    # nn.Sequential's "0", "3"
                chosen.add(self._name(str(v), where))
            elif kind == "index":
                chosen.add(self._index(v, where))
            elif kind == "range":
                picked = [i for i in self.ids if v[0] <= i <= v[1]]
                if not picked:
                    raise self.error(f"{where}: no weight layer in {v[0]}-{v[1]}")
                chosen |= set(picked)
            else:
                chosen.add(self._name(v, where))
        return sorted(chosen)

    def keyword(self, word: str) -> list:
        if word == "all":
            return list(self.ids)
        if word in ("all_but_first_last", "inner"):       # the first layer and the output layers stay float
            return [i for i in self.ids if i not in self.first and i not in self.outputs]
        return list(self.first if word == "first" else self.outputs)

    def _index(self, i: int, where: str):
        if i in self.ids:
            return i
        if self.kinds and 0 <= i < len(self.kinds):
            raise self.error(f"{where}: layer {i} is a [{self.kinds[i]}]; only [convolutional] layers can be "
                            f"ternary")
        total = len(self.kinds) if self.kinds else len(self.ids)
        raise self.error(f"{where}: layer {i} does not exist (the model has {total} layers"
                        f"{', ' + str(len(self.ids)) + ' with weights' if self.kinds else ''})")

    def _name(self, name: str, where: str):
        if not self.by_name:
            raise self.error(f"{where}: {name!r}: darknet layers are chosen by index, range ('12-16'), "
                            f"fraction or {', '.join(KEYWORDS)}")
        if name not in self.names:
            raise self.error(f"{where}: no Conv2d/Linear layer named {name!r}{did_you_mean(name, self.names)}")
        return self.ids[self.names.index(name)]
