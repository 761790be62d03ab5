"""The darknet verbs (`detector test`, `partial`, `info`) through the real command line (tritnet.cli.main)."""
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tritnet.cli import main

DN = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "darknet"
REF = DN / "reference"
pytestmark = pytest.mark.skipif(not REF.is_dir(), reason=f"darknet references not found at {REF}")


def _ttt4(image="raccoon__raccoon-105"):
    return [REF / "cfg" / "ttt4.data", REF / "cfg" / "ttt4_b1.cfg", DN / "weights" / "ttt4_minloss.weights",
            REF / "inputs" / f"{image}__stb_rgb.png"]


def test_detector_test_prints_darknets_list_and_draws(tmp_path, cli):
    out_png = tmp_path / "pred.png"
    rc, out, err = cli(["detector", "test", *_ttt4(), "--out", out_png])
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


def test_detector_test_json(tmp_path, cli):
    rc, out, _ = cli(["detector", "test", *_ttt4("raccoon__raccoon-128"), "--thresh", ".05", "--out", "",
                      "--json"])
    assert rc == 0
    d = json.loads(out)
    z = np.load(REF / "ttt4" / "ttt4__raccoon__raccoon-128.npz")
    assert [(x["candidate"], x["class"]) for x in d["detections"]] == [
        (int(i), f"class{c}") for i, c in z["det_t005_nmssort_idx"]]
    assert np.allclose([x["probability"] for x in d["detections"]], z["det_t005_nmssort_val"][:, 0], atol=1e-3)
    assert [[x["box"][k] for k in ("left", "top", "right", "bottom")] for x in d["detections"]] == \
        z["det_t005_nmssort_ltrb"].tolist()
    assert d["output"] is None and not list(tmp_path.iterdir())


def test_partial_is_byte_for_byte_darknets(tmp_path, cli):
    out = tmp_path / "p5.weights"
    rc, text, _ = cli(["partial", REF / "cfg" / "ttt4_fixanchors.cfg", DN / "weights" / "ttt4_minloss.weights",
                       out, 5])
    assert rc == 0 and "19676 bytes" in text
    assert out.read_bytes() == (REF / "partial" / "ttt4_partial5.weights").read_bytes()


def test_info_table_and_json(cli):
    rc, out, _ = cli(["info", REF / "cfg" / "ttt4_b1.cfg", DN / "weights" / "ttt4_minloss.weights"])
    assert rc == 0
    assert "Total: 240361 params" in out and "detection" in out
    assert "v0.2.0, seen 2444544, 6 layers with values (complete)" in out
    rc, out, _ = cli(["info", DN / "cfg" / "yolov3-tiny-voc_M1.cfg", "--json"])
    d = json.loads(out)
    assert rc == 0 and d["total_params"] == 8_720_134 and len(d["layers"]) == 24
    assert any(r["ternary"] for r in d["layers"]) and d["layers"][0]["input"] == [3, 416, 416]


def test_every_error_path_is_one_line_and_status_2(tmp_path, cli):
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
        (["partial", cfg, weights, tmp_path / "o.weights", -1], "argument n: must be an integer >= 0, got '-1'"),
    ]
    for argv, needle in cases:
        rc, _, err = cli(argv)
        assert rc == 2 and err.startswith("tritnet: error: ") and needle in err, (argv, err)
        assert len(err.strip().splitlines()) == 1


def test_classifier_predict_in_darknets_argument_order_gives_darknets_top_k(capsys):
    """`tritnet classifier predict DATA CFG WEIGHTS IMAGE` through the real command line: the .data file's
    top=3 and names, and the values darknet's predict_classifier computed for the same image."""
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


def test_detector_test_refuses_damaged_weights_in_one_line_and_info_reports_a_prefix(tmp_path, cli):
    """NaN weights, a negative variance, a header alone or a file ending between layers ran with a warning or
    none, and found nothing; each is now one line naming the file, the layer and the field."""
    import struct
    data, cfg, weights, image = _ttt4()
    raw = weights.read_bytes()
    # layer 0 (cfg line 23): biases, scales, rolling_mean, rolling_variance of 6 floats from byte 20, then weights
    nan, negvar = bytearray(raw), bytearray(raw)
    nan[116 + 4 * 5:116 + 4 * 6] = struct.pack("<f", float("nan"))          # weights[0, 0, 1, 2]
    negvar[92 + 4 * 3:92 + 4 * 4] = struct.pack("<f", -1.0)                  # rolling_variance[3]
    p = tmp_path / "damaged.weights"
    damaged = "which darknet turns into NaN outputs; the file is damaged (allow_nonfinite=True loads it for inspection)"
    cases = [
        (nan, f"layer 0 ([convolutional], {cfg}:23): weights holds 1 NaN or infinite value (weights[0, 0, 1, 2] = nan), "
              f"{damaged}"),
        (negvar, f"layer 0 ([convolutional], {cfg}:23): rolling_variance holds 1 negative value (rolling_variance[3] = "
                 f"-1.0), {damaged}"),
        (raw[:20], f"the file holds only a 20-byte header, no layer values; the network needs {len(raw)} bytes"),
        (raw[:764], f"the file ends before layer 2 ([convolutional], {cfg}:35): it holds 1 of the 6 layers with "
                    f"parameters (764 of {len(raw)} bytes); it is truncated, or a backbone made by partial, which only "
                    f"training starts from"),
    ]
    for content, message in cases:
        p.write_bytes(bytes(content))
        rc, out, err = cli(["detector", "test", data, cfg, p, image, "--out", ""])
        assert (rc, out, err) == (2, "", f"tritnet: error: {p}: {message}\n")
    rc, out, err = cli(["info", cfg, p])                  # inspecting: the prefix is reported as one
    assert rc == 0, err
    assert out.splitlines()[-1] == f"Weights: {p}: v0.2.0, seen 2444544, 1 layers with values (a prefix: ends before layer 2)"


def test_a_folder_where_a_file_belongs_is_one_line_naming_it(tmp_path, cli):
    data, cfg, weights, image = _ttt4()
    folder = tmp_path / "adir"
    folder.mkdir()
    cases = [
        (["info", folder], f"argument cfg: {folder}: is a folder, not a cfg file"),
        (["info", cfg, folder], f"argument weights: {folder}: is a folder, not a weights file"),
        (["detector", "test", data, cfg, folder, image],
         f"argument weights: {folder}: is a folder, not a weights file"),
        (["detector", "test", data, cfg, weights, image, "--out", folder],
         f"argument --out: {folder}: is a folder; give a file name for the image with the boxes"),
        (["partial", cfg, weights, folder, 3], f"argument out: {folder}: is a folder; give a file name"),
    ]
    for argv, needle in cases:
        rc, _, err = cli(argv)
        assert rc == 2 and err.startswith("tritnet: error: ") and needle in err, (argv, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == [folder] and not list(folder.iterdir())


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path):
    """`tritnet info big.cfg | head -1`: stdout closes early; no BrokenPipeError traceback, status 141 (as a
    process killed by SIGPIPE)."""
    p = subprocess.Popen([sys.executable, "-m", "tritnet", "info", str(DN / "cfg" / "yolov3-voc.cfg")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()                                    # the reader is gone before the table is printed
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 141 and err == "", err


# ---- dialects ---------------------------------------------------------------------------------------------------
def test_info_reports_the_dialect_and_darknets_counts(cli):
    """yolov4-tiny: AlexeyAB's darknet, 6,062,814 floats (the official .weights), no key called ignored;
    --dialect pjreddie reads it as pjreddie's darknet would (6,256,350) and says which keys AlexeyAB's reads."""
    from tritnet import darknet
    from tritnet.cli import options
    assert options.DIALECTS == darknet.DIALECTS          # the CLI's copy, kept to start without numpy
    y4 = DN / "cfg" / "yolov4-tiny.cfg"
    rc, out, err = cli(["info", y4])
    assert rc == 0 and "ignores" not in err
    assert out.splitlines()[0] == f"Dialect: alexeyab (read as AlexeyAB's darknet read it: [route] groups=2 at {y4}:60)"
    assert "Total: 6062814 params" in out and "    3 route 2  1/2" in out
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        rc, out, _ = cli(["info", y4, "--dialect", "pjreddie"])
    assert "yolov4-tiny.cfg:60: [route]: unknown key 'groups' (pjreddie's darknet ignores it: 'Unused field'; " \
           "AlexeyAB's darknet reads it (--dialect alexeyab))" in str(rec[0].message)
    assert rc == 0 and "Total: 6256350 params" in out and out.startswith("Dialect: pjreddie (read as pjreddie's "
                                                                         "darknet and its fork darknetTWN read it: "
                                                                         "--dialect)")
    with warnings.catch_warnings(record=True) as rec:   # its [net] cutmix and mosaic, which AlexeyAB's darknet reads
        warnings.simplefilter("always")
        rc, out, _ = cli(["info", DN / "cfg" / "efficientnet_b0-twn.cfg", "--json"])
    assert "unknown key 'cutmix'" in str(rec[0].message)
    d = json.loads(out)
    assert rc == 0 and d["dialect"] == "pjreddie" and d["total_params"] == 4_345_615 and len(d["layers"]) == 136
    assert [r["type"] for r in d["layers"][3:7]] == ["avg", "conv", "conv", "scale"]


def test_detector_test_prints_alexeyabs_lines(tmp_path, cli):
    """yolov4-tiny through the command: plain resize, greedy DIoU NMS, draw_detections_v3's order and its
    -ext_output boxes (rounded), the lines AlexeyAB's CLI printed for the _resize reference."""
    import hashlib
    import importlib.util
    ref2 = DN / "reference-alexeyab"
    spec = importlib.util.spec_from_file_location("g", ref2 / "scripts" / "gen_random_weights.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    data = gen.generate(str(DN / "cfg" / "yolov4-tiny.cfg"), 0)
    assert hashlib.sha256(data).hexdigest() == "996c081f0e05afcd5f1f5723016eed8a1a1fa685abb6c576082fdee157072338"
    (tmp_path / "y4.weights").write_bytes(data)
    (tmp_path / "c.names").write_text("".join(f"c{i}\n" for i in range(80)))
    (tmp_path / "c.data").write_text(f"classes=80\nnames={tmp_path / 'c.names'}\n")
    tag = "yolov4-tiny_random_seed0_resize"
    z = np.load(ref2 / tag / f"{tag}__bccd__BloodImage_00011.npz")
    rc, out, err = cli(["detector", "test", tmp_path / "c.data", DN / "cfg" / "yolov4-tiny.cfg",
                        tmp_path / "y4.weights", REF / str(z["stb_rgb_png"]), "--thresh", ".1", "--out", ""])
    assert rc == 0, err
    lines = out.splitlines()[1:]
    want = []
    for (cand, cls), v in zip(z["det_t010_nmssort_idx"].tolist(), z["det_t010_nmssort_val"]):
        x, y, w, h = (np.float32(t) for t in v[2:6])
        left, top = (x - w / np.float32(2)) * np.float32(640), (y - h / np.float32(2)) * np.float32(480)
        r = [float(np.floor(abs(float(t)) + .5) * np.sign(t)) for t in (left, top, w * np.float32(640),
                                                                          h * np.float32(480))]
        want.append(f"c{cls}: {float(np.float32(v[0]) * np.float32(100)):.0f}%\t(left_x: {r[0]:4.0f}   "
                    f"top_y: {r[1]:4.0f}   width: {r[2]:4.0f}   height: {r[3]:4.0f})")
    assert len(lines) == len(want) == 175
    assert [ln.split("\t")[0] for ln in lines] == [w.split("\t")[0] for w in want]     # classes, %, order
    assert sum(a != b for a, b in zip(lines, want)) == 0, [(a, b) for a, b in zip(lines, want) if a != b][:3]
