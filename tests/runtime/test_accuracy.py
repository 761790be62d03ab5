"""The runtime against PyTorch on real data: CIFAR-10 top-1 and BCCD detections."""
import numpy as np
import pytest
import torch

from tritnet.export import to_packed
from tritnet_rt.calibrate import calibrate
from tritnet_rt.net import Net
from tests.runtime.helpers import cifar_test, ternary_resnet20


@pytest.fixture(scope="module")
def cifar(shared_data):
    return cifar_test(shared_data, per_class=1000)         # the whole test set: 10,000 JPEGs


# the second keeps two float layers; "calibrated": the int8 input scales fixed at export from 500 training images
@pytest.mark.parametrize("layers, scales", [("all", "per-image"), ("all_but_first_last", "per-image"),
                                            ("all", "calibrated")])
def test_resnet20_top1_agrees_within_0_2_points(shared_data, cifar, layers, scales):
    x, y = cifar
    model = ternary_resnet20(shared_data, layers)
    with torch.no_grad():
        ref = torch.cat([model(torch.from_numpy(x[i:i + 500])) for i in range(0, len(x), 500)]).numpy()
    pm = to_packed(model)
    if scales == "calibrated":
        pm = calibrate(pm, cifar_test(shared_data, 50, split="train")[0])
    net = Net(pm)
    got = np.concatenate([net(x[i:i + 500])[0].reshape(-1, 10) for i in range(0, len(x), 500)])
    top1_torch, top1_rt = (ref.argmax(1) == y).mean() * 100, (got.argmax(1) == y).mean() * 100
    assert top1_torch > 40, top1_torch                 # a real model (10% is chance), not trained after ternarizing
    assert abs(top1_torch - top1_rt) <= 0.2, (top1_torch, top1_rt)
    # measured 97.9% (all), 98.8% (all but first and last), 97.2% (all, calibrated)
    assert (ref.argmax(1) == got.argmax(1)).mean() >= 0.97


def test_sttn_popcount_path_agrees_with_pytorch(cifar):
    """STTN ResNet-20 (ternary weights and activations) from the pretrained float weights' shapes."""
    import tritnet
    from tests.runtime.helpers import random_bn_
    torch.manual_seed(0)
    model = random_bn_(tritnet.create_model("resnet20_sttn").eval())
    x = cifar[0][:200]
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    pm = to_packed(model)
    net = Net(pm, ternary_inputs="bits")
    assert sum(d.get("path") == "tt" for d in net.prep.data.values()) == 18
    got = net(x)[0].reshape(len(x), -1)
    # the same ternary activations as 8-bit codes through the int8 GEMM: the same integer sums, the same bits
    codes = Net(pm, ternary_inputs="int8")
    assert sum(d.get("path") == "t8t" for d in codes.prep.data.values()) == 18
    assert np.array_equal(codes(x)[0].reshape(len(x), -1), got)
    # exact up to float rounding, except where a pre-activation lies within rounding of the ±0.5 threshold:
    # the runtime folds BN into a·x + b, PyTorch rounds (x − μ)/σ·γ + β, and that one activation flips
    err = np.abs(got - ref).max(1) / np.abs(ref).max()
    assert (err <= 1e-4).mean() >= 0.97 and err.max() < 0.05, np.sort(err)[-5:]
    assert (got.argmax(1) == ref.argmax(1)).mean() >= 0.99


def _bccd_ids(shared, n):
    return (shared / "bccd" / "ImageSets" / "Main" / "test.txt").read_text().split()[:n]


def _match(d1, d2, margin, rel=0.0, fraction=1.0):
    """Detections above ``margin`` in one list that have one of the same class in the other, box edges within
    2 px (+ ``rel`` of the box size): all of them, or at least ``fraction``."""
    for a_list, b_list in ((d1, d2), (d2, d1))[:1 if margin == 0 else 2]:
        want = [a for a in a_list if a.prob >= margin]
        ok = [a for a in want if any(
            b.class_id == a.class_id and max(abs(a.left - b.left), abs(a.top - b.top), abs(a.right - b.right),
                                             abs(a.bottom - b.bottom)) <= 2 + rel * max(a.right - a.left, a.bottom - a.top)
            for b in b_list)]
        assert len(ok) >= fraction * len(want), ([a for a in want if a not in ok], b_list)


def test_ttt4_detections_on_bccd(shared_data):
    """The real trained ttt4 detector as trained (its cfg has no ternary=1 layer, so every conv runs the
    runtime's float path) on 20 BCCD test images: the same detections, boxes within 2 px. (Ternarizing ttt4
    without fine-tuning leaves no detection above .02, so the int8 path is checked on yolov2-tiny below.)"""
    from tritnet.darknet import build_darknet, detect_image
    ref_dir = shared_data / "darknet" / "reference"
    net = build_darknet(ref_dir / "cfg" / "ttt4_b1.cfg", shared_data / "darknet" / "weights" / "ttt4_minloss.weights",
                        method="twn", per_channel=True)
    rt = Net(to_packed(net))
    total = 0
    for i in _bccd_ids(shared_data, 20):
        path = shared_data / "bccd" / "JPEGImages" / f"{i}.jpg"
        d1, d2 = detect_image(net, str(path), thresh=0.02), rt.detect(str(path), thresh=0.02)
        _match(d1, d2, 0.025)
        total += len(d1)
    assert total >= 20


@pytest.mark.parametrize("scales", ["per-image", "calibrated"])
def test_yolov2_tiny_detections_on_bccd(shared_data, tmp_path, scales):
    """yolov2-tiny-voc at 416x416, every conv ternary (TWN per channel) from darknet's random weights (the
    reference generator, seed 0): many boxes of all sizes, 34 at thresh .1 on the first image. Random
    weights make boxes that span most of the image, where the int8 activations' ~2% noise on the raw head
    moves edges by more than 2 px: edges are checked to 2 px + 2% of the box size (the trained ttt4 above
    meets plain 2 px). "calibrated": the int8 input scales fixed from 16 BCCD training images."""
    import subprocess
    import sys
    from tritnet.darknet import build_darknet, detect_image, parse_cfg, set_ternary
    script = shared_data / "darknet" / "reference" / "scripts" / "gen_random_weights.py"
    cfg_path = shared_data / "darknet" / "cfg" / "yolov2-tiny-voc.cfg"
    subprocess.run([sys.executable, str(script), str(cfg_path), "0", str(tmp_path / "w.weights")], check=True,
                   capture_output=True)
    cfg = parse_cfg(cfg_path)
    set_ternary(cfg)
    net = build_darknet(cfg, tmp_path / "w.weights", method="twn", per_channel=True)
    rt = Net(to_packed(net))
    if scales == "calibrated":
        train = (shared_data / "bccd" / "ImageSets" / "Main" / "trainval.txt").read_text().split()[::20][:16]
        images = np.concatenate([rt.preprocess(str(shared_data / "bccd" / "JPEGImages" / f"{i}.jpg"))[0]
                                 for i in train])
        rt = Net(calibrate(rt.pm, images))
        assert sum("input_quant" in n["attrs"] for n in rt.pm.graph["nodes"]) == 9
    total = 0
    for i in _bccd_ids(shared_data, 3):
        path = str(shared_data / "bccd" / "JPEGImages" / f"{i}.jpg")
        d1, d2 = detect_image(net, path, thresh=0.1), rt.detect(path, thresh=0.1)
        top = sorted(d1, key=lambda d: -d.prob)[:10]
        _match(top, d2, 0.0, rel=0.03, fraction=0.7)   # boxes of near-equal score trade places under NMS
        assert abs(len(d1) - len(d2)) <= max(3, len(d1) // 5)
        x, _, _ = rt.preprocess(path)
        with torch.no_grad():
            raw = net.forward_all(torch.from_numpy(x))[-2].numpy()
        err = np.sqrt(((rt(x)[0] - raw) ** 2).mean() / (raw ** 2).mean())
        assert err < 0.03, err                # int8 activations: ~2% relative error on the raw head
        total += len(d1)
    assert total >= 30
