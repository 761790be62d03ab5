"""``tritnet export --onnx-nms``: the ONNX file decodes the boxes and runs NonMaxSuppression itself; in ONNX
Runtime it gives the detections of ``detector test`` (tritnet's darknet-exact detect_image, tested against the
real darknet elsewhere): the same (class, box) pairs, boxes within 1 pixel, probabilities within 1e-4."""
import importlib.util
import subprocess
import sys

import numpy as np
import pytest

import tritnet_rt
from PIL import Image
from tritnet.darknet import build_darknet, detect_image
from tritnet_rt.detect import letterbox_size
from tests.paths import SHARED_DATA

ort = pytest.importorskip("onnxruntime")

DN = SHARED_DATA / "darknet"
REF = DN / "reference"
IMAGES = {"ttt4": ["raccoon__raccoon-105__stb_rgb.png", "kangaroo__00030__stb_rgb.png"],
          "yolov3-tiny": ["bccd__BloodImage_00007__stb_rgb.png", "raccoon__raccoon-126__stb_rgb.png"]}


def _yolov3_tiny_weights(tmp_path):
    spec = importlib.util.spec_from_file_location("gen", REF / "scripts" / "gen_random_weights.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    path = tmp_path / "yolov3-tiny.weights"
    path.write_bytes(gen.generate(str(DN / "cfg" / "yolov3-tiny.cfg"), 0))
    return path


def _onnx_detections(onnx_path, tnp, image):
    net = tritnet_rt.load(tnp)
    x, im_w, im_h = net.preprocess(image)
    boxes, scores, selected = ort.InferenceSession(str(onnx_path)).run(None, {"input": x.astype(np.float32)})
    _, net_h, net_w = net.input_shape
    new_w, new_h = letterbox_size(im_w, im_h, net_w, net_h)
    dx, dy = (net_w - new_w) / 2, (net_h - new_h) / 2
    out = []
    for b, c, i in selected:
        x1, y1, x2, y2 = boxes[b, i]
        out.append((int(c), float(scores[b, i, c]), ((x1 - dx) * im_w / new_w, (y1 - dy) * im_h / new_h,
                                                      (x2 - dx) * im_w / new_w, (y2 - dy) * im_h / new_h)))
    return sorted(out, key=lambda d: (d[0], -d[1]))


@pytest.mark.parametrize("model", ["ttt4", "yolov3-tiny"])
def test_the_onnx_detector_gives_detector_tests_detections(model, tmp_path, shared_data):
    if model == "ttt4":
        cfg, weights, thresh = REF / "cfg" / "ttt4_b1.cfg", DN / "weights" / "ttt4_minloss.weights", 0.05
    else:
        cfg, weights, thresh = DN / "cfg" / "yolov3-tiny.cfg", _yolov3_tiny_weights(tmp_path), 0.2
    tnp, onnx = tmp_path / "m.tnp", tmp_path / "m.onnx"
    subprocess.run([sys.executable, "-m", "tritnet", "export", str(cfg), str(tnp), "--weights", str(weights),
                    "--method", "float", "--onnx", str(onnx), "--onnx-nms", "--thresh", str(thresh), "--nms", "0.45"],
                   check=True, capture_output=True)
    net = build_darknet(cfg, weights, None)
    total = 0
    for name in IMAGES[model]:
        image = REF / "inputs" / name
        want = sorted(((d.class_id, d.prob, (d.x - d.w / 2, d.y - d.h / 2, d.x + d.w / 2, d.y + d.h / 2))
                       for d in detect_image(net, str(image), thresh=thresh, nms=0.45)), key=lambda d: (d[0], -d[1]))
        got = _onnx_detections(onnx, tnp, str(image))
        assert [c for c, _, _ in got] == [c for c, _, _ in want]
        im_w, im_h = Image.open(image).size
        for (_, p, box), (_, q, rel) in zip(got, want):
            assert p == pytest.approx(q, abs=1e-4)
            assert np.allclose(box, np.array(rel) * [im_w, im_h, im_w, im_h], atol=1.0)
        total += len(want)
    assert total >= 4                   # the comparison compared something: detections on these images
