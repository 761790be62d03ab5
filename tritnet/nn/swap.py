"""Ternarize an existing model in place, torchao style, and report what each layer became.

    tritnet.ternarize_(model, method="twn", layers="all_but_first_last")
    tritnet.ternarize_(model, TWNConfig(per_channel=True), filter_fn=lambda m, fqn: fqn.startswith("layer3"))
    print(tritnet.format_report(tritnet.ternary_report(model)))

Layers are picked in the one syntax of ``tritnet.layerspec`` (indices, ranges, names, keywords, fractions).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

import torch.nn as nn

from ..layerspec import Layers, LayerSpecError
from ..quant.configs import make_config
from .layers import TernaryConv2d, TernaryLinear, is_ternary

LayerSpec = str | int | float | Iterable
FilterFn = Callable[[nn.Module, str], bool]


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The Conv2d and Linear layers of a model (ternary or not), in definition order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def classifier_layers(model, error: type = LayerSpecError) -> Layers:
    """The Conv2d/Linear layers of a PyTorch model, by position, names allowed; the last is the output."""
    wl = weight_layers(model)
    if not wl:
        raise error(f"{type(model).__name__}: no Conv2d/Linear layer to ternarize")
    ids = list(range(len(wl)))
    return Layers(ids, [n for n, _ in wl], [m.weight.numel() for _, m in wl], [0], [len(wl) - 1], {}, by_name=True,
                  error=error)


def select_layers(model: nn.Module, layers: LayerSpec = "all", filter_fn: Optional[FilterFn] = None) -> list[str]:
    """Names of the weight layers ``layers`` picks (``tritnet.layerspec``), kept where ``filter_fn(module, fqn)``
    is true; an unknown name or index is a ValueError with suggestions."""
    picked = classifier_layers(model)
    names = [picked.names[i] for i in picked.resolve(layers, "layers")]
    if filter_fn is None:
        return names
    modules = dict(model.named_modules())
    return [n for n in names if filter_fn(modules[n], n)]


def _set_module(model: nn.Module, name: str, new: nn.Module):
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def ternarize_(model: nn.Module, config=None, filter_fn: Optional[FilterFn] = None, *, method: str = "twn",
               layers: LayerSpec = "all", **options) -> nn.Module:
    """Swap the chosen Conv2d/Linear layers of ``model`` for ternary ones, in place (torchao's ``quantize_``);
    returns the model.

    ``config``: a ready ternarizer config (``TWNConfig(...)``, ``TTNConfig``, ``STTNConfig``), else ``method``
    ("twn", "ttn", "sttn") with its ``options`` (threshold=, per_channel=, t_ex=, ...). ``layers``: a layer spec
    (``tritnet.layerspec``: "all", "all_but_first_last", names, indices, ranges, fractions); ``filter_fn(module,
    fqn)`` further narrows it, as torchao's. Layers already ternary are re-configured; their float weights kept.
    """
    if callable(layers):
        raise TypeError("layers= takes a layer spec; pass a predicate as filter_fn(module, fqn)")
    cfg = config if config is not None else make_config(method, **options)
    for name in select_layers(model, layers, filter_fn):
        module = model.get_submodule(name)
        if is_ternary(module):
            module = module.to_float_shadow()
        cls = TernaryConv2d if isinstance(module, nn.Conv2d) else TernaryLinear
        _set_module(model, name, cls.from_float(module, cfg))
    return model


def ternarize(model: nn.Module, method: str = "twn", layers="all", config=None, **options) -> nn.Module:
    """Deprecated name of :func:`ternarize_` (it changes the model in place); a predicate given as ``layers``
    takes ``(name, module)`` as it used to."""
    warnings.warn("tritnet.ternarize is deprecated; use tritnet.ternarize_ (same arguments, filter_fn(module, fqn) "
                  "for predicates)", DeprecationWarning, stacklevel=2)
    filter_fn = None
    if callable(layers):
        predicate, layers = layers, "all"
        filter_fn = lambda module, fqn: predicate(fqn, module)  # noqa: E731
    return ternarize_(model, config, filter_fn, method=method, layers=layers, **options)


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
