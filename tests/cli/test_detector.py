"""The verbs through the real command line (tritnet.cli.main): voc_label, detector train/map/recall/valid, and
user errors (exit 2, the file named)."""
import json
import warnings

import pytest
import torch

from tests.yolo.detector_helpers import make_voc, write_cfg
from tritnet.data import DataWarning
from tritnet.yolo import map_detector
from tritnet.yolo.validate import recall_detector


def test_train_map_recall_valid(shapes, tmp_path, cli):
    cfg = write_cfg(tmp_path / "tiny.cfg", max_batches=2)
    rc, out, err = cli(["detector", "train", shapes, cfg, "--no-progress", "--workers", "0", "--map"])
    assert rc == 0, err
    assert "2: " in out and "mAP@0.5" in out and "done: 2 iterations" in out
    weights = shapes.parent / "backup" / "tiny_final.weights"
    rc, out, err = cli(["detector", "map", shapes, cfg, weights, "--json", "--workers", "0"])
    assert rc == 0, err
    m = json.loads(out)
    assert {"map11", "map", "precision", "recall", "f1", "tp", "fp", "fn", "avg_iou", "classes"} <= set(m)
    assert [c["name"] for c in m["classes"]] == ["red", "green"] and m["truths"] == 6
    # the command prints what the API computes (its scoring is tested by hand in tests/eval), in percent
    api = map_detector(shapes, cfg, weights, workers=0)["result"]
    assert (m["map11"], m["avg_iou"], m["tp"], m["fp"]) == pytest.approx((100 * api.map11, 100 * api.avg_iou,
                                                                          api.tp, api.fp))
    rc, out, err = cli(["detector", "map", shapes, cfg, weights, "--workers", "0"])
    assert "class_id = 1, name = green" in out and "mean average precision (mAP@0.50)" in out
    assert "for conf_thresh = 0.25, TP = " in out and "average IoU = " in out
    rc, out, err = cli(["detector", "recall", shapes, cfg, weights, "--workers", "0"])
    lines = out.strip().splitlines()
    found = recall_detector(shapes, cfg, weights, workers=0)
    assert found["total"] == 6 and found["images"] == 3
    assert rc == 0 and len(lines) == 3 and lines[-1].split()[:3] == ["2", str(found["correct"]), "6"]
    assert "RPs/Img:" in lines[-1] and "Recall:" in lines[-1]
    res = tmp_path / "results"
    rc, out, err = cli(["detector", "valid", shapes, cfg, weights, "--outdir", res, "--workers", "0", "--json"])
    assert rc == 0, err
    v = json.loads(out)
    assert set(v["written"]) == {"red", "green"} and "AP" in v["coco"]
    for name in ("red", "green"):
        for line in (res / f"comp4_det_test_{name}.txt").read_text().splitlines():
            image_id, prob, x0, y0, x1, y1 = line.split()
            assert image_id.startswith("valid_") and 0 < float(prob) <= 1
            # darknet's print_detector_detections: 1-based, xmin/ymin >= 1, xmax <= w, ymax <= h
            assert float(x0) >= 1 and float(y0) >= 1 and float(x1) <= 80 and float(y1) <= 60
    results = json.loads((res / "coco_results.json").read_text())
    assert all(set(r) == {"image_id", "category_id", "bbox", "score"} for r in results)


def test_voc_label_verb(tmp_path, cli):
    make_voc(tmp_path / "VOC", {"a": [("dog", 0, 11, 6, 31, 26)], "b": [("cat", 0, 1, 1, 50, 40)]},
             {"trainval": ["a"], "test": ["b"]})
    rc, out, err = cli(["voc_label", tmp_path / "VOC", "--out", tmp_path / "out", "--names", "cat,dog",
                        "--name", "pets"])
    assert rc == 0, err
    assert "2 images, 2 boxes (0 difficult), 0 skipped; classes: cat, dog" in out
    assert (tmp_path / "out" / "pets.data").is_file()


def test_user_errors_exit_2_naming_the_file(shapes, tmp_path, cli):
    cfg = write_cfg(tmp_path / "tiny.cfg")
    cfg.write_text(cfg.read_text().replace("classes=2", "classes=3").replace("filters=14", "filters=16"))
    rc, _, err = cli(["detector", "train", shapes, cfg, "--workers", "0"])
    assert rc == 2 and "tiny.cfg:" in err and "classes=3 but" in err and "filters=14" in err
    ok = write_cfg(tmp_path / "ok.cfg")
    rc, _, err = cli(["detector", "map", shapes, ok, tmp_path / "missing.weights"])
    assert rc == 2 and "missing.weights: no such weights file" in err
    rc, _, err = cli(["detector", "train", shapes, ok, "--resume", "--workers", "0"])
    assert rc == 2 and "ok.ckpt: nothing to resume" in err
    rc, _, err = cli(["detector", "train", tmp_path / "none.data", ok])
    assert rc == 2 and "none.data: no such .data file" in err
    rc, _, err = cli(["detector", "valid", shapes, ok, ok, "--format", "xml"])
    assert rc == 2 and "--format" in err


def test_train_refuses_a_weights_header_with_an_absurd_seen(shapes, tmp_path, cli):
    """seen = 2^64 - 1 made training report 4.6e18 iterations and save the start as _final.weights."""
    from tritnet.darknet import DarknetNet, parse_cfg
    cfg = write_cfg(tmp_path / "tiny.cfg")
    start = tmp_path / "start.weights"
    DarknetNet(parse_cfg(cfg), None).save_weights(start, seen=2**64 - 1)
    rc, out, err = cli(["detector", "train", shapes, cfg, start, "--workers", "0", "--no-progress"])
    assert (rc, out) == (2, "")
    assert err == (f"tritnet: error: {start}: header field seen = 18446744073709551615 is not a count of training "
                   f"images (tritnet accepts 0 to 2^40): the header is damaged or this is not a darknet .weights file\n")
    assert not (shapes.parent / "backup" / "tiny_final.weights").exists()


def fails(argv, cli) -> str:
    """The one error line of a command that must stop with status 2."""
    rc, _, err = cli(argv)
    err = err.strip()
    assert rc == 2 and err.startswith("tritnet: error: ") and len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err


def test_voc_label_counts_objects_of_unknown_classes_in_one_warning(tmp_path, cli):
    objects = {"a": [("dog", 0, 11, 6, 31, 26), ("cat", 0, 1, 1, 50, 40)],
               "b": [("dog", 0, 2, 2, 9, 9), ("bird", 0, 3, 3, 30, 20)], "c": [("cat", 0, 1, 1, 9, 9)]}
    make_voc(tmp_path / "VOC", objects, {"trainval": ["a", "b", "c"], "test": ["c"]})
    with pytest.warns(DataWarning) as got:
        rc, out, err = cli(["voc_label", tmp_path / "VOC", "--out", tmp_path / "out", "--names", "cat"])
    assert rc == 0, err
    assert "4 images, 3 boxes (0 difficult), 1 skipped; classes: cat" in out
    ann, sets = tmp_path / "VOC" / "Annotations", tmp_path / "VOC" / "ImageSets" / "Main"
    assert [str(w.message) for w in got] == [
        f"{sets}/trainval.txt: 3 objects of classes not in the names list (dog: 2, first in {ann}/a.xml; "
        f"bird: 1, first in {ann}/b.xml); skipped"]
    line = warnings.formatwarning(got[0].message, got[0].category, got[0].filename, got[0].lineno)
    assert line.startswith(f"warning: {sets}/trainval.txt: 3 objects") and line.count("\n") == 1


def test_voc_label_names_file_that_does_not_exist_is_an_error(tmp_path, cli):
    make_voc(tmp_path / "VOC", {"a": [("dog", 0, 11, 6, 31, 26)]}, {"trainval": ["a"], "test": ["a"]})
    missing = tmp_path / "no" / "such.names"
    err = fails(["voc_label", tmp_path / "VOC", "--out", tmp_path / "out", "--names", missing], cli)
    assert f"--names: {missing}: no such names file" in err
    assert not (tmp_path / "out").exists()             # not a one-class data set named after the path


def test_train_backup_that_is_a_file_is_refused(shapes, tmp_path, cli):
    ok = write_cfg(tmp_path / "ok.cfg")
    (tmp_path / "passwd").write_text("root:x:0:0\n")
    err = fails(["detector", "train", shapes, ok, "--backup", tmp_path / "passwd", "--workers", "0"], cli)
    assert f"argument --backup: {tmp_path / 'passwd'}: is a file, not a backup folder" in err
    assert (tmp_path / "passwd").read_text() == "root:x:0:0\n"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_train_gpus_on_a_machine_without_cuda_is_one_line(shapes, tmp_path, cli):
    ok = write_cfg(tmp_path / "ok.cfg")
    err = fails(["detector", "train", shapes, ok, "--gpus", "0", "--backup", tmp_path / "bk", "--workers", "0"], cli)
    assert "--gpus 0: device cuda:0: PyTorch sees 0 CUDA devices here" in err
    assert not (tmp_path / "bk").exists()
