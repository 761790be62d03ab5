"""tritnet with its runtime: the ``tritnet`` packages, and ``tritnet_rt`` from runtime/ (the same package
that ``pip install ./runtime`` installs alone, without PyTorch, on a device)."""
import sys
from pathlib import Path

from setuptools import find_packages, setup

sys.path.insert(0, str(Path(__file__).resolve().parent / "runtime"))
from build_ext import extension  # noqa: E402

setup(packages=find_packages(include=["tritnet", "tritnet.*"]) + ["tritnet_rt", "tritnet_rt.detect"],
      package_dir={"tritnet_rt": "runtime/tritnet_rt"},
      ext_modules=[extension("runtime/tritnet_rt/csrc")])
