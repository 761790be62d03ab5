"""Detector runs through the command line: numbered run folders, finished weights never silently overwritten,
the end-of-training table and plots, ``map``'s table/plots/JSON in percent, and map vs valid on clipping."""
import json

import numpy as np
import pytest

from tests.yolo.detector_helpers import write_cfg


def test_train_writes_numbered_run_folders_and_refuses_to_overwrite_finished_weights(shapes, tmp_path, cli):
    cfg = write_cfg(tmp_path / "tiny.cfg", max_batches=2)
    train = ["detector", "train", shapes, cfg, "--no-progress", "--workers", "0"]
    rc, out, err = cli(train)
    assert rc == 0, err
    run = tmp_path / "runs" / "detect" / "train"                    # the test runs in tmp_path
    assert "run folder runs/detect/train" in out
    assert {"args.yaml", "results.csv", "chart.png", "classes.csv", "confusion_matrix.png", "PR_curve.png",
            "F1_curve.png"} <= {p.name for p in run.iterdir()}
    assert "weights: null" in (run / "args.yaml").read_text()       # PyYAML, not repr()
    # the end-of-training table: a header and one row for all, one per class
    header = next(i for i, line in enumerate(out.splitlines()) if line.split()[:3] == ["class", "images", "instances"])
    assert [line.split()[0] for line in out.splitlines()[header + 1:header + 4]] == ["all", "red", "green"]
    assert (run / "classes.csv").read_text().splitlines()[0] == "name,images,instances,precision,recall,ap50,ap50_95"
    final = shapes.parent / "backup" / "tiny_final.weights"          # darknet's files where darknet writes them
    before = final.read_bytes()

    rc, out, err = cli(train)                                 # a rerun would overwrite tiny_final.weights
    assert rc == 2 and final.read_bytes() == before
    assert f"{final}: an earlier run's finished weights" in err
    assert all(flag in err for flag in ("--resume", "--clear", "--exist-ok"))
    assert not (tmp_path / "runs" / "detect" / "train2").exists()

    rc, out, err = cli(train + ["--exist-ok", "--no-plots"])   # told to: overwrite, into the same folder
    assert rc == 0, err
    assert "run folder runs/detect/train;" in out or out.rstrip().endswith("run folder runs/detect/train")
    rc, out, err = cli(train + ["--clear", "--name", "again"])
    assert rc == 0 and "run folder runs/detect/again" in out

    # from weights already at max_batches: one line that names --clear, nothing written
    rc, out, err = cli(train[:4] + [final] + train[4:] + ["--exist-ok"])
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "nothing to train" in err and "--clear" in err and "iteration 2" in err


def test_map_table_plots_and_percent_json_agree_with_the_library(shapes, tmp_path, cli):
    from tritnet.yolo import map_detector, valid_detector
    cfg = write_cfg(tmp_path / "tiny.cfg", max_batches=2)
    assert cli(["detector", "train", shapes, cfg, "--no-progress", "--workers", "0", "--no-plots"])[0] == 0
    weights = shapes.parent / "backup" / "tiny_final.weights"
    lib = map_detector(shapes, cfg, weights, workers=0)
    rc, out, err = cli(["detector", "map", shapes, cfg, weights, "--json", "--workers", "0"])
    assert rc == 0, err
    m = json.loads(out)
    assert m["units"] == "percent" and m["boxes"] == "unclipped"
    assert m["map"] == pytest.approx(100 * lib["result"].map) and m["precision"] == pytest.approx(
        100 * lib["result"].precision)
    assert [r["name"] for r in m["table"]] == ["all", "red", "green"]
    assert m["table"][0]["ap50"] == pytest.approx(100 * lib["classes"].table[0].ap50)
    assert m["table"][0]["instances"] == 6 and m["table"][1]["images"] == 3

    rc, out, err = cli(["detector", "map", shapes, cfg, weights, "--workers", "0", "--plots"])
    assert rc == 0, err
    assert "AP50-95" in out and "note: boxes scored unclipped, as darknet's `detector map`" in out and "--clip" in out
    val = tmp_path / "runs" / "detect" / "val"
    assert {p.name for p in val.iterdir()} == {"confusion_matrix.png", "PR_curve.png", "F1_curve.png"}
    assert f"saved confusion matrix: {val / 'confusion_matrix.png'}".replace(str(tmp_path) + "/", "") in out
    rc, out, err = cli(["detector", "map", shapes, cfg, weights, "--workers", "0", "--clip", "--json"])
    assert json.loads(out)["boxes"] == "clipped"

    rc, out, err = cli(["detector", "valid", shapes, cfg, weights, "--outdir", tmp_path / "res", "--workers", "0",
                        "--json"])
    assert rc == 0, err
    v = json.loads(out)
    lib_v = valid_detector(shapes, cfg, weights, tmp_path / "res2", workers=0)
    assert v["units"] == "percent" and v["boxes"] == "clipped"
    # percent where pycocotools scored, its -1 (nothing to score) kept as it is
    assert v["coco"] == pytest.approx({k: 100 * x if x >= 0 else x for k, x in lib_v["coco"].items()})
    rc, out, err = cli(["detector", "valid", shapes, cfg, weights, "--outdir", tmp_path / "res", "--workers", "0"])
    assert "COCO mAP@[.50:.95] = " in out and "%" in out.split("COCO mAP@[.50:.95] = ")[1].splitlines()[0]
    assert "note: boxes clipped to the image, as darknet's `detector valid`" in out and "--no-clip" in out


def test_clipping_decides_a_box_past_the_image_edge():
    """Truth at the right edge (x .8 to 1); the detection reaches to 1.3: unclipped IoU .04/.1 = .4, a miss
    (darknet's map); clipped to the image it is the truth itself, a hit (what valid writes)."""
    from tritnet.eval.detection import evaluate_map
    from tritnet.yolo.evaluate import clip_boxes
    from tritnet.yolo.validate import voc_result_lines
    from tritnet_rt.detect import Candidates
    c = Candidates(np.array([[1.05, .5, .5, .2]], np.float32), np.array([.9], np.float32),
                   np.array([[.9]], np.float32))
    truth = [(np.array([[.9, .5, .2, .2]], np.float32), np.array([0]), None)]
    assert evaluate_map([(c.boxes, c.prob)], truth, ["x"]).map == 0.0
    clipped = clip_boxes(c)
    assert clipped.boxes[0].tolist() == pytest.approx([.9, .5, .2, .2])
    assert evaluate_map([(clipped.boxes, clipped.prob)], truth, ["x"]).map == 1.0
    # valid's VOC lines (1-based pixels on a 100x50 image): clipped at xmax = w, or where the network put it
    line = lambda clip: [float(v) for v in voc_result_lines("im", c, 100, 50, clip)[0][0].split()[1:]]  # noqa: E731
    assert line(True) == pytest.approx([.9, 81, 21, 100, 31], abs=1e-4)
    assert line(False) == pytest.approx([.9, 81, 21, 131, 31], abs=1e-4)
