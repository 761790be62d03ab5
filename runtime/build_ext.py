"""The C extension of tritnet_rt, shared by the two distributions that build it: ``runtime/setup.py`` (the
runtime alone, for devices) and the repository's ``setup.py`` (tritnet, which includes it). One build holds
every path for its architecture: the x86 kernel files select AVX2 / AVX-512 per file with ``#pragma GCC
target``, the NEON file is compiled only on ARM, and the serial C path is always there; the path is chosen at
run time (cpuid), see tritnet_rt/__init__.py.

``TRITNET_SANITIZE=address,undefined`` builds it with AddressSanitizer and UBSan (gcc or clang), for the tests
that run the runtime and the fuzz corpus under them (tests/runtime/test_sanitizers.py); such a build needs the
sanitizer runtimes preloaded into Python (``LD_PRELOAD``)."""
import os
import platform
import sys
from pathlib import Path

from setuptools import Extension


def extension(csrc: str) -> Extension:
    """``csrc``: the kernel folder relative to the calling setup.py."""
    machine = platform.machine().lower()
    sources = ["module.c", "ops.c", "pool.c", "cpu.c", "kernels_serial.c"]
    if machine in ("x86_64", "amd64"):
        sources += ["kernels_avx2.c", "kernels_avx512.c", "kernels_amx.c"]
    elif machine in ("aarch64", "arm64"):
        sources += ["kernels_neon.c"]
    # -ffp-contract=off: no fused multiply-adds in the epilogue, so every ISA path gives bit-identical floats
    args = [] if sys.platform == "win32" else ["-O3", "-std=c11", "-ffp-contract=off", "-fno-math-errno"]
    libs = [] if sys.platform == "win32" else ["pthread", "m"]
    link = []
    sanitize = os.environ.get("TRITNET_SANITIZE", "").strip()
    if sanitize:
        flags = [f"-fsanitize={sanitize}", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"]
        args = [a for a in args if a != "-O3"] + ["-O1"] + flags
        link = flags
    return Extension("tritnet_rt._tnrt", [str(Path(csrc) / s) for s in sources], extra_compile_args=args,
                     extra_link_args=link, libraries=libs, optional=False)
