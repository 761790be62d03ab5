"""The checks a training config's fields must pass, declared once on the config and used twice: by the command
line (``tritnet.cli.options.config_options`` makes one option per field) and by the config's ``__post_init__``
(so a config built in Python, or by a stage's ``--set``, fails naming the field instead of training on NaN).

A config declares, as ClassVars: ``RULES`` {field: check} (tritnet_rt.cliargs' ``positive_int`` and kin),
``CHOICES`` {field: allowed values}, ``HELP`` {field: text} and ``ALIASES`` {field: darknet's single-dash flag}.
"""
from __future__ import annotations


def check_fields(config) -> None:
    """Run ``config.RULES`` and ``config.CHOICES`` on every field that is set; ValueError naming the field."""
    for name, rule in getattr(config, "RULES", {}).items():
        value = getattr(config, name)
        for v in value if isinstance(value, (tuple, list)) else (value,):
            if v is None:
                continue
            try:
                rule(v)
            except ValueError as e:
                raise ValueError(f"{name}: {e}") from None
    for name, allowed in getattr(config, "CHOICES", {}).items():
        value = getattr(config, name)
        if value is not None and value not in allowed:
            raise ValueError(f"{name}: {value!r} is not one of {', '.join(map(str, allowed))}")
