"""The runtime as its own distribution (runtime/, `pip install ./runtime`): installed into a fresh virtual
environment that has no PyTorch and no tritnet, `tritnet-rt` runs packed models and gives the same answers as
the runtime inside tritnet."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    env = tmp_path_factory.mktemp("rt") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True, capture_output=True)
    pip = subprocess.run([str(env / "bin" / "pip"), "install", "-q", str(ROOT / "runtime")], capture_output=True,
                         text=True, timeout=600)
    if pip.returncode != 0 and ("Could not find" in pip.stderr or "connection" in pip.stderr.lower()):
        pytest.skip(f"no package index for numpy/Pillow/setuptools: {pip.stderr[-300:]}")
    assert pip.returncode == 0, pip.stderr[-3000:]
    return env


def _rt(venv, *args):
    r = subprocess.run([str(venv / "bin" / "tritnet-rt"), *map(str, args)], capture_output=True, text=True,
                       timeout=120)
    return r


def test_the_runtime_installs_alone_and_answers_as_inside_tritnet(venv, tmp_path, shared_data):
    import tritnet
    import tritnet_rt
    from tritnet.darknet import build_darknet, parse_cfg, set_ternary
    from tritnet.export import save, to_packed
    no_torch = subprocess.run([str(venv / "bin" / "python"), "-c", "import torch"], capture_output=True)
    assert no_torch.returncode != 0                                   # the environment really has no PyTorch

    model = tritnet.create_model("resnet20", pretrained=str(shared_data / "pretrained" / "resnet_cifar10"))
    tritnet.ternarize_(model, method="twn", layers="all", per_channel=True)
    save(to_packed(model.eval(), bits=1.6), tmp_path / "r.tnp")
    img = tmp_path / "x.png"
    Image.fromarray((np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)).save(img)
    r = _rt(venv, "run", tmp_path / "r.tnp", img, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["top"] == tritnet_rt.load(tmp_path / "r.tnp").classify(str(img))

    cfg = parse_cfg(shared_data / "darknet" / "weights" / "ttt4.cfg")
    set_ternary(cfg)
    net = build_darknet(cfg, shared_data / "darknet" / "weights" / "ttt4_minloss.weights", "twn", per_channel=True)
    save(to_packed(net), tmp_path / "d.tnp")
    photo = shared_data / "bccd" / "JPEGImages" / "BloodImage_00007.jpg"
    r = _rt(venv, "run", tmp_path / "d.tnp", photo, "--thresh", "0.05", "--out", tmp_path / "p.jpg", "--json")
    assert r.returncode == 0, r.stderr
    inside = [d.to_dict() for d in tritnet_rt.load(tmp_path / "d.tnp").detect(str(photo), 0.05, 0.45)]
    assert json.loads(r.stdout)["detections"] == inside and (tmp_path / "p.jpg").is_file()

    info = json.loads(_rt(venv, "info", tmp_path / "d.tnp", "--json").stdout)
    convs = (shared_data / "darknet" / "weights" / "ttt4.cfg").read_text().count("[convolutional]")
    assert info["ternary_layers"] == info["layers_with_weights"] == convs > 0
    bad = _rt(venv, "run", tmp_path / "nope.tnp", photo)
    assert bad.returncode == 2 and bad.stderr.startswith("tritnet-rt: error: ") and "nope.tnp" in bad.stderr
