"""tritnet-rt alone: the packed-model runtime (numpy, Pillow and a C extension; no PyTorch)."""
import sys
from pathlib import Path

from setuptools import setup

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_ext import extension  # noqa: E402

setup(packages=["tritnet_rt", "tritnet_rt.detect"], ext_modules=[extension("tritnet_rt/csrc")])
