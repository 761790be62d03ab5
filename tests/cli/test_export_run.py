"""`tritnet export`, `run` and `bench` through the real command line (tritnet.cli.main)."""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tritnet.cli import main


def _run(argv, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 0, err
    return out


def _fails(argv, capsys) -> str:
    """The one-line error of a command that must fail with status 2."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tritnet: error: ") and "Traceback" not in err, err
    return err


def test_export_run_bench_a_classifier(tmp_path, capsys, shared_data):   # bench reads its images there
    pytest.importorskip("onnxruntime")
    out = _run(["export", "resnet20", str(tmp_path / "r.tnp"), "--random-weights", "--method", "twn", "--per-channel",
                "--bits", "1.6", "--onnx", str(tmp_path / "r.onnx"), "--json"], capsys)
    info = json.loads(out)
    assert info["ternary_layers"] == 20 and (tmp_path / "r.onnx").is_file()
    Image.fromarray((np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)).save(tmp_path / "x.png")
    top = json.loads(_run(["run", str(tmp_path / "r.tnp"), str(tmp_path / "x.png"), "--json", "--isa", "serial"],
                          capsys))
    # against the exported ONNX graph in ONNX Runtime (float activations), the image normalised by hand
    import onnxruntime as ort
    from tritnet.models import get_model_info
    info = get_model_info("resnet20")
    x = (np.asarray(Image.open(tmp_path / "x.png"), np.float32) / 255 - np.float32(info.mean)) / np.float32(info.std)
    session = ort.InferenceSession(str(tmp_path / "r.onnx"), providers=["CPUExecutionProvider"])
    logits = session.run(None, {session.get_inputs()[0].name: x.transpose(2, 0, 1)[None]})[0][0]
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert len(top["top"]) == 5 and [t["index"] for t in top["top"][:3]] == np.argsort(-probs)[:3].tolist()
    assert np.allclose([t["probability"] for t in top["top"]], probs[[t["index"] for t in top["top"]]], atol=0.02)
    # bench in its own process, as a user runs it: OpenVINO's and ONNX Runtime's thread pools and their teardown
    # stay out of the test process
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", "tritnet", "bench", str(tmp_path / "r.tnp"), "--rounds", "2",
                           "--calls", "1", "--json"], capture_output=True, text=True, timeout=600,
                          cwd=Path(__file__).resolve().parents[2])   # the data root: the project's pyproject.toml
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout)
    assert set(r["tools"]) == {"runtime", "torch", "ort_fp32", "ort_int8", "ov_fp32", "ov_default", "ov_int8"}
    assert all(v["median_ms"] > 0 for v in r["tools"].values())


def test_export_run_a_darknet_detector(tmp_path, capsys, shared_data):
    w = shared_data / "darknet" / "weights"
    ref = shared_data / "darknet" / "reference"
    out = _run(["export", str(ref / "cfg" / "ttt4_b1.cfg"), str(tmp_path / "d.tnp"), "--weights",
                str(w / "ttt4_minloss.weights"), "--method", "none",
                "--darknet-weights", str(tmp_path / "d.weights"), "--json"], capsys)
    assert json.loads(out)["ternary_layers"] == 0
    assert (tmp_path / "d.weights").read_bytes() == (w / "ttt4_minloss.weights").read_bytes()   # float: as read
    # darknet's own detections of this image (the stb-decoded PNG darknet read), as `detector test` matches them
    img = ref / "inputs" / "bccd__BloodImage_00007__stb_rgb.png"
    res = json.loads(_run(["run", str(tmp_path / "d.tnp"), str(img), "--thresh", ".05", "--out",
                           str(tmp_path / "p.jpg"), "--json"], capsys))
    z = np.load(ref / "ttt4" / "ttt4__bccd__BloodImage_00007.npz")
    assert [[x["candidate"], x["class_id"]] for x in res["detections"]] == z["det_t005_nmssort_idx"].tolist()
    assert np.allclose([x["probability"] for x in res["detections"]], z["det_t005_nmssort_val"][:, 0], atol=1e-3)
    assert [[x["box"][k] for k in ("left", "top", "right", "bottom")] for x in res["detections"]] == \
        z["det_t005_nmssort_ltrb"].tolist()
    assert Image.open(tmp_path / "p.jpg").size == Image.open(img).size
    # the same detector with every conv ternary (TWN per channel), on the int8 kernels, against PyTorch's float
    # activations through `detector test` on the cfg with ternary=1 everywhere
    out = _run(["export", str(ref / "cfg" / "ttt4_b1.cfg"), str(tmp_path / "t.tnp"), "--weights",
                str(w / "ttt4_minloss.weights"), "--all-ternary", "--per-channel", "--json"], capsys)
    text = (ref / "cfg" / "ttt4_b1.cfg").read_text()
    assert json.loads(out)["ternary_layers"] == text.count("[convolutional]") > 0
    (tmp_path / "all.cfg").write_text(text.replace("[convolutional]", "[convolutional]\nternary=1"))
    got = json.loads(_run(["run", str(tmp_path / "t.tnp"), str(img), "--thresh", ".001", "--out", "", "--json"],
                          capsys))["detections"]
    want = json.loads(_run(["detector", "test", str(ref / "cfg" / "ttt4.data"), str(tmp_path / "all.cfg"),
                            str(w / "ttt4_minloss.weights"), str(img), "--method", "twn", "--per-channel",
                            "--thresh", ".001", "--out", "", "--json"], capsys))["detections"]
    assert len(want) >= 3 and [(x["candidate"], x["class_id"]) for x in got] == \
        [(x["candidate"], x["class_id"]) for x in want]
    assert np.allclose([x["probability"] for x in got], [x["probability"] for x in want], rtol=0.05)
    ltrb = [[x["box"][k] for k in ("left", "top", "right", "bottom")] for x in got + want]
    assert np.abs(np.subtract(ltrb[:len(got)], ltrb[len(got):])).max() <= 4      # int8 activations: a few pixels


def test_user_errors_name_the_file(tmp_path, capsys):
    assert "nope.tnp" in _fails(["run", str(tmp_path / "nope.tnp"), "x.png"], capsys)
    (tmp_path / "bad.tnp").write_bytes(b"TRITNET\x1a" + bytes(10))
    (tmp_path / "x.png").write_bytes(b"")
    assert "bad.tnp: truncated" in _fails(["run", str(tmp_path / "bad.tnp"), str(tmp_path / "x.png")], capsys)
    assert "missing.cfg" in _fails(["export", str(tmp_path / "missing.cfg"), str(tmp_path / "o.tnp")], capsys)


def _tiny_tnp(tmp_path, capsys):
    """A random-weights ResNet-20 packed file and a 32x32 image, for the option checks."""
    _run(["export", "resnet20", str(tmp_path / "r.tnp"), "--random-weights"], capsys)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "x.png")
    return str(tmp_path / "r.tnp"), str(tmp_path / "x.png")


def test_export_into_a_folder_is_refused_and_leaves_nothing(tmp_path, capsys, shared_data):
    cfg, w = shared_data / "darknet" / "reference" / "cfg" / "ttt4_b1.cfg", shared_data / "darknet" / "weights"
    folder = tmp_path / "out"
    folder.mkdir()
    err = _fails(["export", str(cfg), str(folder), "--weights", str(w / "ttt4_minloss.weights")], capsys)
    assert f"argument out: {folder}: is a folder; give a file name for the packed file" in err
    assert list(tmp_path.iterdir()) == [folder] and not list(folder.iterdir())      # no stray out.tmp


def test_export_of_a_cfg_without_weights_needs_random_weights(tmp_path, capsys, shared_data):
    cfg = shared_data / "darknet" / "reference" / "cfg" / "ttt4_b1.cfg"
    err = _fails(["export", str(cfg), str(tmp_path / "d.tnp")], capsys)
    assert f"{cfg}: no --weights given, so the export would hold random weights" in err and "--random-weights" in err
    assert not (tmp_path / "d.tnp").exists()
    assert "resnet20: no --pretrained given" in _fails(["export", "resnet20", str(tmp_path / "r.tnp")], capsys)
    _run(["export", str(cfg), str(tmp_path / "d.tnp"), "--random-weights"], capsys)
    assert (tmp_path / "d.tnp").stat().st_size > 0


def test_counts_below_one_are_refused_by_run_and_bench_alike(tmp_path, capsys):
    tnp, image = _tiny_tnp(tmp_path, capsys)
    for argv, message in [
        (["run", tnp, image, "--threads", "0"], "argument --threads: must be an integer >= 1, got '0'"),
        (["bench", tnp, "--threads", "0"], "argument --threads: must be an integer >= 1, got '0'"),
        (["bench", tnp, "--calls", "0"], "argument --calls: must be an integer >= 1, got '0'"),
        (["run", tnp, image, "--top", "0"], "argument --top: must be an integer >= 1, got '0'"),
        (["run", tnp, image, "--thresh", "nan"], "argument --thresh: must be a number between 0 and 1, got 'nan'"),
    ]:
        assert message in _fails(argv, capsys), argv


def test_tritnet_rt_checks_the_same_way_without_torch(tmp_path, capsys):
    import subprocess
    import sys

    from tritnet_rt.cli import main as rt_main
    tnp, image = _tiny_tnp(tmp_path, capsys)
    for argv, message in [
        (["run", tnp, image, "--threads", "0"], "argument --threads: must be an integer >= 1, got '0'"),
        (["time", tnp, "--repeat", "0"], "argument --repeat: must be an integer >= 1, got '0'"),
        (["info", str(tmp_path)], f"argument file: {tmp_path}: is a folder, not a packed file"),
        (["run", tnp, image, "--out", str(tmp_path)], f"argument --out: {tmp_path}: is a folder"),
    ]:
        assert rt_main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("tritnet-rt: error: ") and message in err and len(err.splitlines()) == 1, err
    # the checks import no torch, and a closed stdout ends tritnet-rt quietly too
    code = ("import sys; sys.modules['torch'] = None; from tritnet_rt.cli import main; "
            f"sys.exit(main(['info', {tnp!r}]))")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 141 and err == "", err


def test_export_with_calibration_images_fixes_every_int8_convs_scale(tmp_path, capsys):
    from tritnet_rt.format import load_packed
    folder = tmp_path / "cal"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(folder / f"{i}.png")
    argv = ["export", "resnet20", str(tmp_path / "r.tnp"), "--random-weights", "--method", "twn", "--per-channel",
            "--calibration", str(folder), "--calibration-images", "8", "--json"]
    assert json.loads(_run(argv, capsys))["calibrated_convs"] == 19          # every conv of ResNet-20
    quant = [n["attrs"]["input_quant"] for n in load_packed(tmp_path / "r.tnp").graph["nodes"] if n["op"] == "conv"]
    assert len(quant) == 19 and quant[0]["zero_point"] > 0 and all(q["zero_point"] == 0 for q in quant[1:])
    from tritnet_rt.cli import main as rt_main
    rt_main(["info", str(tmp_path / "r.tnp"), "--json"])
    assert json.loads(capsys.readouterr().out)["calibrated_int8_convs"] == "19 of 19"
    # (the first conv reads the normalized image, below 0 too; the others relu outputs)
    (folder / "9.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    assert "9.png: not an image Pillow can read" in _fails(argv[:-2] + ["9"], capsys)
    (folder / "9.png").unlink()
    assert json.loads(_run(argv[:-2] + ["500", "--json"], capsys))["calibrated_convs"] == 19   # all 8 there are
    for f in list(folder.iterdir())[:2]:
        f.unlink()
    assert f"{folder}: 6 images, 8 are needed" in _fails(argv, capsys)
