"""Ternarize an existing model in place, torchao style, and report what each layer became.

    tritnet.ternarize(model, method="twn", layers="all_but_first_last")
    print(tritnet.format_report(tritnet.ternary_report(model)))
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable, Iterable

import torch.nn as nn

from ..quant.configs import make_config
from .layers import TernaryConv2d, TernaryLinear, is_ternary

LayerSpec = str | Iterable[str] | Callable[[str, nn.Module], bool]
LAYER_CHOICES = ("all", "all_but_first_last")


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The Conv2d and Linear layers of a model (ternary or not), in definition order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def select_layers(model: nn.Module, layers: LayerSpec = "all") -> list[str]:
    """Names of the weight layers that ``layers`` picks; unknown names are errors with suggestions."""
    names = [n for n, _ in weight_layers(model)]
    if callable(layers):
        modules = dict(model.named_modules())
        return [n for n in names if layers(n, modules[n])]
    if isinstance(layers, str):
        if layers == "all":
            return names
        if layers in ("all_but_first_last", "inner"):
            return names[1:-1]
        layers = [s for s in layers.split(",") if s.strip()]
    chosen = [str(s).strip() for s in layers]
    for name in chosen:
        if name not in names:
            close = difflib.get_close_matches(name, names, n=3)
            hint = (f"; did you mean {', '.join(close)}?" if close else
                    f"; choose {' or '.join(LAYER_CHOICES)}, or names among: {', '.join(names)}")
            raise ValueError(f"no Conv2d/Linear layer named {name!r} in the model{hint}")
    return [n for n in names if n in set(chosen)]


def _set_module(model: nn.Module, name: str, new: nn.Module):
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def ternarize(model: nn.Module, method: str = "twn", layers: LayerSpec = "all", config=None,
              **options) -> nn.Module:
    """Swap the chosen Conv2d/Linear layers of ``model`` for ternary ones, in place; returns the model.

    method: "twn", "ttn" or "sttn" (options such as threshold=, per_channel=, t_ex= go to its config), or pass
    a ready ``config``. layers: "all", "all_but_first_last", a list (or comma-separated string) of module
    names, or a predicate ``f(name, module) -> bool``. Layers already ternary are re-configured; their float
    weights are kept.
    """
    cfg = config if config is not None else make_config(method, **options)
    for name in select_layers(model, layers):
        module = model.get_submodule(name)
        if is_ternary(module):
            module = module.to_float_shadow()
        cls = TernaryConv2d if isinstance(module, nn.Conv2d) else TernaryLinear
        _set_module(model, name, cls.from_float(module, cfg))
    return model


def merge_sttn_(model: nn.Module) -> nn.Module:
    """Fold every STTN pair in the model into one ternary layer with identical outputs, in place."""
    for name, module in weight_layers(model):
        if is_ternary(module) and module.config.method == "sttn":
            _set_module(model, name, module.merge())
    return model


@dataclass
class LayerReport:
    name: str
    kind: str
    params: int
    ternary: bool
    method: str = "float"
    sparsity: float | None = None
    scale: float | None = None


def ternary_report(model: nn.Module) -> list[LayerReport]:
    """One row per Conv2d/Linear layer: ternary or float, method, fraction of zeros, mean scale."""
    rows = []
    for name, m in weight_layers(model):
        kind = "conv" if isinstance(m, nn.Conv2d) else "linear"
        if is_ternary(m):
            terms = m.ternary_terms()
            scale = float(sum(s.float().mean() for _, s in terms))
            rows.append(LayerReport(name, kind, m.weight.numel(), True, m.config.method, m.sparsity(), scale))
        else:
            rows.append(LayerReport(name, kind, m.weight.numel(), False))
    return rows


def format_report(rows: list[LayerReport]) -> str:
    lines = [f"{'layer':<28} {'kind':<6} {'params':>9} {'method':<6} {'zeros':>6} {'scale':>9}"]
    for r in rows:
        zeros = f"{r.sparsity:6.1%}" if r.sparsity is not None else f"{'-':>6}"
        scale = f"{r.scale:9.4g}" if r.scale is not None else f"{'-':>9}"
        lines.append(f"{r.name:<28} {r.kind:<6} {r.params:>9,} {r.method:<6} {zeros} {scale}")
    n_t = sum(r.ternary for r in rows)
    lines.append(f"{n_t} of {len(rows)} layers ternary, "
                 f"{sum(r.params for r in rows if r.ternary):,} of {sum(r.params for r in rows):,} weights")
    return "\n".join(lines)
