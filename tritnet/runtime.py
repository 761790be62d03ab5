"""``tritnet.runtime`` is the torch-free runtime, ``tritnet_rt``, under the main package's name.

The runtime ships as its own distribution (``pip install ./runtime``: numpy and Pillow, no PyTorch) so a small
device installs only it; inside a full tritnet install both names reach the same module.
"""
import sys

import tritnet_rt

sys.modules[__name__] = tritnet_rt
