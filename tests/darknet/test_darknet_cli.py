"""The darknet verbs (`detector test`, `partial`, `info`) through argparse, as tritnet/cli.py wires them."""
import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tritnet.darknet_cli import VERBS, add_parsers

DN = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "darknet"
REF = DN / "reference"
pytestmark = pytest.mark.skipif(not REF.is_dir(), reason=f"darknet references not found at {REF}")


def run(argv, capsys):
    """What tritnet/cli.py main does with these verbs: (exit status, stdout, stderr)."""
    parser = argparse.ArgumentParser(prog="tritnet")
    add_parsers(parser.add_subparsers(dest="verb", required=True))
    a = parser.parse_args([str(x) for x in argv])
    try:
        VERBS[(a.verb, getattr(a, "action", None))](a)
        rc = 0
    except (ValueError, FileNotFoundError) as e:
        print(f"tritnet: error: {e}", file=__import__("sys").stderr)
        rc = 2
    out, err = capsys.readouterr()
    return rc, out, err


def _ttt4(image="raccoon__raccoon-105"):
    return [REF / "cfg" / "ttt4.data", REF / "cfg" / "ttt4_b1.cfg", DN / "weights" / "ttt4_minloss.weights",
            REF / "inputs" / f"{image}__stb_rgb.png"]


def test_detector_test_prints_darknets_list_and_draws(tmp_path, capsys):
    out_png = tmp_path / "pred.png"
    rc, out, err = run(["detector", "test", *_ttt4(), "--out", out_png], capsys)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].endswith("seconds.") and "Predicted in" in lines[0]
    ref = [d for d in json.loads((REF / "ttt4" / "ttt4__summary.json").read_text())["images"]
           if d["stem"] == "raccoon__raccoon-105"][0]["dets_t024_nmssort"]
    assert [ln.split("\t")[0] for ln in lines[1:]] == [f"class{d['class']}: {d['prob'] * 100:.0f}%" for d in ref]
    l, t, r, b = ref[0]["ltrb"]
    assert f"left_x: {l:4d}   top_y: {t:4d}   width: {r - l:4d}   height: {b - t:4d}" in lines[1]
    im = np.asarray(Image.open(out_png))
    assert im.shape == (960, 720, 3) and tuple(im[(t + b) // 2, l]) == (255, 0, 255)   # class 0: magenta


def test_detector_test_json(tmp_path, capsys):
    rc, out, _ = run(["detector", "test", *_ttt4("raccoon__raccoon-128"), "--thresh", ".05", "--out", "",
                      "--json"], capsys)
    assert rc == 0
    d = json.loads(out)
    z = np.load(REF / "ttt4" / "ttt4__raccoon__raccoon-128.npz")
    assert [(x["candidate"], x["class"]) for x in d["detections"]] == [
        (int(i), f"class{c}") for i, c in z["det_t005_nmssort_idx"]]
    assert np.allclose([x["probability"] for x in d["detections"]], z["det_t005_nmssort_val"][:, 0], atol=1e-3)
    assert [[x["box"][k] for k in ("left", "top", "right", "bottom")] for x in d["detections"]] == \
        z["det_t005_nmssort_ltrb"].tolist()
    assert d["output"] is None and not list(tmp_path.iterdir())


def test_partial_is_byte_for_byte_darknets(tmp_path, capsys):
    out = tmp_path / "p5.weights"
    rc, text, _ = run(["partial", REF / "cfg" / "ttt4_fixanchors.cfg", DN / "weights" / "ttt4_minloss.weights",
                       out, 5], capsys)
    assert rc == 0 and "19676 bytes" in text
    assert out.read_bytes() == (REF / "partial" / "ttt4_partial5.weights").read_bytes()


def test_info_table_and_json(capsys):
    rc, out, _ = run(["info", REF / "cfg" / "ttt4_b1.cfg", DN / "weights" / "ttt4_minloss.weights"], capsys)
    assert rc == 0
    assert "Total: 240361 params" in out and "detection" in out
    assert "v0.2.0, seen 2444544, 6 layers with values (complete)" in out
    rc, out, _ = run(["info", DN / "cfg" / "yolov3-tiny-voc_M1.cfg", "--json"], capsys)
    d = json.loads(out)
    assert rc == 0 and d["total_params"] == 8_720_134 and len(d["layers"]) == 24
    assert any(r["ternary"] for r in d["layers"]) and d["layers"][0]["input"] == [3, 416, 416]


def test_every_error_path_is_one_line_and_status_2(tmp_path, capsys):
    data, cfg, weights, image = _ttt4()
    (tmp_path / "bad.cfg").write_text("[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=abc\n")
    (tmp_path / "nonames.data").write_text("classes=2\nnames=nowhere.names\n")
    (tmp_path / "notimage.png").write_text("hello")
    cases = [
        (["detector", "test", data, cfg, DN / "weights" / "cifar_minin.weights", image], "bytes"),
        (["detector", "test", data, cfg, weights, tmp_path / "missing.png"], "missing.png"),
        (["detector", "test", data, cfg, weights, tmp_path / "notimage.png"], "notimage.png"),
        (["detector", "test", data, cfg, weights, image, "--thresh", "1.5"], "--thresh"),
        (["detector", "test", tmp_path / "nonames.data", cfg, weights, image], "nowhere.names"),
        (["detector", "test", data, REF / "cfg" / "cifar_minin_b1.cfg", DN / "weights" / "cifar_minin.weights",
          image], "no [region] or [yolo]"),
        (["info", tmp_path / "bad.cfg"], "bad.cfg:6"),
        (["info", cfg, DN / "weights" / "cifar_minin.weights"], "the file has"),
        (["partial", cfg, tmp_path / "none.weights", tmp_path / "o.weights", 3], "none.weights"),
        (["partial", cfg, weights, tmp_path / "o.weights", -1], "N must be"),
    ]
    for argv, needle in cases:
        rc, _, err = run(argv, capsys)
        assert rc == 2 and err.startswith("tritnet: error: ") and needle in err, (argv, err)
        assert len(err.strip().splitlines()) == 1


def test_classifier_predict_in_darknets_argument_order_gives_darknets_top_k(capsys):
    """`tritnet classifier predict DATA CFG WEIGHTS IMAGE` through the real command line: the .data file's
    top=3 and names, and the values darknet's predict_classifier computed for the same image."""
    from tritnet.cli import main
    z = np.load(REF / "cifar_minin" / "cifar_minin_20.npz")
    names = (DN / "weights" / "labels5.txt").read_text().split()
    for k in (0, 7):
        image = REF / "images" / "cifar10" / Path(str(z["image_paths"][k])).name
        assert main(["classifier", "predict", str(REF / "cfg" / "cifar5_abs.data"), str(REF / "cfg" / "cifar_minin_b1.cfg"),
                     str(DN / "weights" / "cifar_minin.weights"), str(image), "--json"]) == 0
        top = json.loads(capsys.readouterr().out)["top"]
        assert [t["class"] for t in top] == [names[i] for i in z["top_k"][k]]        # top=3 from the .data file
        assert np.allclose([t["value"] for t in top], z["net_output"][k][z["top_k"][k]], atol=1e-5)
    assert main(["classifier", "predict", str(REF / "cfg" / "cifar5_abs.data"), str(REF / "cfg" / "cifar_minin_b1.cfg"),
                 str(DN / "weights" / "cifar_minin.weights"), str(image), "--top", "1", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["top"]) == 1
