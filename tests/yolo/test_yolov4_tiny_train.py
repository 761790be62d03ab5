"""AlexeyAB's yolov4-tiny.cfg (alexeyab dialect: CIoU loss, iou_normalizer .07, scale_x_y 1.05) trained through the
real command line on a few BCCD images at a small input size: the loss falls, the saved .weights reload to the same
bytes, and ``tritnet stage`` runs the cfg stage by stage."""
import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from tritnet import darknet as dn
from tritnet.cli import main
from tritnet.yolo import map_detector, set_classes, set_schedule, voc_label


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def tiny_v4(shared, tmp_path, size, n_train, n_valid, max_batches, batch=8):
    """BCCD's val split (the first ``n_train`` images to train on, ``n_valid`` of the test split to score) and
    yolov4-tiny edited for 3 classes at ``size`` x ``size``, without colour or jitter augmentation."""
    r = voc_label([shared / "bccd"], tmp_path / "bccd", ["val"], ["test"], names=["RBC", "WBC", "Platelets"],
                  name="bccd")
    root = Path(r["data"]).parent
    for name, n in (("train", n_train), ("valid", n_valid), ("difficult", n_valid)):   # difficult: parallel to valid
        lines = (root / f"{name}.txt").read_text().splitlines()[:n]
        (root / f"{name}.txt").write_text("\n".join(lines) + "\n")
    cfg = dn.parse_cfg(shared / "darknet" / "cfg" / "yolov4-tiny.cfg")
    assert cfg.dialect == "alexeyab"
    set_classes(cfg, 3)
    set_schedule(cfg, batch=batch, subdivisions=1, max_batches=max_batches, learning_rate=0.002, burn_in=2,
                 policy="constant")
    for key, value in (("width", size), ("height", size), ("hue", 0), ("saturation", 1), ("exposure", 1)):
        cfg.net.set(key, value)
    for s in cfg.layers:
        if s.type == "yolo":
            s.set("jitter", 0)
    path = tmp_path / "v4t.cfg"
    path.write_text(dn.dump_cfg(cfg))
    return Path(r["data"]), path


def test_yolov4_tiny_trains_with_ciou_and_saves_weights_that_reload_exactly(shared, tmp_path, capsys):
    data, cfg = tiny_v4(shared, tmp_path, 128, 8, 8, 12)
    rc = main(["detector", "train", str(data), str(cfg), "--no-progress", "--workers", "0"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "12: " in out and "done: 12 iterations" in out
    backup = data.parent / "backup"
    log = rows(tmp_path / "runs" / "detect" / "train" / "results.csv")     # the test runs in tmp_path
    losses = [float(x["loss"]) for x in log]
    assert len(losses) == 12 and all(np.isfinite(losses))
    # from darknet's initialisation: the CIoU cost plus the objectness/class terms fall fast
    assert np.mean(losses[-3:]) < 0.5 * losses[0], losses
    assert int(log[-1]["count"]) > 0                         # truths assigned to the two heads
    final = backup / "v4t_final.weights"
    w = dn.load_weights(dn.parse_cfg(cfg), final)
    assert w.complete and w.header.seen == 12 * 8 and w.header.dialect == "alexeyab"
    net = dn.build_darknet(str(cfg), str(final), None)
    assert net.encode_weights() == final.read_bytes()       # read → write: the same bytes
    # and the reloaded network scores (detector map on the trained file): against every non-difficult object of
    # the 8 images' VOC annotations, counted here from the XML, and the same figures as the Python API's
    rc = main(["detector", "map", str(data), str(cfg), str(final), "--json", "--workers", "0"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    cli = json.loads(out)
    valid = (data.parent / "valid.txt").read_text().split()
    truths = sum(obj.findtext("difficult", "0") == "0" for image in valid
                 for obj in ET.parse(shared / "bccd" / "Annotations" / f"{Path(image).stem}.xml").iter("object"))
    assert len(valid) == 8 and cli["truths"] == truths > 0 and cli["tp"] + cli["fn"] == truths
    api = map_detector(data, cfg, final, method=None, workers=0)["result"]
    assert (cli["map11"], cli["map"], cli["detections"]) == \
        pytest.approx((api.map11 * 100, api.map * 100, api.detections))          # the CLI prints percent


def test_stage_runs_an_alexeyab_cfg(shared, tmp_path, capsys):
    """Two stages of 1 iteration on yolov4-tiny at 64x64: every stage cfg stays AlexeyAB's (route groups, the
    yolo loss keys), trains, and its ternary weights are written and reload to the same bytes."""
    data, cfg = tiny_v4(shared, tmp_path, 64, 4, 4, 1, batch=4)
    out_dir = tmp_path / "stage"
    rc = main(["stage", "auto", "--model", str(cfg), "--data", str(data), "--stages", "2", "--set", "max_batches=1",
               "--set", "burn_in=0", "--out", str(out_dir), "--workers", "0", "--no-progress", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    report = json.loads(out[out.index("{"):])
    stages = [r for r in report["rows"] if r["stage"] in ("M0", "M1")]
    assert [r["ternary_layers"] for r in stages] == [8, 21]
    for stage in ("M0", "M1"):
        cfgs = list((out_dir / stage).glob("*.cfg"))
        assert len(cfgs) == 1
        c = dn.parse_cfg(cfgs[0])
        assert c.dialect == "alexeyab" and c.layers[-1].param("iou_loss") == "ciou"
        weights = sorted((out_dir / stage).rglob("*_final.weights"))
        assert weights, list((out_dir / stage).rglob("*"))
        # the file as stored (ternary layers as α·T) reads and writes back to the same bytes
        stored = dn.build_darknet(str(cfgs[0]), str(weights[0]), None)
        assert stored.encode_weights() == weights[0].read_bytes()
        # run as TWN, W = α·T ternarizes to itself: α is the float32 mean of the |α| values, equal to α within
        # float32 rounding (1-2 ulp), and the zeros stay zeros
        twn = dn.build_darknet(str(cfgs[0]), str(weights[0]), "twn").darknet_layers()
        for i, arrays in stored.darknet_layers().items():
            np.testing.assert_allclose(twn[i]["weights"], arrays["weights"], rtol=3e-7, atol=0)
