"""The C extension of tritnet_rt, shared by the two distributions that build it: ``runtime/setup.py`` (the
runtime alone, for devices) and the repository's ``setup.py`` (tritnet, which includes it). One build holds
every path for its architecture: the x86 kernel files select AVX2 / AVX-512 / AMX per file with ``#pragma GCC
target``, the ARM files NEON (32-bit), dot product and I8MM the same way and are compiled only on ARM, and the
serial C path is always there; the path is chosen at run time (cpuid; on ARM the kernel's HWCAP bits), see
tritnet_rt/__init__.py.

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
    libs = [] if sys.platform == "win32" else ["pthread", "m"]
    if machine in ("x86_64", "amd64"):
        sources += ["kernels_avx2.c", "kernels_avx512.c", "kernels_amx.c"]
    elif machine.startswith(("aarch64", "arm")):
        # Every ARM file; each compiles to nothing where its target can't be had (tn.h: TN_HAVE_NEON,
        # TN_HAVE_DOTPROD, TN_HAVE_I8MM), because the machine name says little about the userland: a Raspberry
        # Pi with a 64-bit kernel says aarch64 under a 32-bit (armv6 or armv7) Raspberry Pi OS.
        sources += ["kernels_neon.c", "kernels_neon_dot.c", "kernels_neon_i8mm.c"]
        if sys.maxsize < 2**32 and sys.platform != "win32":
            # 32-bit ARM: the pool's 64-bit atomics are calls into libatomic where the CPU baseline has no
            # ldrexd (armv6: Raspberry Pi OS 32-bit; the module failed to load with __atomic_load_8 undefined)
            libs.append("atomic")
    # -ffp-contract=off: no fused multiply-adds in the epilogue, so every ISA path gives bit-identical floats
    args = [] if sys.platform == "win32" else ["-O3", "-std=c11", "-ffp-contract=off", "-fno-math-errno"]
    link = []
    sanitize = os.environ.get("TRITNET_SANITIZE", "").strip()
    if sanitize:
        flags = [f"-fsanitize={sanitize}", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"]
        args = [a for a in args if a != "-O3"] + ["-O1"] + flags
        link = flags
    return Extension("tritnet_rt._tnrt", [str(Path(csrc) / s) for s in sources], extra_compile_args=args,
                     extra_link_args=link, libraries=libs, optional=False)
