"""tritnet_rt: run packed ternary models on the CPU with numpy and a small C extension; no PyTorch.

    import tritnet_rt
    net = tritnet_rt.load("resnet20.tnp")
    print(net.classify("cat.png"))            # top-5
    y = net(x)                                # NCHW float32 batch -> list of outputs
    tritnet_rt.set_isa("serial")              # force a kernel path (or TRITNET_ISA=serial)
    tritnet_rt.set_num_threads(2)             # (or TRITNET_NUM_THREADS=2)

The kernel path is the best one this CPU runs (cpuid), unless forced: ``capabilities()`` lists them.
"""
import os

from .format import FormatError, PackedModel, load_packed, save_packed  # noqa: F401

__version__ = "0.1.0"

from .native import _tnrt, ext as _ext


def capabilities() -> dict:
    """{"compiled": ISA paths in this build, "supported": those this CPU runs, "active": the one in use}."""
    return {"compiled": _ext().compiled(), "supported": _ext().supported(), "active": _ext().get_isa()}


def set_isa(name: str) -> None:
    """Force a kernel path: "serial", "avx2", "avx512", "amx", "neon", "dotprod" or "i8mm" (ValueError if this
    build or CPU can't run it; ``capabilities()`` lists them)."""
    _ext().set_isa(name)


def get_isa() -> str:
    return _ext().get_isa()


def set_num_threads(n: int) -> None:
    if int(n) < 1:
        raise ValueError(f"thread count must be >= 1, got {n}")
    _ext().set_threads(int(n))


def get_num_threads() -> int:
    return _ext().get_threads()


def load(path, **kw):
    """Load a packed file (.tnp) into a :class:`Net` (FormatError for a bad file)."""
    from .net import Net
    return Net.load(path, **kw)


if _tnrt is not None:
    if os.environ.get("TRITNET_ISA"):
        set_isa(os.environ["TRITNET_ISA"])
    set_num_threads(int(os.environ.get("TRITNET_NUM_THREADS") or min(os.cpu_count() or 1, 8)))
