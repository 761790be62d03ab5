"""The darknet file tools of the ``tritnet`` command: ``partial`` and ``info``, in darknet's argument order
(``partial CFG WEIGHTS OUT N``). ``add_parsers(subparsers)`` adds them; ``VERBS`` maps ``(verb, action)`` to the
function that runs one.
"""
from __future__ import annotations

import argparse
import json

from tritnet_rt.cliargs import existing_file, json_option, nonnegative_int, output_file

from .options import dialect_option as _dialect

def add_parsers(sub) -> None:
    p = sub.add_parser("partial", help="the first N layers of a .weights file, as `darknet partial`")
    p.add_argument("cfg", type=existing_file("cfg file"))
    p.add_argument("weights", type=existing_file("weights file"))
    p.add_argument("out", type=output_file("weights file to write"))
    p.add_argument("n", type=nonnegative_int, help="keep layers 0..N-1")
    p.add_argument("--zero-ternary", action="store_true",
                   help="write zeros for ternary=1 convs, as darknetTWN's partial does (its bug)")
    _dialect(p)

    i = sub.add_parser("info", help="darknet's layer table (filters, size, input -> output, BFLOPs, ternary)")
    i.add_argument("cfg", type=existing_file("cfg file"))
    i.add_argument("weights", type=existing_file("weights file"), nargs="?",
                   help="also check a .weights file against the cfg")
    json_option(i)
    _dialect(i)


def cmd_partial(a: argparse.Namespace) -> None:
    from ..darknet import parse_cfg, partial
    size = partial(parse_cfg(a.cfg, dialect=a.dialect), a.weights, a.out, a.n, zero_ternary=a.zero_ternary)
    print(f"Saving weights to {a.out} ({size} bytes)")


def cmd_info(a: argparse.Namespace) -> None:
    from dataclasses import asdict

    from ..darknet import layer_table, load_weights, parse_cfg
    from ..darknet._schema import DESCRIPTIONS
    cfg = parse_cfg(a.cfg, dialect=a.dialect)
    table = layer_table(cfg)
    w = load_weights(cfg, a.weights, prefix=True) if a.weights else None   # a prefix is reported as one
    why = "--dialect" if cfg.dialect_reason == "given" else cfg.dialect_reason
    if a.json:
        out = {"cfg": a.cfg, "dialect": cfg.dialect, "dialect_reason": why, "layers": [asdict(r) for r in table.rows],
               "total_params": table.total_params, "total_bflops": table.total_bflops}
        if w is not None:
            out["weights"] = {"path": a.weights, "header": asdict(w.header), "filled": w.filled,
                              "complete": w.complete, "end_layer": w.end_layer}
        print(json.dumps(out, indent=2))
        return
    print(f"Dialect: {cfg.dialect} (read as {DESCRIPTIONS[cfg.dialect]} read it: {why})")
    print(table)
    if w is not None:
        h = w.header
        state = "complete" if w.complete else f"a prefix: ends before layer {w.end_layer}"
        print(f"Weights: {a.weights}: v{h.major}.{h.minor}.{h.revision}, seen {h.seen}, "
              f"{w.filled} layers with values ({state})")


VERBS = {("partial", None): cmd_partial, ("info", None): cmd_info}
