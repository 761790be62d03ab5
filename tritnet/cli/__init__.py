"""The ``tritnet`` command: argv → one library call per verb, darknet style (``tritnet classifier train …``).

One module per verb family, each with ``add_parsers(sub)`` and ``VERBS``: ``classifier`` (demo, classifier train |
valid | predict, models), ``detector`` (detector test | train | map | recall | valid | calc_anchors, voc_label),
``darknet`` (info, partial), ``stage``, ``export`` (export, run, bench); ``options`` holds the options several
share (ternarizer, dialect, and the training options generated from a config dataclass).

Every verb that reports figures prints them as JSON with ``--json``. Errors the user can fix (a bad file, an
unknown name, a number out of range) print one line naming the file or option and exit with status 2, without a
traceback: paths and numbers are checked when the command line is read (``tritnet_rt.cliargs``, shared with
``tritnet-rt``), everything else raises a ValueError naming its file or field. Skipped data entries (an
undecodable image, a bad box) print one ``warning: …`` line each.
"""
from __future__ import annotations

import argparse
import sys
import warnings

from tritnet_rt.cliargs import Parser, run_main

from . import classifier as classifier_cli, darknet as darknet_cli, detector as detector_cli, export as export_cli
from . import stage as stage_cli


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="tritnet", description="Ternary-weight networks: train and evaluate classifiers and darknet "
        "detectors, ternarize in stages, export packed files and run them on the CPU.")
    from tritnet import __version__
    parser.add_argument("--version", action="version", version=f"tritnet {__version__}")
    sub = parser.add_subparsers(dest="verb", required=True)

    classifier_cli.add_parsers(sub)
    detector_cli.add_parsers(sub)
    darknet_cli.add_parsers(sub)
    stage_cli.add_parsers(sub)
    export_cli.add_parsers(sub)
    return parser


# ---------------------------------------------------------------------------------------------- verbs

VERBS = {**classifier_cli.VERBS, **detector_cli.VERBS, **darknet_cli.VERBS, **stage_cli.VERBS, **export_cli.VERBS}


def _plain_warnings() -> None:
    """tritnet's warnings print as one line each (``warning: FILE: problem; skipped``), not as a source
    listing: the file at fault is the user's data or cfg, not tritnet's."""
    original = warnings.formatwarning
    if getattr(original, "tritnet_plain", False):
        return

    def fmt(message, category, filename, lineno, line=None):
        # tritnet's own warnings (data entries skipped, cfg keys darknet ignores) name the user's file and line
        # in their message: one line, without the tritnet source line that raised them
        if category.__module__.split(".")[0] in ("tritnet", "tritnet_rt"):
            return f"warning: {message}\n"
        return original(message, category, filename, lineno, line)
    fmt.tritnet_plain = True
    warnings.formatwarning = fmt


def main(argv=None) -> int:
    _plain_warnings()
    # Every user-fixable error in tritnet is a ValueError that names its file or field; OSError covers a file
    # the checks could not foresee (a disk that fills up); FloatingPointError is a diverging training run.
    return run_main("tritnet", lambda: build_parser().parse_args(argv),
                    lambda a: VERBS[(a.verb, getattr(a, "action", None))](a),
                    errors=(ValueError, OSError, FloatingPointError))


if __name__ == "__main__":
    sys.exit(main())
