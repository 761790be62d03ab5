"""Knowledge transfer and batch-norm re-estimation in ``detector train``, on tiny synthetic data: the teacher pulls
the ternary student's head outputs towards its own, the re-estimated statistics equal a hand computation, and a
teacher with other channel counts is mimicked through adaptation convs."""
import csv

import pytest
import torch
import torch.nn.functional as F

from tests.yolo.detector_helpers import write_cfg
from tritnet.darknet import DarknetNet, dump_cfg, parse_cfg, set_ternary
from tritnet.train.calibrate import recalibrate_batchnorm
from tritnet.train.distill import DetectorDistiller, DistillConfig, default_feature_layers, head_loss
from tritnet.yolo import DetectorTrainConfig, open_data, train_detector
from tritnet.yolo import train as yolo_train
from tritnet_rt.detect import read_rgb
from tritnet.yolo.saving import load_state


def run(data, cfg, **kw):
    kw.setdefault("workers", 0)
    kw.setdefault("progress", False)
    kw.setdefault("cache_mb", 16)
    return train_detector(DetectorTrainConfig(str(data), str(cfg), **kw))


@pytest.fixture
def float_start(shapes, tmp_path):
    """A float detector trained 8 iterations (the teacher and the start), its cfg, and a ternary copy of the cfg.
    8 iterations leave darknet's slow running statistics (momentum .01) near their initial values, so they are
    re-estimated on the training images: a teacher runs in eval mode."""
    cfg = write_cfg(tmp_path / "float.cfg", max_batches=8, subdivisions=1)
    run(shapes, cfg, backup=str(tmp_path / "float"), method=None)
    net = DarknetNet(str(cfg), None)
    net.load_weights(tmp_path / "float" / "float_final.weights")
    recalibrate_batchnorm(net, [(_images(shapes),)], 1)
    weights = tmp_path / "float.weights"
    net.save_weights(weights)
    ternary = parse_cfg(cfg)
    set_ternary(ternary)
    tcfg = tmp_path / "tern.cfg"
    tcfg.write_text(dump_cfg(ternary))
    return {"cfg": cfg, "tern": tcfg, "weights": weights}


def _images(data, n=6):
    import numpy as np
    from tritnet_rt.detect import from_uint8, resize_image
    recs = open_data(data).records("train")[:n]
    return torch.from_numpy(np.stack([resize_image(from_uint8(read_rgb(r.image)), 32, 32) for r in recs]))


def _head_distance(cfg, weights, teacher, x) -> float:
    """The head loss between the teacher (eval) and the student computing as in training (batch statistics: 8
    iterations barely move darknet's running averages, momentum .01), per image."""
    net = DarknetNet(str(cfg), "twn")
    net.load_weights(weights)
    net.train()
    with torch.no_grad():
        so, to = net.forward_all(x), teacher.forward_all(x)
        h = net.head_indices[0]
        return float(head_loss(so[h - 1], to[h - 1], to[h], 2, "softmax")) / len(x)


def test_transfer_pulls_the_student_head_towards_the_teacher(shapes, float_start, tmp_path):
    common = dict(weights=str(float_start["weights"]), clear=True, seed=5, bn_recalibrate=4)
    run(shapes, float_start["tern"], backup=str(tmp_path / "plain"), **common)
    r = run(shapes, float_start["tern"], backup=str(tmp_path / "taught"), distill=True, **common)
    teacher = DarknetNet(str(float_start["cfg"]), None)
    teacher.load_weights(float_start["weights"])
    teacher.eval()
    x = _images(shapes)
    plain = _head_distance(float_start["tern"], tmp_path / "plain" / "tern_final.weights", teacher, x)
    taught = _head_distance(float_start["tern"], tmp_path / "taught" / "tern_final.weights", teacher, x)
    assert taught < 0.8 * plain, (taught, plain)
    # the cost is measured and logged
    assert 0 < r["teacher_seconds"] < r["iteration_seconds"] and r["transfer_overhead"] > 0
    with open(r["log"], newline="") as f:
        log = list(csv.DictReader(f))
    assert all(float(row["teacher_seconds"]) > 0 and float(row["distill_head"]) >= 0 for row in log)
    assert all(float(row["distill_feature"]) == 0 for row in log)               # off by default


def test_bn_reestimation_from_the_first_ternary_layer_matches_a_hand_computation(shapes, float_start, tmp_path,
                                                                                monkeypatch):
    cfg = parse_cfg(float_start["cfg"])
    set_ternary(cfg, [2])                                   # the second conv becomes ternary
    path = tmp_path / "stage.cfg"
    path.write_text(dump_cfg(cfg))
    seen = {}
    real = yolo_train.recalibrate_batchnorm

    def spy(net, loader, batches, device, only=None):
        kept = [b for _, b in zip(range(batches), loader)]
        seen["batches"] = [b[0] for b in kept]
        seen["only"] = only
        out = real(net, kept, batches, device, only)
        seen["state"] = {k: v.clone() for k, v in net.state_dict().items()}
        return out

    monkeypatch.setattr(yolo_train, "recalibrate_batchnorm", spy)
    run(shapes, path, weights=str(float_start["weights"]), clear=True, bn_recalibrate=3, bn_eval=0,
        backup=str(tmp_path / "b"))                         # bn_eval 0: the start's re-estimation alone
    assert len(seen["batches"]) == 3
    start = DarknetNet(str(path), "twn")
    start.load_weights(float_start["weights"])
    loaded = start.state_dict()
    st = seen["state"]
    # layer 0 is upstream of the first ternary layer: its statistics are the loaded ones, bit for bit
    for k in ("layers.0.bn.running_mean", "layers.0.bn.running_var"):
        assert torch.equal(st[k], loaded[k])
    # layer 2: by hand, darknet's training-mode BN on layer 0 (batch statistics, variance over n − 1, ε on the
    # standard deviation), leaky .1, max-pool 2, then the conv with its ternary weight α·T
    l0 = start.layers[0]
    t2 = start.layers[2].conv.ternary_weight().detach()
    means, variances = [], []
    with torch.no_grad():
        for x in seen["batches"]:
            h = F.conv2d(x, l0.conv.weight, padding=1)
            mu, var = h.mean((0, 2, 3), keepdim=True), h.var((0, 2, 3), unbiased=True, keepdim=True)
            h = (h - mu) / (var.sqrt() + l0.bn.eps) * l0.bn.weight.view(1, -1, 1, 1) + l0.bn.bias.view(1, -1, 1, 1)
            h = F.max_pool2d(F.leaky_relu(h, 0.1), 2, 2)
            y = F.conv2d(h, t2, padding=1)
            means.append(y.mean((0, 2, 3)))
            variances.append(y.var((0, 2, 3), unbiased=True))
    assert torch.allclose(st["layers.2.bn.running_mean"], torch.stack(means).mean(0), atol=1e-5)
    assert torch.allclose(st["layers.2.bn.running_var"], torch.stack(variances).mean(0), rtol=1e-4)
    # downstream (layer 4) was re-estimated too
    assert not torch.equal(st["layers.4.bn.running_mean"], loaded["layers.4.bn.running_mean"])


def test_no_reestimation_of_the_start_by_default(shapes, float_start, tmp_path, monkeypatch):
    """bn_recalibrate is 0 by default (darknet's way); bn_eval's re-estimation at the end is the only one."""
    calls = []
    monkeypatch.setattr(yolo_train, "recalibrate_batchnorm", lambda *a, **k: calls.append(k.get("only", a[4:])))
    run(shapes, float_start["tern"], weights=str(float_start["weights"]), clear=True, backup=str(tmp_path / "b"))
    assert len(calls) == 1 and not calls[0]                 # one call, every batch norm (bn_eval before the save)
    calls.clear()
    run(shapes, float_start["tern"], weights=str(float_start["weights"]), clear=True, bn_eval=0,
        backup=str(tmp_path / "c"))
    assert calls == []


def test_a_teacher_with_other_channels_is_mimicked_through_an_adaptation_conv(shapes, float_start, tmp_path):
    wide = write_cfg(tmp_path / "wide.cfg", max_batches=4, subdivisions=1)
    text = wide.read_text()
    wide.write_text(text.replace("filters=16\nsize=3\nstride=1\npad=1\nactivation=leaky\n\n[maxpool]\n"
                                             "size=2\nstride=2\n\n[convolutional]\nsize=1",
                                             "filters=24\nsize=3\nstride=1\npad=1\nactivation=leaky\n\n[maxpool]\n"
                                             "size=2\nstride=2\n\n[convolutional]\nsize=1"))
    assert wide.read_text() != text                                     # conv 4: 24 filters instead of 16
    run(shapes, wide, backup=str(tmp_path / "wide"), method=None)
    teacher_weights = tmp_path / "wide" / "wide_final.weights"
    student = DarknetNet(str(float_start["tern"]), "twn")
    teacher = DarknetNet(str(wide), None)
    assert default_feature_layers(student) == (5,)                      # the max-pool the detector conv reads
    assert not DetectorDistiller(student, teacher, DistillConfig()).layers    # mimicking is off by default
    kt = DetectorDistiller(student, teacher, DistillConfig(feature=1.0))
    assert list(kt.adapters) == ["5"] and kt.adapters["5"].weight.shape == (24, 16, 1, 1)
    r = run(shapes, float_start["tern"], weights=str(float_start["weights"]), clear=True, distill=True,
            distill_feature=1.0, teacher=str(teacher_weights), teacher_cfg=str(wide), backup=str(tmp_path / "kt"))
    ckpt = load_state(tmp_path / "kt" / "tern.ckpt")
    assert set(ckpt["distill_adapters"]) == {"5.weight"} and r["iterations"] == 8
    # resuming restores the adapter and its optimiser group (momentum) with the rest
    longer = parse_cfg(float_start["tern"])
    longer.net.set("max_batches", 10)
    float_start["tern"].write_text(dump_cfg(longer))
    r = run(shapes, float_start["tern"], weights=str(float_start["weights"]), distill=True, resume=True,
            distill_feature=1.0, teacher=str(teacher_weights), teacher_cfg=str(wide), backup=str(tmp_path / "kt"))
    assert r["iterations"] == 10
    resumed = load_state(tmp_path / "kt" / "tern.ckpt")
    assert not torch.equal(resumed["distill_adapters"]["5.weight"], ckpt["distill_adapters"]["5.weight"])
    assert len(resumed["optimizer"]["param_groups"]) == len(ckpt["optimizer"]["param_groups"])
    # a backbone prefix cannot teach
    prefix = tmp_path / "prefix.weights"
    net = DarknetNet(str(float_start["cfg"]), None)
    net.load_weights(float_start["weights"])
    net.save_weights(prefix, upto=3)
    with pytest.raises(ValueError, match="whole trained detector"):
        run(shapes, float_start["tern"], weights=str(float_start["weights"]), clear=True, distill=True,
            teacher=str(prefix), backup=str(tmp_path / "bad"))
