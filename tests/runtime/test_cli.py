"""`tritnet export`, `run` and `bench` through the real command line (tritnet.cli.main)."""
import json

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


def test_export_run_bench_a_classifier(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    out = _run(["export", "resnet20", str(tmp_path / "r.tnp"), "--method", "twn", "--per-channel", "--bits", "1.6",
                "--onnx", str(tmp_path / "r.onnx"), "--json"], capsys)
    info = json.loads(out)
    assert info["ternary_layers"] == 20 and (tmp_path / "r.onnx").is_file()
    Image.fromarray((np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)).save(tmp_path / "x.png")
    top = json.loads(_run(["run", str(tmp_path / "r.tnp"), str(tmp_path / "x.png"), "--json", "--isa", "serial"], capsys))
    assert len(top["top"]) == 5 and abs(sum(t["probability"] for t in top["top"]) - 1) < 1
    r = json.loads(_run(["bench", str(tmp_path / "r.tnp"), "--rounds", "2", "--calls", "1", "--json"], capsys))
    assert set(r["tools"]) == {"runtime", "torch", "ort_fp32", "ort_int8"}
    assert all(v["median_ms"] > 0 for v in r["tools"].values())


def test_export_run_a_darknet_detector(tmp_path, capsys, shared_data):
    w = shared_data / "darknet" / "weights"
    ref = shared_data / "darknet" / "reference"
    out = _run(["export", str(ref / "cfg" / "ttt4_b1.cfg"), str(tmp_path / "d.tnp"), "--weights",
                str(w / "ttt4_minloss.weights"), "--method", "none",
                "--darknet-weights", str(tmp_path / "d.weights"), "--json"], capsys)
    assert json.loads(out)["ternary_layers"] == 0 and (tmp_path / "d.weights").stat().st_size > 0
    img = shared_data / "bccd" / "JPEGImages" / "BloodImage_00007.jpg"
    res = json.loads(_run(["run", str(tmp_path / "d.tnp"), str(img), "--thresh", "0.02", "--out",
                           str(tmp_path / "p.jpg"), "--json"], capsys))
    assert len(res["detections"]) >= 1 and (tmp_path / "p.jpg").is_file()
    # the same detector with every conv ternary (TWN per channel), on the int8 kernels
    out = _run(["export", str(ref / "cfg" / "ttt4_b1.cfg"), str(tmp_path / "t.tnp"), "--weights",
                str(w / "ttt4_minloss.weights"), "--all-ternary", "--per-channel", "--json"], capsys)
    convs = (ref / "cfg" / "ttt4_b1.cfg").read_text().count("[convolutional]")
    assert json.loads(out)["ternary_layers"] == convs > 0
    res = json.loads(_run(["run", str(tmp_path / "t.tnp"), str(img), "--thresh", "0.02", "--out", "", "--json"],
                          capsys))
    assert isinstance(res["detections"], list)


def test_user_errors_name_the_file(tmp_path, capsys):
    assert "nope.tnp" in _fails(["run", str(tmp_path / "nope.tnp"), "x.png"], capsys)
    (tmp_path / "bad.tnp").write_bytes(b"TRITNET\x1a" + bytes(10))
    (tmp_path / "x.png").write_bytes(b"")
    assert "bad.tnp: truncated" in _fails(["run", str(tmp_path / "bad.tnp"), str(tmp_path / "x.png")], capsys)
    assert "missing.cfg" in _fails(["export", str(tmp_path / "missing.cfg"), str(tmp_path / "o.tnp")], capsys)
