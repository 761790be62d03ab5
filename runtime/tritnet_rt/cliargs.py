"""What the ``tritnet`` and ``tritnet-rt`` commands check on their command line, and how they fail.

A user mistake (a folder where a file belongs, ``--threads 0``, ``--lr nan``) stops before any work with one
line, ``PROG: error: …``, naming the option or the file, and exit status 2: never a traceback. The checks are
argparse ``type=`` helpers, so every verb applies the same rule to the same kind of value::

    p.add_argument("--threads", type=positive_int)
    p.add_argument("cfg", type=existing_file("cfg file"))

No PyTorch here (and no tritnet): the runtime installs and runs alone, and tritnet uses these too.
"""
from __future__ import annotations

import argparse
import math
import os
import re
import sys
from pathlib import Path
from typing import Callable

__all__ = ["UsageError", "Parser", "run_main", "out_of_memory", "json_option", "threads_option", "positive_int",
           "nonnegative_int", "positive_float", "nonnegative_float", "finite_float", "fraction", "existing_file",
           "existing_dir", "existing_path", "output_file", "output_dir", "device_ids", "darknet_ignored",
           "add_prediction_options"]


class UsageError(argparse.ArgumentTypeError, ValueError):
    """A bad value. argparse shows it as ``argument --x: …``; raised by a verb, it is a ValueError like every
    other error the user can fix, and ``run_main`` prints it the same way."""


# ---------------------------------------------------------------------------------------------- numbers
# Each takes the text of the command line (or any value, through str(): the library checks its settings
# with the same rules) and returns the number.

def _number(text, kind, ok: Callable, want: str):
    try:
        value = kind(str(text).strip())
    except ValueError:
        raise UsageError(f"expected {want}, got {str(text)!r}") from None
    if not ok(value):
        raise UsageError(f"must be {want}, got {str(text)!r}")
    return value


def positive_int(text) -> int:
    return _number(text, int, lambda v: v >= 1, "an integer >= 1")


def nonnegative_int(text) -> int:
    return _number(text, int, lambda v: v >= 0, "an integer >= 0")


def positive_float(text) -> float:
    return _number(text, float, lambda v: math.isfinite(v) and v > 0, "a finite number > 0")


def nonnegative_float(text) -> float:
    return _number(text, float, lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0")


def finite_float(text) -> float:
    return _number(text, float, math.isfinite, "a finite number")


def fraction(text) -> float:
    """Thresholds and IoUs: a number in [0, 1]."""
    return _number(text, float, lambda v: 0 <= v <= 1, "a number between 0 and 1")


def device_ids(text) -> str:
    """``--gpus 0,1``: device numbers, comma-separated (whether they exist is the trainer's question)."""
    ids = [t.strip() for t in str(text).split(",") if t.strip()]
    if not ids or not all(t.isdigit() for t in ids):
        raise UsageError(f"expected device numbers such as 0 or 0,1, got {str(text)!r}")
    return ",".join(ids)


# ---------------------------------------------------------------------------------------------- paths
# Factories: ``existing_file("weights file")`` is the type; ``what`` names the file in the message. Each
# returns the text as given, since the verbs pass paths on as strings.

def _readable(text: str, what: str) -> str:
    if not os.access(text, os.R_OK):
        raise UsageError(f"{text}: cannot read the {what} (permission denied)")
    return text


def existing_file(what: str = "file") -> Callable[[str], str]:
    def check(text: str) -> str:
        p = Path(text)
        if p.is_dir():
            raise UsageError(f"{text}: is a folder, not a {what}")
        if not p.is_file():
            raise UsageError(f"{text}: no such {what}")
        return _readable(text, what)
    return check


def existing_dir(what: str = "folder") -> Callable[[str], str]:
    def check(text: str) -> str:
        p = Path(text)
        if p.exists() and not p.is_dir():
            raise UsageError(f"{text}: is a file, not a {what}")
        if not p.is_dir():
            raise UsageError(f"{text}: no such {what}")
        return _readable(text, what)
    return check


def existing_path(what: str = "file or folder") -> Callable[[str], str]:
    def check(text: str) -> str:
        if not Path(text).exists():
            raise UsageError(f"{text}: no such {what}")
        return _readable(text, what)
    return check


def _writable_folder(text: str, folder: Path) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{text}: the folder {folder} is not writable")


def output_file(what: str = "output file", empty_ok: bool = False) -> Callable[[str], str]:
    """A file to write: not a folder, in a folder that exists and is writable. ``empty_ok``: '' means
    "do not write it" (``--out ''``)."""
    def check(text: str) -> str:
        if text == "" and empty_ok:
            return text
        p = Path(text)
        if p.is_dir() or text.endswith(("/", os.sep)):
            raise UsageError(f"{text}: is a folder; give a file name for the {what}")
        folder = p.parent
        if not folder.is_dir():
            raise UsageError(f"{text}: no such folder {folder} for the {what}")
        _writable_folder(text, folder)
        return text
    return check


def output_dir(what: str = "output folder") -> Callable[[str], str]:
    """A folder to write into, made if missing: neither it nor the nearest folder above it is a file, and the
    nearest existing one is writable."""
    def check(text: str) -> str:
        p = Path(text).absolute()
        if p.exists() and not p.is_dir():
            raise UsageError(f"{text}: is a file, not a {what}")
        while not p.exists():
            p = p.parent
        if not p.is_dir():
            raise UsageError(f"{text}: {p} is a file, so the {what} cannot be made")
        _writable_folder(text, p)
        return text
    return check


# ---------------------------------------------------------------------------------------------- main

class Parser(argparse.ArgumentParser):
    """argparse's own errors (a missing argument, a bad choice, a failed type check) become one UsageError
    line for ``run_main`` to print, instead of a usage block and an exit from inside the parser. An option
    this verb does not know says so with the closest one it does know (``-thres`` → ``--thresh``)."""

    def error(self, message):
        import re
        # an option with a darknet alias is named by its long form alone: "argument --out", not "--out/-out_filename"
        message = re.sub(r"(--[\w-]+)(?:/-[\w-]+)+", r"\1", message)
        raise UsageError(f"{message} (see {self.prog} --help)")

    def parse_known_args(self, args=None, namespace=None):
        ns, extras = super().parse_known_args(args, namespace)
        if extras:              # the innermost parser that saw them answers, with its own options as hints
            raise UsageError(self._unrecognized(extras))
        return ns, extras

    def _unrecognized(self, extras) -> str:
        import difflib

        def norm(option: str) -> str:
            return option.lstrip("-").replace("_", "-").lower()
        known = {}
        for action in self._actions:
            if action.help == argparse.SUPPRESS and not isinstance(action, _DarknetIgnored):
                continue
            strings = action.option_strings
            if strings:
                shown = next((o for o in strings if o.startswith("--")), strings[0])
                for o in strings:
                    known.setdefault(norm(o), shown)
        flags = [e for e in extras if e.startswith("-") and len(e) > 1 and not _looks_negative(e)]
        hint = ""
        if flags:
            flag = flags[0].split("=", 1)[0]
            close = difflib.get_close_matches(norm(flag), list(known), n=1, cutoff=0.6)
            hint = f"; did you mean {known[close[0]]}?" if close else "; this verb has no such option"
        what = "argument" if len(extras) == 1 else "arguments"
        return f"unrecognized {what}: {' '.join(extras)}{hint} (see {self.prog} --help)"


def _looks_negative(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


class _DarknetIgnored(argparse.Action):
    """A darknet flag that means nothing here: accepted, with one ``note:`` line saying why."""

    def __init__(self, option_strings, dest, why: str = "", **kw):
        self.why = why
        super().__init__(option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"note: {option_string} ignored: {self.why}", file=sys.stderr)


def json_option(p: argparse.ArgumentParser, what: str = "print the result as JSON") -> None:
    """``--json``, the same flag on every verb that reports figures."""
    p.add_argument("--json", action="store_true", help=what)


def threads_option(p: argparse.ArgumentParser, default=None) -> None:
    """``--threads N``: the runtime's (and the compared tools') thread count."""
    p.add_argument("--threads", type=positive_int, default=default,
                   help="threads (default: " + (str(default) if default else "the runtime's, up to 8") + ")")


def darknet_ignored(p: argparse.ArgumentParser, flag: str, why: str, takes_value: bool = False) -> None:
    """Accept darknet's ``flag`` (e.g. ``-dont_show``) and ignore it with a note giving ``why``."""
    p.add_argument(flag, action=_DarknetIgnored, why=why, nargs=1 if takes_value else 0, help=argparse.SUPPRESS)


NO_WINDOW = "tritnet never opens a window (the pictures go into the run folder)"


def add_prediction_options(p: argparse.ArgumentParser, save_default, video: bool, sources: bool = True) -> None:
    """What every predicting verb takes after its model: the inputs, where the pictures go, JSON lines, and
    darknet's flags that only matter with a display. ``save_default``: True (detectors: --no-save), False
    (classifiers: --save) or None (either, decided by the model: ``prediction_kwargs(a, save_default)``)."""
    if sources:
        p.add_argument("sources", nargs="*" if video else "+", metavar="SOURCE",
                       help="images, folders, globs, darknet lists (.txt)" + (", videos or a camera index"
                                                                             if video else ""))
    if video:
        p.add_argument("--camera", "-c", type=nonnegative_int, action="append", default=[],
                       help="camera index (as darknet's -c; the same as giving the index as a SOURCE)")
        p.add_argument("--frames", type=positive_int, default=None,
                       help="stop each video or camera after this many frames (default: to the end; a camera "
                            "until Ctrl-C)")
    p.add_argument("--out", "-out_filename", type=output_file("image with the boxes", empty_ok=True), default=None,
                   help="one input: write its picture (or video) to this file instead of the run folder ('' to "
                        "write nothing)")
    if save_default is not False:
        p.add_argument("--no-save", dest="save", action="store_false", default=save_default,
                       help="write no pictures (default for detectors: the pictures with their boxes go into the "
                            "run folder)")
    if save_default is not True:
        p.add_argument("--save", dest="save", action="store_true", default=save_default,
                       help="classifiers: also write each picture with its top classes into the run folder")
    p.add_argument("--project", type=output_dir("project folder"), default="runs",
                   help="the run folder is PROJECT/NAME (default runs/predict; runs/predict2, … when it exists)")
    p.add_argument("--name", default="predict", help="run folder name (default predict)")
    p.add_argument("--exist-ok", action="store_true", help="write into PROJECT/NAME even if it exists")
    json_option(p, "print one JSON line per picture")
    darknet_ignored(p, "-dont_show", NO_WINDOW)


def prediction_kwargs(a: argparse.Namespace, save_default: bool = False) -> dict:
    """The keyword arguments of ``tritnet_rt.sources.predict`` from the options above."""
    out = a.out
    save = save_default if a.save is None else a.save
    return {"as_json": a.json, "save": (bool(save) or bool(out)) and out != "", "out": out or None,
            "project": a.project, "name": a.name, "exist_ok": a.exist_ok,
            "max_frames": getattr(a, "frames", None)}


def source_list(a: argparse.Namespace, specs=None) -> list:
    """The inputs of a predicting verb (its SOURCE arguments and --camera), expanded and checked."""
    from .sources import expand_sources
    specs = list(a.sources if specs is None else specs) + [str(c) for c in getattr(a, "camera", [])]
    if not specs:
        raise UsageError("give at least one image, folder, glob, list, video or --camera")
    return expand_sources(specs, video=hasattr(a, "camera"))


def _describe(e: BaseException) -> str:
    if isinstance(e, OSError) and e.filename is not None:   # "[Errno 21] Is a directory: 'x'" → "x: Is a directory"
        target = f" -> {e.filename2}" if e.filename2 is not None else ""
        return f"{e.filename}{target}: {e.strerror or e}"
    return str(e)


def out_of_memory(e: BaseException) -> str | None:
    """The allocator's own words when ``e`` is a failed allocation (Python's MemoryError, or PyTorch's
    RuntimeError from its CPU or CUDA allocator, told by its message: this module imports no torch), else None."""
    if isinstance(e, MemoryError):
        return str(e) or "MemoryError"
    text = str(e)
    if not isinstance(e, RuntimeError) or not ("can't allocate memory" in text or "out of memory" in text.lower()):
        return None
    asked = re.search(r"tried to allocate (\d+) bytes", text)       # PyTorch's CPU allocator
    if asked:
        return f"could not allocate {int(asked.group(1)) / 2**30:.2f} GiB"
    return text.split("\n")[0]


def run_main(prog: str, parse: Callable[[], object], run: Callable[[object], None],
             errors: tuple = (ValueError, OSError)) -> int:
    """Parse the command line and run the verb: 0 when it worked; 2 with one line ``PROG: error: …`` for
    ``errors`` (what the user can fix: every checked value, every unreadable file) and for running out of
    memory; 141, quietly, when the reader of stdout went away (``tritnet info x.cfg | head``), as a process
    killed by SIGPIPE."""
    try:
        run(parse())
        sys.stdout.flush()          # a closed pipe shows here, not in the flush at exit
    except BrokenPipeError:
        # Python's advice: point stdout at devnull so the flush at exit cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except errors as e:
        print(f"{prog}: error: {_describe(e)}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as e:
        # a cfg's input size or batch can ask for more memory than the machine has (ttt4 at 8192x8192 wants
        # 1.5 GiB for one tensor): one line, not an allocator's traceback; any other RuntimeError is a bug: raised
        detail = out_of_memory(e)
        if detail is None:
            raise
        print(f"{prog}: error: out of memory: {detail}; a smaller input (the cfg's width and height, or the "
              "images'), batch or subdivisions needs less", file=sys.stderr)
        return 2
    return 0
