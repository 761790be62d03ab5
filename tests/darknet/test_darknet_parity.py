"""Parity with the real darknet program (pjreddie, CPU build) on the stored references.

For every reference model and image: tritnet's letterbox of the stb pixels equals darknet's network
input bit for bit; the raw region/yolo outputs and the network output match to ≤ 1e-4 of their range;
the detections after thresholds and NMS (both kinds, both thresholds) are the same (candidate, class)
pairs, boxes within 1 pixel, probabilities within 1e-3 — and, except where two near-equal scores swap,
in darknet's printed order.
"""
import hashlib
import importlib.util
import json

import numpy as np
import pytest
import torch
from PIL import Image

from tritnet.darknet import build_darknet, format_classifier_line, predict_darknet_classifier, top_k
from tritnet_rt.detect import (Head, do_nms_obj, do_nms_sort, from_uint8, get_network_boxes, letterbox,
                            select_detections)
from tests.paths import SHARED_DATA as DATA

DN = DATA / "darknet"
REF = DN / "reference"
pytestmark = pytest.mark.skipif(not REF.is_dir(), reason=f"darknet references not found at {REF}")

RANDOM = {  # tag: (cfg, seed, sha256 of the regenerated file)
    "yolov2-tiny-voc_random_seed0": ("yolov2-tiny-voc.cfg", 0,
                                     "755dd5d2162d518560d06c63c4c062b679449a645adde580b2c74e3d223974d1"),
    "yolov3-tiny_random_seed0": ("yolov3-tiny.cfg", 0,
                                 "2cf07c0797488a9daea845267ec7aacc5747483222a04c07e8476ea669cd6c55"),
}


@pytest.fixture(scope="session")
def random_weights(tmp_path_factory):
    """The generated .weights files, written once per session (about 1 s each) and checked by sha256."""
    spec = importlib.util.spec_from_file_location("gen_random_weights", REF / "scripts" / "gen_random_weights.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    out = {}
    folder = tmp_path_factory.mktemp("random_weights")
    for tag, (cfg, seed, sha) in RANDOM.items():
        data = gen.generate(str(DN / "cfg" / cfg), seed)
        assert hashlib.sha256(data).hexdigest() == sha
        out[tag] = folder / f"{tag}.weights"
        out[tag].write_bytes(data)
    return out


def _model(tag, random_weights):
    if tag == "ttt4":
        return REF / "cfg" / "ttt4_b1.cfg", DN / "weights" / "ttt4_minloss.weights"
    return DN / "cfg" / RANDOM[tag][0], random_weights[tag]


_nets = {}


def _net(tag, random_weights):
    if tag not in _nets:
        _nets[tag] = build_darknet(*_model(tag, random_weights))
    return _nets[tag]


def _cases():
    out = []
    for tag in ["ttt4", *RANDOM]:
        for p in sorted((REF / tag).glob(f"{tag}__*.npz")) if REF.is_dir() else []:
            if not p.name.endswith("__all_layers.npz"):
                out.append(pytest.param(tag, p, id=p.stem))
    return out


def _match_detections(mine, z, key, im_w, im_h):
    """Same (candidate, class) pairs, box within 1 px, prob within 1e-3; returns whether the order is the same."""
    ref_idx, ref_val, ref_ltrb = z[f"{key}_idx"], z[f"{key}_val"], z[f"{key}_ltrb"]
    got = {(d.index, d.class_id): d for d in mine}
    assert len(got) == len(mine) == len(ref_idx), key
    for (cand, cls), val, ltrb in zip(ref_idx.tolist(), ref_val, ref_ltrb):
        d = got[(cand, cls)]
        assert abs(d.prob - val[0]) <= 1e-3
        assert abs(d.x * im_w - val[6]) <= 1 and abs(d.y * im_h - val[7]) <= 1
        assert abs(d.w * im_w - val[8]) <= 1 and abs(d.h * im_h - val[9]) <= 1
        assert np.abs(np.array([d.left, d.top, d.right, d.bottom]) - ltrb).max() <= 1
    return [(d.index, d.class_id) for d in mine] == [tuple(r) for r in ref_idx.tolist()]


@pytest.mark.parametrize("tag,npz", _cases())
def test_detector_parity(tag, npz, random_weights):
    net = _net(tag, random_weights)
    summary = json.loads((REF / tag / f"{tag}__summary.json").read_text())
    z = np.load(npz)
    im_w, im_h = int(z["image_w"]), int(z["image_h"])
    # 1. the input: letterbox of the stb pixels == darknet's network input, bit for bit
    pixels = np.asarray(Image.open(REF / str(z["stb_rgb_png"])))
    x = letterbox(from_uint8(pixels), net.width, net.height)
    assert np.array_equal(x, np.load(REF / str(z["input_npz"]))["x"])
    # 2. the raw outputs
    with torch.no_grad():
        outs = net.forward_all(torch.from_numpy(x)[None])
    pairs = [(outs[net.output_index], z["net_output"])]
    pairs += [(outs[L], z[f"layer{L}_output"]) for L in summary["det_layers"]]
    for got, ref in pairs:
        got = got.numpy().reshape(-1)
        assert got.shape == ref.shape
        assert np.abs(got - ref).max() <= 1e-4 * np.ptp(ref)
    # 3. the detections, both thresholds, both NMS kinds
    heads = [Head.from_layer(net.infos[L], outs[L][0]) for L in summary["det_layers"]]
    swapped = 0
    for t in summary["thresholds"]:
        key = f"t{round(t * 100):03d}"
        cands = get_network_boxes(heads, im_w, im_h, net.width, net.height, t)
        assert len(cands) == len(z[f"cand_{key}_box"])
        for kind, nms in (("sort", do_nms_sort), ("obj", do_nms_obj)):
            dets = select_detections(nms(cands, summary["nms"]), t, im_w, im_h)
            swapped += not _match_detections(dets, z, f"det_{key}_nms{kind}", im_w, im_h)
    assert swapped <= 1   # two near-equal scores may swap places in one list (seen: 2 of 64 lists)


def test_detect_image_gives_the_printed_lists(random_weights):
    """ttt4's printed lists (summary JSON: class, prob, ltrb at .24 after do_nms_sort), through detect_image."""
    from tritnet.darknet import detect_image
    for tag in ["ttt4"]:
        summary = json.loads((REF / tag / f"{tag}__summary.json").read_text())
        net = _net(tag, random_weights)
        for img in summary["images"]:
            pixels = np.asarray(Image.open(REF / img["stb_rgb_png"]))
            dets = detect_image(net, from_uint8(pixels), thresh=.24, nms=.45)
            ref = img["dets_t024_nmssort"]
            assert [(d.index, d.class_id) for d in dets] == [(r["cand_index"], r["class"]) for r in ref]
            for d, r in zip(dets, ref):
                assert abs(d.prob - r["prob"]) <= 1e-3
                assert np.abs(np.array([d.left, d.top, d.right, d.bottom]) - r["ltrb"]).max() <= 1


def test_ttt4_every_layer():
    """Every layer of ttt4 on one image, against darknet's full dump (maxpool windows start at -pad/2)."""
    z = np.load(REF / "ttt4" / "ttt4__bccd__BloodImage_00007__all_layers.npz")
    net = build_darknet(REF / "cfg" / "ttt4_b1.cfg", DN / "weights" / "ttt4_minloss.weights")
    x = np.load(REF / "inputs" / "bccd__BloodImage_00007__letterbox_360x360.npz")["x"]
    with torch.no_grad():
        outs = net.forward_all(torch.from_numpy(x)[None])
    for i, out in enumerate(outs):
        ref = z[f"layer{i}"]
        assert np.abs(out.numpy().reshape(-1) - ref).max() <= 1e-5 * max(np.ptp(ref), 1.0), f"layer {i}"


def test_cifar_minin_classifier_parity():
    z = np.load(REF / "cifar_minin" / "cifar_minin_20.npz")
    cfg, weights = REF / "cfg" / "cifar_minin_b1.cfg", DN / "weights" / "cifar_minin.weights"
    net = build_darknet(cfg, weights)
    for i, u8 in enumerate(z["stb_u8"]):
        x = letterbox(from_uint8(u8), 32, 32)
        assert np.array_equal(x, z["input_letterbox"][i])     # 32x32 into 32x32: the identity
    with torch.no_grad():
        outs = net.forward_all(torch.from_numpy(z["input_letterbox"]))
    for i in range(7):                                         # layer 7 is COST: darknet never writes it
        ref = z[f"layer{i}"]
        assert np.abs(outs[i].reshape(20, -1).numpy() - ref).max() <= 1e-4 * np.ptp(ref)
    out = net(torch.from_numpy(z["input_letterbox"])).reshape(20, -1).detach().numpy()
    assert np.abs(out - z["net_output"]).max() <= 1e-4 * np.ptp(z["net_output"])
    assert [top_k(o.tolist(), 3) for o in out] == z["top_k"].tolist()
    # the whole command path: PNG → letterbox → network → darknet's top_k and values
    labels = DN / "weights" / "labels5.txt"
    for i in (0, 6, 13):
        got = predict_darknet_classifier(cfg, weights, REF / str(z["image_paths"][i]), labels, top=3)
        names = labels.read_text().split()
        assert [n for n, _ in got] == [names[k] for k in z["top_k"][i]]
        assert np.allclose([v for _, v in got], z["net_output"][i][z["top_k"][i]], atol=1e-5)
    assert format_classifier_line("person", np.float32(0.282234)) == "28.22%: person"        # "%5.2f%%: %s"
    assert format_classifier_line("background", -0.00044565) == "-0.04%: background"
