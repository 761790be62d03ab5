"""Options several verbs share, defined once: the ternarizer (method, layers, threshold, per channel, TTN's
expansion) and the darknet dialect."""
from __future__ import annotations

import argparse

from tritnet_rt.cliargs import positive_float

DIALECTS = ("pjreddie", "alexeyab")     # tritnet.darknet.DIALECTS, without importing the package for --help


def dialect_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dialect", choices=DIALECTS, default=None,
                   help="read the cfg as this darknet reads it (default: decided by the file: alexeyab when a layer "
                        "uses something only AlexeyAB's darknet reads)")


def ternarizer_options(p: argparse.ArgumentParser, *, default_method=None, float_word: bool = False,
                       layers: bool = True, extra_methods=()) -> None:
    """--method (``float`` where a run may stay float), --layers (tritnet.layerspec), --threshold, --per-channel,
    --t-ex."""
    methods = ["twn", "ttn", "sttn", *extra_methods] + (["float"] if float_word else [])
    p.add_argument("--method", choices=methods, default=default_method,
                   help="ternarization method" + (" (float: none)" if float_word else "")
                        + ("" if default_method else " (default: the float model)"))
    if layers:
        p.add_argument("--layers", default=None,
                       help="the layers to ternarize (tritnet.layerspec): all | all_but_first_last | names | "
                            "indices | ranges such as 2-8 | fractions; a darknet cfg: its ternary=1 layers by default")
    p.add_argument("--threshold", type=positive_float, default=None, help="threshold factor (TWN 0.7, TTN 0.05)")
    p.add_argument("--per-channel", action="store_true", help="one scale per output channel (TWN/TTN)")
    p.add_argument("--t-ex", type=int, default=1, choices=[1, 2, 4], help="TTN residual expansion")


def _field_type(annotation: str) -> str:
    """``int`` from ``Optional[int]``, ``int | None`` or ``int``; ``tuple[float`` for tuples of floats."""
    kind = str(annotation).replace(" ", "")
    if kind.startswith("Optional[") and kind.endswith("]"):
        kind = kind[len("Optional["):-1]
    return kind.removesuffix("|None")


def config_options(p: argparse.ArgumentParser, cls, *, positional=(), skip=(), checks=None) -> None:
    """One option per field of the config dataclass ``cls`` (``--batch-size`` for ``batch_size``), its default,
    ``cls.CHOICES``, ``cls.RULES``, ``cls.HELP`` and ``cls.ALIASES`` (darknet's ``-clear`` for ``clear``), all
    declared on the config (tritnet.train.fields); ``positional`` fields are arguments (optional ones when the
    field has a default), ``checks`` add path checks ({field: type}). Booleans are flags: ``--x`` for a False
    default, ``--no-x`` for a True one."""
    import dataclasses
    checks = checks or {}
    helps, aliases = getattr(cls, "HELP", {}), getattr(cls, "ALIASES", {})
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        kind = _field_type(f.type)
        default = None if f.default is dataclasses.MISSING else f.default
        kw = {"help": helps.get(f.name)}
        if f.name in positional:
            if f.default is not dataclasses.MISSING:
                kw.update(nargs="?", default=default)
            p.add_argument(f.name, type=checks.get(f.name, str), **kw)
            continue
        flags = ["--" + f.name.replace("_", "-")] + ([aliases[f.name]] if f.name in aliases else [])
        if kind == "bool":
            if default:
                p.add_argument("--no-" + f.name.replace("_", "-"), dest=f.name, action="store_false", **kw)
            else:
                p.add_argument(*flags, action="store_true", **kw)
            continue
        rule = checks.get(f.name) or getattr(cls, "RULES", {}).get(f.name) or \
            (int if kind == "int" else float if kind == "float" or kind.startswith("tuple[float") else str)
        if kind.startswith("tuple"):
            kw.update(nargs="+", default=list(default))
        else:
            kw.update(default=default)
        if f.name in getattr(cls, "CHOICES", {}):
            kw["choices"] = cls.CHOICES[f.name]
            rule = type(cls.CHOICES[f.name][0])
        p.add_argument(*flags, type=rule, **kw)


def config_from_args(cls, a: argparse.Namespace, **given):
    """``cls`` built from the parsed options ``config_options`` made (lists back to tuples), ``given`` on top."""
    import dataclasses
    values = {}
    for f in dataclasses.fields(cls):
        if hasattr(a, f.name) and f.name not in given:
            v = getattr(a, f.name)
            values[f.name] = tuple(v) if isinstance(v, list) else v
    return cls(**values, **given)
