"""Decoding, NMS and the reported list, fed darknet's own region/yolo outputs: darknet's results exactly."""
import json
import warnings

import numpy as np
import pytest

from tritnet.darknet import infer_layers, parse_cfg
from tritnet_rt.detect import (Candidates, Detection, Head, box_iou, do_nms_obj, do_nms_sort, format_detection,
                            get_network_boxes, select_detections)
from tests.paths import SHARED_DATA

REF = SHARED_DATA / "darknet" / "reference"
CFGS = {"ttt4": REF / "cfg" / "ttt4_b1.cfg",
        "yolov2-tiny-voc_random_seed0": REF.parent / "cfg" / "yolov2-tiny-voc.cfg",
        "yolov3-tiny_random_seed0": REF.parent / "cfg" / "yolov3-tiny.cfg"}


def _cases():
    if not REF.is_dir():
        return []
    return [pytest.param(tag, p, id=p.stem) for tag in CFGS for p in sorted((REF / tag).glob(f"{tag}__*.npz"))
            if not p.name.endswith("__all_layers.npz")]


@pytest.mark.parametrize("tag,npz", _cases())
def test_decode_and_nms_reproduce_darknet(tag, npz):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        infos = infer_layers(parse_cfg(CFGS[tag]))
    s = json.loads((REF / tag / f"{tag}__summary.json").read_text())
    z = np.load(npz)
    im_w, im_h = int(z["image_w"]), int(z["image_h"])
    heads = [Head.from_layer(infos[L], z[f"layer{L}_output"]) for L in s["det_layers"]]
    for t in s["thresholds"]:
        key = f"t{round(t * 100):03d}"
        c = get_network_boxes(heads, im_w, im_h, s["net_w"], s["net_h"], t)
        assert np.array_equal(c.objectness, z[f"cand_{key}_obj"])
        assert np.array_equal(c.prob, z[f"cand_{key}_prob"])
        # boxes: darknet's -Ofast build rounds the letterbox ratios its own way (≤ 2 ulps)
        ulps = np.abs(c.boxes.view(np.int32).astype(np.int64) - z[f"cand_{key}_box"].view(np.int32))
        assert ulps.max() <= 2
        for kind, nms in (("sort", do_nms_sort), ("obj", do_nms_obj)):
            dets = select_detections(nms(c, s["nms"]), t, im_w, im_h)
            ref = f"det_{key}_nms{kind}"
            assert [[d.index, d.class_id] for d in dets] == z[f"{ref}_idx"].tolist()       # order included
            assert [[d.left, d.top, d.right, d.bottom] for d in dets] == z[f"{ref}_ltrb"].tolist()
            assert np.array_equal(np.array([d.prob for d in dets], np.float32), z[f"{ref}_val"][:, 0])
            assert np.array_equal(np.array([d.objectness for d in dets], np.float32), z[f"{ref}_val"][:, 1])


def test_box_iou_is_darknets():
    a = np.array([.5, .5, .2, .2], np.float32)
    b = np.array([[.5, .5, .2, .2], [.6, .5, .2, .2], [.9, .9, .1, .1], [.5, .5, .4, .4]], np.float32)
    assert np.allclose(box_iou(a, b), [1, 1 / 3, 0, .25])
    assert box_iou(np.zeros(4, np.float32), np.zeros((1, 4), np.float32))[0] != 1   # 0/0: never > nms


def _cands(boxes, obj, prob):
    return Candidates(np.array(boxes, np.float32), np.array(obj, np.float32), np.array(prob, np.float32))


def test_nms_sort_per_class_and_array_order():
    c = _cands([[.5, .5, .2, .2], [.52, .5, .2, .2], [.2, .2, .1, .1], [.51, .5, .2, .2]],
               [.9, .8, 0, .7], [[.3, .6], [.5, .1], [0, 0], [.4, .0]])
    out = do_nms_sort(c, .45)
    # candidate 2 (objectness 0) is swapped to the end: [0, 1, 3 | 2]. Class 0 sorts to 1 (.5), 3, 0 and
    # 1 suppresses both; class 1 then sorts that array to 0 (.6), 1 (.1), 3 and 0 suppresses 1.
    assert out.index.tolist() == [0, 1, 3, 2]
    assert out.prob.tolist() == [[0, np.float32(.6)], [.5, 0], [0, 0], [0, 0]]
    assert out.objectness.tolist() == c.objectness[[0, 1, 3, 2]].tolist()          # left alone
    dets = select_detections(out, .24, 100, 50, names=["cat", "dog"])
    assert [(d.index, d.name) for d in dets] == [(0, "dog"), (1, "cat")]
    x, w = float(np.float32(.52)), float(np.float32(.2))      # the float32 box, in double as C does
    assert dets[1].left == int((x - w / 2) * 100) == 41 and dets[1].bottom == 30


def test_nms_obj_suppresses_whole_boxes():
    c = _cands([[.5, .5, .2, .2], [.52, .5, .2, .2], [.2, .2, .1, .1]], [.7, .9, .8], [[.6, .0], [.0, .8], [.5, .5]])
    out = do_nms_obj(c, .45)
    assert out.index.tolist() == [1, 2, 0]
    assert out.objectness.tolist() == [np.float32(.9), np.float32(.8), 0]
    assert not out.prob[2].any()


def test_printed_line_rounds_like_printf():
    d = Detection(0, 0, "person", float(np.float32(.625)), .9, .5, .5, .1, .1, 1, 2, 30, 40)
    assert format_detection(d, boxes=False) == "person: 62%"                      # %.0f: half to even
    assert format_detection(d).startswith("person: 62%\t(left_x:    1   top_y:    2   width:   29")
    assert d.to_dict()["box"] == {"left": 1, "top": 2, "right": 30, "bottom": 40, "width": 29, "height": 38}
