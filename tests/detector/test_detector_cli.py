"""The verbs through argparse, as tritnet/cli.py wires them: voc_label, detector train/map/recall/valid, and
user errors (exit 2, the file named)."""
import argparse
import json
import sys

from detector_helpers import write_cfg
from tritnet.detector_cli import VERBS, add_parsers, add_top_parsers


def cli(argv, capsys):
    parser = argparse.ArgumentParser(prog="tritnet")
    sub = parser.add_subparsers(dest="verb", required=True)
    det = sub.add_parser("detector")
    add_parsers(det.add_subparsers(dest="action", required=True))
    add_top_parsers(sub)
    a = parser.parse_args([str(x) for x in argv])
    try:
        VERBS[(a.verb, getattr(a, "action", None))](a)
        rc = 0
    except (ValueError, FileNotFoundError) as e:
        print(f"tritnet: error: {e}", file=sys.stderr)
        rc = 2
    out, err = capsys.readouterr()
    return rc, out, err


def test_train_map_recall_valid(shapes, tmp_path, capsys):
    cfg = write_cfg(tmp_path / "tiny.cfg", max_batches=2)
    rc, out, err = cli(["detector", "train", shapes, cfg, "--no-progress", "--workers", "0", "--map"], capsys)
    assert rc == 0, err
    assert "2: " in out and "mAP@0.5" in out and "done: 2 iterations" in out
    weights = shapes.parent / "backup" / "tiny_final.weights"
    rc, out, err = cli(["detector", "map", shapes, cfg, weights, "--json", "--workers", "0"], capsys)
    assert rc == 0, err
    m = json.loads(out)
    assert {"map11", "map", "precision", "recall", "f1", "tp", "fp", "fn", "avg_iou", "classes"} <= set(m)
    assert [c["name"] for c in m["classes"]] == ["red", "green"] and m["truths"] == 6
    rc, out, err = cli(["detector", "map", shapes, cfg, weights, "--workers", "0"], capsys)
    assert "class_id = 1, name = green" in out and "mean average precision (mAP@0.50)" in out
    assert "for conf_thresh = 0.25, TP = " in out and "average IoU = " in out
    rc, out, err = cli(["detector", "recall", shapes, cfg, weights, "--workers", "0"], capsys)
    lines = out.strip().splitlines()
    assert rc == 0 and len(lines) == 3 and lines[-1].split()[:3] == ["2", lines[-1].split()[1], "6"]
    assert "RPs/Img:" in lines[-1] and "Recall:" in lines[-1]
    res = tmp_path / "results"
    rc, out, err = cli(["detector", "valid", shapes, cfg, weights, "--outdir", res, "--workers", "0", "--json"], capsys)
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


def test_voc_label_verb(tmp_path, capsys):
    from detector_helpers import make_voc
    make_voc(tmp_path / "VOC", {"a": [("dog", 0, 11, 6, 31, 26)], "b": [("cat", 0, 1, 1, 50, 40)]},
             {"trainval": ["a"], "test": ["b"]})
    rc, out, err = cli(["voc_label", tmp_path / "VOC", "--out", tmp_path / "out", "--names", "cat,dog",
                        "--name", "pets"], capsys)
    assert rc == 0, err
    assert "2 images, 2 boxes (0 difficult), 0 skipped; classes: cat, dog" in out
    assert (tmp_path / "out" / "pets.data").is_file()


def test_user_errors_exit_2_naming_the_file(shapes, tmp_path, capsys):
    cfg = write_cfg(tmp_path / "tiny.cfg")
    cfg.write_text(cfg.read_text().replace("classes=2", "classes=3").replace("filters=14", "filters=16"))
    rc, _, err = cli(["detector", "train", shapes, cfg, "--workers", "0"], capsys)
    assert rc == 2 and "tiny.cfg:" in err and "classes=3 but" in err and "filters=14" in err
    ok = write_cfg(tmp_path / "ok.cfg")
    rc, _, err = cli(["detector", "map", shapes, ok, tmp_path / "missing.weights"], capsys)
    assert rc == 2 and "missing.weights: no such weights file" in err
    rc, _, err = cli(["detector", "train", shapes, ok, "--resume", "--workers", "0"], capsys)
    assert rc == 2 and "ok.ckpt: nothing to resume" in err
    rc, _, err = cli(["detector", "train", tmp_path / "none.data", ok], capsys)
    assert rc == 2 and "none.data: no such .data file" in err
    rc, _, err = cli(["detector", "valid", shapes, ok, ok, "--format", "xml"], capsys)
    assert rc == 2 and "--format" in err
