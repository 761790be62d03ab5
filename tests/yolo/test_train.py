"""Real training for a handful of iterations on tiny synthetic data: files, resume, ternary saving, v3 heads,
learning, and the seed's ttt5 flow from its partial backbone."""
import csv
import os

import numpy as np
import pytest

from tests.yolo.detector_helpers import YOLO_CFG, make_dataset, write_cfg
from tritnet.darknet import load_weights, parse_cfg
from tritnet.yolo import DetectorTrainConfig, map_detector, train_detector


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def same_ranking(a, b) -> bool:
    """The two evaluations ranked the same detections: per class, probabilities (to float32 rounding), images
    and matched truths."""
    return len(a.ranked) == len(b.ranked) and all(
        len(x.prob) == len(y.prob) and np.allclose(x.prob, y.prob, rtol=1e-5, atol=1e-7)
        and np.array_equal(x.image, y.image) and np.array_equal(x.truth, y.truth) for x, y in zip(a.ranked, b.ranked))


def run(data, cfg, **kw):
    kw.setdefault("workers", 0)
    kw.setdefault("progress", False)
    return train_detector(DetectorTrainConfig(str(data), str(cfg), **kw))


def test_training_writes_darknets_files_and_resumes_exactly(shapes, tmp_path, capsys):
    cfg = write_cfg(tmp_path / "tiny.cfg", max_batches=4)
    r = run(shapes, cfg, save_every=2)
    backup = shapes.parent / "backup"
    names = {p.name for p in backup.iterdir()}
    assert {"tiny_final.weights", "tiny.minloss.weights", "tiny_2.weights", "tiny_4.weights", "tiny.ckpt"} <= names
    # the run's own files in a numbered run folder
    assert r["run_dir"] == "runs/detect/train" and r["log"] == "runs/detect/train/results.csv"
    assert {"results.csv", "chart.png", "args.yaml", "classes.csv"} <= {p.name for p in (tmp_path / r["run_dir"]).iterdir()}
    log = rows(r["log"])
    assert [int(x["iteration"]) for x in log] == [1, 2, 3, 4] and all(np.isfinite(float(x["loss"])) for x in log)
    # avg loss = .9 avg + .1 loss, starting at the first loss; lr = .01·(b/2)^4 during burn_in=2
    losses = [float(x["loss"]) for x in log]
    assert float(log[1]["avg_loss"]) == pytest.approx(.9 * losses[0] + .1 * losses[1], rel=1e-5)
    assert float(log[0]["lr"]) == pytest.approx(.01 * (1 / 2) ** 4) and float(log[2]["lr"]) == pytest.approx(.01)
    # minloss only after burn_in (iteration > 2)
    assert "minloss" not in log[1]["saved"] and log[2]["saved"].startswith("tiny.minloss.weights")
    w = load_weights(parse_cfg(cfg), backup / "tiny_final.weights")
    assert w.complete and w.header.seen == 32 and r["iterations"] == 4
    assert "4: " in capsys.readouterr().out                    # darknet's per-iteration line without a bar

    # "kill" after 4 iterations, then resume to 6: the same weights as 6 iterations in one go
    cfg6 = write_cfg(tmp_path / "tiny.cfg", max_batches=6)
    r2 = run(shapes, cfg6, resume=True)
    resumed = (backup / "tiny_final.weights").read_bytes()
    assert r2["log"] == r["log"] and [int(x["iteration"]) for x in rows(r["log"])] == [1, 2, 3, 4, 5, 6]
    run(shapes, cfg6, backup=str(tmp_path / "straight"))
    assert (tmp_path / "straight" / "tiny_final.weights").read_bytes() == resumed


def test_weights_header_continues_the_schedule_and_clear_restarts_it(shapes, tmp_path):
    cfg = write_cfg(tmp_path / "tiny.cfg", max_batches=2)
    run(shapes, cfg)
    final = shapes.parent / "backup" / "tiny_final.weights"
    cfg3 = write_cfg(tmp_path / "tiny.cfg", max_batches=3)
    r = run(shapes, cfg3, weights=str(final), exist_ok=True)      # seen = 16 in the header: iteration 2 → 3
    assert r["iterations"] == 3 and r["seen"] == 24
    r = run(shapes, cfg3, weights=str(final), clear=True)
    assert r["iterations"] == 3 and r["seen"] == 24 and len(rows(r["log"])) == 3


def test_ternary_layers_train_float_and_save_ternary(shapes, tmp_path):
    cfg = write_cfg(tmp_path / "tern.cfg", max_batches=2, ternary=True)
    run(shapes, cfg)
    w = load_weights(parse_cfg(cfg), shapes.parent / "backup" / "tern_final.weights")
    for index in (0, 2, 4, 6):
        values = np.unique(np.abs(w.layers[index]["weights"]))
        assert len(values) == 2 and values[0] == 0        # {0, α}: darknetTWN writes α·T
    # scoring re-ternarizes the file (darknetTWN's rule), which must give back its α·T exactly: the detections
    # of the re-ternarized network are those of the file's weights read as they are
    final = shapes.parent / "backup" / "tern_final.weights"
    m = map_detector(shapes, cfg, final, workers=0, thresh=0.0)["result"]
    as_saved = map_detector(shapes, cfg, final, workers=0, thresh=0.0, method=None)["result"]
    assert m.truths == 6 and m.detections == as_saved.detections > 0
    assert same_ranking(m, as_saved)


def test_yolo_v3_heads_and_multiscale_train(shapes, tmp_path):
    cfg = write_cfg(tmp_path / "v3.cfg", YOLO_CFG, max_batches=2)
    r = run(shapes, cfg, map=True, map_every=1)
    log = rows(r["log"])
    assert len(log) == 2 and log[0]["map"] != "" and r["best_map"] >= 0
    assert "v3_best.weights" in log[0]["saved"]
    # random=1 on a 48x32 cfg (stride 8, 4 grid rows): darknet_sdl's rule, ih = (rand % 4)/2 + 3 rows and
    # iw = ih + 2 columns, the same size for 10 iterations
    ms = write_cfg(tmp_path / "ms.cfg", max_batches=2, random=1)
    ms.write_text(ms.read_text().replace("width=32", "width=48"))
    log = rows(run(shapes, ms)["log"])
    sizes = {(int(x["width"]), int(x["height"])) for x in log}
    assert len(sizes) == 1 and sizes <= {(40, 24), (48, 32)}


def test_a_tiny_detector_learns(tmp_path):
    """30 iterations on 8 images of two coloured boxes (64x64 input): the loss falls, the assigned anchors'
    boxes close in on the truths (darknet's "Avg IOU" from ~.25) and the boxes are found (mAP well above 0)."""
    data = make_dataset(tmp_path / "d", n_train=8, n_valid=0, seed=3)
    (tmp_path / "d" / "valid.txt").write_text((tmp_path / "d" / "train.txt").read_text())
    cfg = write_cfg(tmp_path / "learn.cfg", max_batches=30, size=64, subdivisions=1)
    text = cfg.read_text().replace("hue=.1", "hue=0").replace("saturation=1.5", "saturation=1") \
        .replace("exposure=1.5", "exposure=1").replace("jitter=.2", "jitter=0")
    cfg.write_text(text)
    log = rows(run(data, cfg)["log"])
    assert float(log[-1]["avg_loss"]) < 0.35 * float(log[0]["loss"])
    last = log[-5:]
    assert np.mean([float(x["avg_iou"]) for x in last]) > 0.45 and np.mean([float(x["recall"]) for x in last]) > 0.5
    m = map_detector(data, cfg, tmp_path / "d" / "backup" / "learn_final.weights", workers=0)["result"]
    assert m.map11 > 0.1, m


def test_ttt5_from_the_partial_backbone_on_bccd(shared, tmp_path):
    """The seed's flow: ttt5_224_160 edited to BCCD's 3 classes, the 7-layer backbone loaded, 2 iterations."""
    from tritnet import darknet as dn
    from tritnet.yolo import set_classes, set_schedule, voc_label
    r = voc_label([shared / "bccd"], tmp_path / "bccd", ["val"], ["test"], names=["RBC", "WBC", "Platelets"],
                  name="bccd")
    cfg = dn.parse_cfg(shared / "darknet" / "cfg" / "ttt5_224_160.cfg")
    set_classes(cfg, 3)
    set_schedule(cfg, batch=4, subdivisions=2, max_batches=2)
    assert cfg.layers[-2].param("filters") == 40
    path = tmp_path / "ttt5_bccd.cfg"
    path.write_text(dn.dump_cfg(cfg))
    out = run(r["data"], path, weights=str(shared / "darknet" / "weights" / "ttt5_pre_141_conv7.weights"))
    assert out["iterations"] == 2
    w = load_weights(cfg, tmp_path / "bccd" / "backup" / "ttt5_bccd_final.weights")
    first = load_weights(cfg, shared / "darknet" / "weights" / "ttt5_pre_141_conv7.weights", prefix=True)
    assert w.complete and first.filled == 4
    # the backbone moved (trained), but stayed close to where it started
    delta = np.abs(w.layers[0]["weights"] - first.layers[0]["weights"]).max()
    assert 0 < delta < 0.05


def test_two_processes_average_gradients_and_count_images_like_darknet_gpus(shapes, tmp_path):
    """torchrun through the real command: each process draws its own batch; seen grows by batch·processes, so
    the iteration counter advances by 2 per step (darknet's -gpus), and the learning rate is doubled."""
    import subprocess
    import sys
    cfg = write_cfg(tmp_path / "ddp.cfg", max_batches=4)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "tritnet",
           "detector", "train", str(shapes), str(cfg), "--workers", "0", "--no-progress"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    log = rows(tmp_path / "runs" / "detect" / "train" / "results.csv")    # the test's folder is the cwd
    assert [int(x["iteration"]) for x in log] == [2, 4]
    assert float(log[0]["lr"]) == pytest.approx(2 * .01 * (2 / 2) ** 4)       # burn_in=2 reached, ×2 processes
    w = load_weights(parse_cfg(cfg), shapes.parent / "backup" / "ddp_final.weights")
    assert w.header.seen == 32


def test_per_channel_ternary_training_saves_per_channel_values_and_evaluates_them_as_saved(shapes, tmp_path):
    """With per_channel, each output channel of a ternary layer has its own α; the file holds those values,
    and evaluating with per_channel rebuilds exactly them (per-channel TWN of per-channel ternary values is
    the identity), while a per-layer rebuild would not."""
    from tritnet.darknet import build_darknet
    cfg = write_cfg(tmp_path / "pc.cfg", max_batches=2, ternary=True)
    run(shapes, cfg, per_channel=True)
    final = shapes.parent / "backup" / "pc_final.weights"
    w = load_weights(parse_cfg(cfg), final).layers[0]["weights"]
    mags = [np.unique(np.abs(f[f != 0])) for f in w.reshape(w.shape[0], -1)]
    assert all(len(m) == 1 for m in mags) and len({float(m[0]) for m in mags}) > 1
    net = build_darknet(str(cfg), str(final), "twn", per_channel=True)
    assert np.allclose(net.darknet_layers()[0]["weights"], w, rtol=1e-6, atol=0)   # α = mean of α's: an ulp
    per_layer = build_darknet(str(cfg), str(final), "twn")
    assert np.abs(per_layer.darknet_layers()[0]["weights"] - w).max() > 1e-3
    scored = map_detector(shapes, str(cfg), str(final), per_channel=True, workers=0, thresh=0.0)["result"]
    as_saved = map_detector(shapes, str(cfg), str(final), method=None, workers=0, thresh=0.0)["result"]
    scored_per_layer = map_detector(shapes, str(cfg), str(final), workers=0, thresh=0.0)["result"]
    assert scored.detections == as_saved.detections > 0 and same_ranking(scored, as_saved)
    assert not same_ranking(scored_per_layer, as_saved)


def test_weights_already_at_max_batches_are_refused_instead_of_saved_untrained(shapes, tmp_path):
    """darknet runs no iteration and writes the start as _final.weights; tritnet names the file and the field."""
    from tritnet.darknet import DarknetNet
    cfg = write_cfg(tmp_path / "tiny.cfg", max_batches=4)
    line = cfg.read_text().splitlines().index("max_batches=4") + 1
    start = tmp_path / "start.weights"
    DarknetNet(parse_cfg(cfg), None).save_weights(start, seen=32)        # batch=8: iteration 4
    with pytest.raises(ValueError) as e:
        run(shapes, cfg, weights=str(start))
    assert str(e.value) == (f"{start}: header field seen = 32 is iteration 4 at batch=8, not below max_batches=4 "
                            f"({cfg}:{line}): nothing to train; restart the schedule with --clear or raise max_batches")
    assert not (shapes.parent / "backup" / "tiny_final.weights").exists()


def test_running_a_partial_backbone_warns_how_much_it_holds(shared):
    from tritnet.darknet import build_darknet
    with pytest.warns(UserWarning, match=r"ttt5_pre_141_conv7.weights: holds the weights of layers 0-6 only"):
        build_darknet(str(shared / "darknet" / "cfg" / "ttt5_224_160.cfg"),
                      str(shared / "darknet" / "weights" / "ttt5_pre_141_conv7.weights"), None, prefix=True)


def test_multiscale_sizes_fit_every_head(shared):
    """random=1: pjreddie's squares for multi-head cfgs whatever their aspect (the stride is the coarsest,
    32, so the 16- and 8-pixel heads fit too), darknet_sdl's rule only for one-head non-square cfgs (ttt5)."""
    from tritnet.darknet import DarknetNet, parse_cfg
    from tritnet.yolo.augment import train_size
    from tritnet.yolo.setup import multiscale_mode
    v3 = parse_cfg(shared / "darknet" / "cfg" / "yolov3-tiny.cfg")
    v3.net.set("width", 416)
    v3.net.set("height", 288)
    net = DarknetNet(v3, None)
    assert multiscale_mode(net) == ("darknet", 32)
    rng = np.random.default_rng(0)
    sizes = {train_size("darknet", 416, 288, 32, rng, it, 10_000) for it in range(0, 300, 10)}
    assert all(w == h and w % 32 == 0 and 320 <= w <= 608 for w, h in sizes) and len(sizes) > 3
    import torch
    with torch.no_grad():                                   # the two heads' route and upsample fit at 352
        outs = net.forward_all(torch.zeros(1, 3, 352, 352))
    assert [tuple(outs[i].shape[2:]) for i in net.head_indices] == [(11, 11), (22, 22)]
    ttt5 = DarknetNet(parse_cfg(shared / "darknet" / "cfg" / "ttt5_224_160.cfg"), None)
    assert multiscale_mode(ttt5) == ("sdl", 32)


def test_a_killed_run_saves_its_state_and_resumes(shapes, tmp_path):
    """SIGTERM in the middle of training (as `kill` or a batch scheduler sends it): the state is saved, the
    command exits 130 naming --resume, and the resumed run carries on from the last finished iteration."""
    import os
    import signal
    import subprocess
    import sys
    import time
    cfg = write_cfg(tmp_path / "kill.cfg", max_batches=400)
    cmd = [sys.executable, "-m", "tritnet", "detector", "train", str(shapes), str(cfg), "--workers", "0",
           "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    log = tmp_path / "runs" / "detect" / "train" / "results.csv"
    deadline = time.time() + 600          # generous: on a loaded machine the import alone can take a minute
    while time.time() < deadline and proc.poll() is None and (not log.is_file() or len(rows(log)) < 5):
        time.sleep(0.2)
    assert proc.poll() is None and log.is_file() and len(rows(log)) >= 5, "training never reached iteration 5"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "--resume" in err
    done = [int(r["iteration"]) for r in rows(log)]
    from tritnet.yolo.saving import load_state
    state = load_state(shapes.parent / "backup" / "kill.ckpt")
    assert 5 <= done[-1] < 400 and state["seen"] == done[-1] * 8
    # the min-loss weights may be newer than the checkpoint: their note says at which loss they were saved, and
    # a resumed run only replaces them with better ones (here: a note no loss can beat)
    note = shapes.parent / "backup" / "kill.minloss.json"
    assert note.is_file()
    note.write_text('{"avg_loss": -1.0, "iteration": 1}')
    # resume to the end of a shorter schedule: the log continues without a gap or a repeat
    short = write_cfg(tmp_path / "kill.cfg", max_batches=done[-1] + 3)
    r = run(shapes, short, resume=True)
    log_rows = rows(log)
    assert [int(x["iteration"]) for x in log_rows] == list(range(1, done[-1] + 4)) and r["iterations"] == done[-1] + 3
    assert not any("minloss" in x["saved"] for x in log_rows[done[-1]:])


def test_ternary_runs_end_with_bn_statistics_averaged_at_the_final_weights_and_train_as_without(shapes, tmp_path):
    """bn_eval: the final weights' first BN statistics are the plain average, over bn_eval sub-batches of the
    documented stream (training's augmentation and sizes, the run's seed + BN_EVAL_STREAM), of the batch mean
    and (n - 1) variance of the first conv's output, computed here by hand from the saved ternary kernel; every
    weight is bit-identical to the run without it, whose statistics are darknet's rolling averages (an evaluation
    halfway re-estimated them too); a float network keeps darknet's rolling averages."""
    import torch
    import torch.nn.functional as F
    from tritnet.yolo.data import open_data
    from tritnet.yolo.labels import Issues
    from tritnet.yolo.loader import ImageStore, TrainSampler, TrainSet, train_loader
    from tritnet.yolo.loss import DetectionLoss
    from tritnet.yolo.setup import augmentation
    from tritnet.yolo.train import BN_EVAL_STREAM
    from tritnet.darknet import build_darknet

    finals = {}
    for name, bn_eval in (("off", 0), ("on", 3)):
        cfg = write_cfg(tmp_path / f"{name}.cfg", max_batches=4, ternary=True)
        run(shapes, cfg, bn_eval=bn_eval, map=True, map_every=2, seed=5)
        finals[name] = load_weights(parse_cfg(cfg), shapes.parent / "backup" / f"{name}_final.weights").layers
    assert finals["off"].keys() == finals["on"].keys()
    for index, off in finals["off"].items():
        for key in off:
            same = np.array_equal(off[key], finals["on"][index][key])
            assert same != key.startswith("rolling"), (index, key)      # only the statistics differ

    net = build_darknet(str(tmp_path / "on.cfg"), None, "twn")
    issues = Issues()
    records = [r.trainable() for r in open_data(shapes).records("train", issues)]
    train_set = TrainSet(records, ImageStore([r.image for r in records], 0, 0, issues), augmentation(net),
                         DetectionLoss(net).max_boxes)
    sampler = TrainSampler(len(records), 4, 1, 0, 3, 5 + BN_EVAL_STREAM, 32, 32, "off")   # batch 8 / 2 subdivisions
    kernel = torch.from_numpy(finals["on"][0]["weights"]).reshape(8, 3, 3, 3)
    means, variances = [], []
    for x, _, _ in train_loader(train_set, sampler, 0):
        y = F.conv2d(x.double(), kernel.double(), padding=1).transpose(0, 1).reshape(8, -1)
        means.append(y.mean(1))
        variances.append(y.var(1, unbiased=True))
    assert len(means) == 3
    assert np.allclose(finals["on"][0]["rolling_mean"], torch.stack(means).mean(0).numpy(), rtol=1e-4, atol=1e-5)
    assert np.allclose(finals["on"][0]["rolling_variance"], torch.stack(variances).mean(0).numpy(), rtol=1e-4)

    cfg = write_cfg(tmp_path / "float.cfg", max_batches=2)
    float_stats = []
    for bn_eval in (0, 3):
        run(shapes, cfg, bn_eval=bn_eval, exist_ok=True)
        layer = load_weights(parse_cfg(cfg), shapes.parent / "backup" / "float_final.weights").layers[0]
        float_stats.append((layer["rolling_mean"], layer["rolling_variance"]))
    assert all(np.array_equal(a, b) for a, b in zip(*float_stats))
