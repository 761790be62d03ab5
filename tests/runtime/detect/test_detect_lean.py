"""tritnet_rt.detect (the post-processing, numpy only), the darknet cfg/weights reader and the darknet CLI module
import without torch."""
import os
import subprocess
import sys
from pathlib import Path


def test_detect_and_cli_do_not_import_torch():
    root = Path(__file__).resolve().parents[3]
    code = (
        "import sys, types\n"
        "sys.modules['torch'] = None\n"
        f"pkg = types.ModuleType('tritnet'); pkg.__path__ = [{str(root / 'tritnet')!r}]\n"
        "sys.modules['tritnet'] = pkg\n"
        "import numpy as np\n"
        "import tritnet_rt.detect as det, tritnet.cli.darknet, tritnet.darknet as dn\n"
        "from tritnet_rt.detect import draw_detections\n"
        "x = det.letterbox(np.zeros((3, 4, 6), np.float32), 8, 8)\n"
        "assert sys.modules['torch'] is None and x.shape == (3, 8, 8)\n"
        "from tritnet.darknet import *\n"
        "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
