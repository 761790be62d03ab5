"""The C extension, loaded once. Without it the format code still works (inspect, validate, convert); only
running a model needs it, and then the error says how to build it."""
try:
    from . import _tnrt
except ImportError as _e:  # pragma: no cover - a broken install
    _tnrt, _why = None, str(_e)


def ext():
    if _tnrt is None:
        raise ImportError(f"tritnet_rt's C extension is not built ({_why}); reinstall with `pip install -e .`")
    return _tnrt
