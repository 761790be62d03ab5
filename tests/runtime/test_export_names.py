"""Class names travel with the export: `tritnet export --data FILE.data`, found by default when the cfg's data is
known, recorded in a classifier checkpoint; `tritnet-rt info` shows them, `tritnet run` labels with them. And
`tritnet bench` says "faster" or "slower" in words."""
import json
import re
import shutil
import subprocess
import sys

import pytest

from tritnet.cli import main
from tritnet_rt.cli import main as rt_main
from tests.paths import SHARED_DATA as SHARED

DN = SHARED / "darknet"
REF = DN / "reference"
pytestmark = pytest.mark.skipif(not REF.is_dir(), reason=f"darknet references not found at {REF}")
IMAGE = REF / "inputs" / "raccoon__raccoon-105__stb_rgb.png"


def _run(argv, capsys, cli=main):
    rc = cli([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return out


def _export(tmp_path, capsys, name, *extra, cfg=REF / "cfg" / "ttt4_b1.cfg",
            weights=DN / "weights" / "ttt4_minloss.weights"):
    out = tmp_path / name
    argv = ["export", cfg, out, "--weights", weights, "--method", "none", "--json", *extra]
    return out, json.loads(_run(argv, capsys))


def test_names_come_from_the_data_file_and_show_in_info_and_run(tmp_path, capsys):
    # no --data: the one .data file beside the cfg whose names fit the network's 2 classes (ttt4.data; the
    # coco and voc .data files there have 80 and 20)
    tnp, r = _export(tmp_path, capsys, "found.tnp")
    assert r["class_names"] == ["class0", "class1"] and r["names_from"] == str(REF / "cfg" / "ttt4.data")
    info = json.loads(_run(["info", tnp, "--json"], capsys, cli=rt_main))
    assert info["classes"] == 2 and info["class_names"] == ["class0", "class1"] and info["names_embedded"]
    assert "classes: 2 (class0, class1)" in _run(["info", tnp], capsys, cli=rt_main).splitlines()

    # --data: its names= file, names with spaces kept whole; `tritnet run` labels the boxes with them
    (tmp_path / "pets.names").write_text("raccoon face\nother animal\n")
    (tmp_path / "pets.data").write_text(f"classes=2\nnames={tmp_path / 'pets.names'}\n")
    tnp, r = _export(tmp_path, capsys, "pets.tnp", "--data", tmp_path / "pets.data")
    assert r["class_names"] == ["raccoon face", "other animal"]
    out = _run(["run", tnp, IMAGE, "--thresh", ".3", "--out", ""], capsys)
    assert out.splitlines()[1].startswith("raccoon face: 43%")
    assert "classes: 2 (raccoon face, other animal)" in _run(["info", tnp], capsys, cli=rt_main)

    # names that do not fit the network are refused when given, in one line
    (tmp_path / "three.names").write_text("a\nb\nc\n")
    (tmp_path / "three.data").write_text(f"classes=3\nnames={tmp_path / 'three.names'}\n")
    assert main(["export", str(REF / "cfg" / "ttt4_b1.cfg"), str(tmp_path / "x.tnp"), "--weights",
                 str(DN / "weights" / "ttt4_minloss.weights"), "--data", str(tmp_path / "three.data")]) == 2
    err = capsys.readouterr().err
    assert err == f"tritnet: error: {tmp_path / 'three.data'}: 3 class names, but the network has 2 classes\n"
    assert not (tmp_path / "x.tnp").exists()

    # --no-names: none embedded, and info says how to embed them
    tnp, r = _export(tmp_path, capsys, "bare.tnp", "--no-names")
    assert r["class_names"] is None
    info = json.loads(_run(["info", tnp, "--json"], capsys, cli=rt_main))
    assert info["classes"] == 2 and info["class_names"] is None and not info["names_embedded"]
    assert "classes: 2 (no names in the file: `tritnet export … --data FILE.data` or --names embeds them)" in \
        _run(["info", tnp], capsys, cli=rt_main)


def test_names_of_a_training_run_and_none_when_nothing_says(tmp_path, capsys):
    cfg = tmp_path / "alone" / "ttt4.cfg"                        # a cfg with no .data anywhere near it
    cfg.parent.mkdir()
    shutil.copy(REF / "cfg" / "ttt4_b1.cfg", cfg)
    run = tmp_path / "runs" / "train"
    (run / "weights").mkdir(parents=True)
    shutil.copy(DN / "weights" / "ttt4_minloss.weights", run / "weights" / "best.weights")
    _, r = _export(tmp_path, capsys, "none.tnp", cfg=cfg, weights=run / "weights" / "best.weights")
    assert r["class_names"] is None and r["names_from"] is None
    # a run folder's args.yaml that names the training data: its names
    (run / "args.yaml").write_text(f"data: {REF / 'cfg' / 'ttt4.data'}\ncfg: {cfg}\n")
    _, r = _export(tmp_path, capsys, "run.tnp", cfg=cfg, weights=run / "weights" / "best.weights")
    assert r["class_names"] == ["class0", "class1"] and r["names_from"] == str(REF / "cfg" / "ttt4.data")


def test_a_classifier_checkpoint_keeps_its_class_names(tmp_path, capsys):
    import tritnet
    from tritnet.models import model_checkpoint, save_atomic
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    save_atomic(model_checkpoint(tritnet.create_model("resnet20"), class_names=names), tmp_path / "c.pt")
    out = json.loads(_run(["export", tmp_path / "c.pt", tmp_path / "c.tnp", "--json"], capsys))
    assert out["class_names"] == names
    info = json.loads(_run(["info", tmp_path / "c.tnp", "--json"], capsys, cli=rt_main))
    assert info["class_names"] == names and info["classes"] == 10


def test_bench_says_faster_or_slower_in_words(tmp_path, capsys):
    _run(["export", "resnet20", tmp_path / "r.tnp", "--random-weights"], capsys)
    p = subprocess.run([sys.executable, "-m", "tritnet", "bench", str(tmp_path / "r.tnp"), "--tools", "runtime,torch",
                        "--rounds", "2", "--calls", "1"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    torch_row = next(ln for ln in p.stdout.splitlines() if ln.strip().startswith("PyTorch"))
    assert re.search(r"tritnet_rt \d+\.\d\dx (faster|slower)$", torch_row), torch_row
    assert "speed-up" not in p.stdout and "speedup" not in p.stdout
