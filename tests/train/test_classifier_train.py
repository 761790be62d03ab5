"""A short real training run: the loss falls and the run folder holds every artefact; resume continues it."""
import csv
import json

import pytest
import torch
import yaml

import tritnet
from tritnet.cli import main
from tritnet.models import read_checkpoint
from tritnet.train import ClassifierTrainConfig, load_classifier, train_classifier
from tritnet.train import classifier as classifier_module


def small_cfg(shared_data, tmp_path, **kw):
    base = dict(data=str(shared_data / "cifar10/cifar10-jpeg.tar.gz"), model="resnet20", method="twn",
                train_per_class=30, valid_per_class=10, epochs=3, batch_size=50, lr=0.05, workers=0,
                project=str(tmp_path / "runs"), name="t", progress=False)
    base.update(kw)
    return ClassifierTrainConfig(**base)


def test_short_training_run_learns_and_writes_artefacts(shared_data, tmp_path):
    r = train_classifier(small_cfg(shared_data, tmp_path))
    run = tmp_path / "runs" / "t"
    assert r["run_dir"] == str(run)
    rows = list(csv.DictReader(open(run / "results.csv")))
    assert [int(x["epoch"]) for x in rows] == [1, 2, 3]
    assert set(rows[0]) >= {"train_loss", "valid_loss", "top1", "top5", "lr", "epoch_time_s"}
    losses = [float(x["train_loss"]) for x in rows]
    assert losses[-1] < 0.9 * losses[0], losses  # 300 images, 3 epochs from scratch: the loss must fall
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert yaml.safe_load((run / "args.yaml").read_text())["method"] == "twn"
    last = read_checkpoint(run / "weights" / "last.pt")
    assert last["epoch"] == 2 and last["arch"] == "resnet20" and len(last["ternary"]) == 20
    assert read_checkpoint(run / "weights" / "best.pt")["best_top1"] == max(float(x["top1"]) for x in rows)
    model, state = tritnet.train.load_classifier(run / "weights" / "last.pt")
    assert state["class_names"][0] == "airplane" and tritnet.ternary_report(model)[0].ternary


def test_killed_run_resumes_from_its_last_checkpoint(shared_data, tmp_path, monkeypatch):
    real_evaluate, calls = classifier_module.evaluate, []

    def dies_in_epoch_two(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return real_evaluate(*a, **k)

    monkeypatch.setattr(classifier_module, "evaluate", dies_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        train_classifier(small_cfg(shared_data, tmp_path, epochs=3, method=None))
    run = tmp_path / "runs" / "t"
    assert read_checkpoint(run / "weights" / "last.pt")["epoch"] == 0
    monkeypatch.setattr(classifier_module, "evaluate", real_evaluate)
    r = train_classifier(ClassifierTrainConfig(data="ignored", resume=str(run), progress=False, workers=0))
    assert r["run_dir"] == str(run)
    assert [int(x["epoch"]) for x in csv.DictReader(open(run / "results.csv"))] == [1, 2, 3]
    assert read_checkpoint(run / "weights" / "last.pt")["epoch"] == 2
    assert not (tmp_path / "runs" / "t2").exists()


def test_cli_train_valid_predict_with_json(shared_data, tmp_path, capsys):
    data = str(shared_data / "cifar10/cifar10-jpeg.tar.gz")
    assert main(["classifier", "train", data, "--weights", str(shared_data / "pretrained/resnet_cifar10"),
                 "--method", "ttn", "--layers", "all_but_first_last", "--epochs", "1", "--train-per-class", "10",
                 "--valid-per-class", "5", "--workers", "0", "--project", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["epochs"] == 1
    log = list(csv.DictReader(open(f"{out['run_dir']}/results.csv")))          # what the epoch logged
    assert len(log) == 1 and out["top1"] == pytest.approx(float(log[0]["top1"]), abs=1e-3)
    ckpt = f"{out['run_dir']}/weights/best.pt"
    assert main(["classifier", "valid", data, ckpt, "--valid-per-class", "5", "--workers", "0", "--json"]) == 0
    valid = json.loads(capsys.readouterr().out)
    assert valid["images"] == 50 and valid["top1"] == pytest.approx(out["best_top1"])
    img = tmp_path / "cat.png"
    import numpy as np
    from PIL import Image
    Image.fromarray((np.random.default_rng(0).random((32, 32, 3)) * 255).astype("uint8")).save(img)
    assert main(["classifier", "predict", ckpt, str(img), "--json"]) == 0
    pred = json.loads(capsys.readouterr().out)
    # by hand: the checkpoint's network on the image normalised with the model's mean and std, softmax
    from tritnet.models import get_model_info
    model, _ = load_classifier(ckpt)
    info = get_model_info("resnet20")
    x = (np.asarray(Image.open(img), np.float32) / 255 - np.float32(info.mean)) / np.float32(info.std)
    with torch.no_grad():
        probs = torch.softmax(model.eval()(torch.from_numpy(x).permute(2, 0, 1)[None]), 1)[0].numpy()
    names = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    assert [t["class"] for t in pred["top"]] == [names[k] for k in np.argsort(-probs)[:5]]
    assert [t["probability"] for t in pred["top"]] == pytest.approx(np.sort(probs)[::-1][:5].tolist(), abs=1e-5)


def test_cli_errors_are_one_line_naming_the_problem(shared_data, tmp_path, capsys):
    data = str(shared_data / "cifar10/cifar10-jpeg.tar.gz")
    assert main(["classifier", "train", data, "--layers", "conv9", "--method", "twn", "--epochs", "1",
                 "--train-per-class", "2", "--valid-per-class", "1", "--workers", "0",
                 "--project", str(tmp_path)]) == 2
    assert "no Conv2d/Linear layer named 'conv9'" in capsys.readouterr().err
    assert main(["classifier", "valid", data, str(tmp_path / "missing.pt"), "--workers", "0"]) == 2
    assert "missing.pt: no such checkpoint file" in capsys.readouterr().err
    assert main(["classifier", "train", str(tmp_path / "nowhere"), "--epochs", "1"]) == 2
    assert "nowhere" in capsys.readouterr().err
    torch.save({"model": {"w": torch.zeros(1)}}, tmp_path / "bare.pt")
    assert main(["classifier", "valid", data, str(tmp_path / "bare.pt"), "--workers", "0",
                 "--valid-per-class", "1"]) == 2
    assert "bare.pt: not a tritnet checkpoint" in capsys.readouterr().err


def _tiny_folder(root, per_class=3):
    """root/{train,test}/{a,b}/NNN.png: 32x32 random images, the smallest set a CIFAR ResNet trains on."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in ("a", "b"):
            (root / split / c).mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / c / f"{i:03d}.png")
    return root


def _fails(argv, capsys) -> str:
    """The one error line of a command that must stop with status 2."""
    assert main([str(x) for x in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tritnet: error: ") and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_cli_training_skips_undecodable_images_naming_each(tmp_path, capsys):
    import warnings

    from tritnet.data import DataWarning
    data = _tiny_folder(tmp_path / "imgs")
    (data / "train/a/empty.jpg").write_bytes(b"")
    (data / "train/b/cut.png").write_bytes((data / "train/b/000.png").read_bytes()[:60])
    (data / "train/b/text.jpg").write_text("hello, not an image")
    with pytest.warns(DataWarning) as got:
        assert main(["classifier", "train", str(data), "--epochs", "1", "--batch-size", "4", "--workers", "0",
                     "--project", str(tmp_path / "runs"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["epochs"] == 1 and (tmp_path / "runs" / "train" / "weights" / "last.pt").is_file()
    lines = sorted(warnings.formatwarning(w.message, w.category, w.filename, w.lineno) for w in got)
    assert [line.split(": cannot decode image")[0] for line in lines] == [
        f"warning: {data}/train/a/empty.jpg", f"warning: {data}/train/b/cut.png", f"warning: {data}/train/b/text.jpg"]
    assert all(line.endswith("; skipped\n") and line.count("\n") == 1 for line in lines)
    # nothing usable left: one line naming the set
    for f in (data / "train").glob("*/0*.png"):
        f.write_bytes(b"")
    err = _fails(["classifier", "train", data, "--epochs", "1", "--workers", "0", "--project", tmp_path / "runs"],
                 capsys)
    assert f"{data} [train]: no usable image: none of the 9 images can be read or decoded" in err


@pytest.mark.parametrize("option, value, message", [
    ("--lr", "nan", "argument --lr: must be a finite number > 0, got 'nan'"),
    ("--lr", "0", "argument --lr: must be a finite number > 0, got '0'"),
    ("--epochs", "0", "argument --epochs: must be an integer >= 1, got '0'"),
], ids=["lr-nan", "lr-zero", "epochs-zero"])
def test_cli_train_refuses_bad_numbers_before_any_run_folder(option, value, message, tmp_path, capsys):
    data = _tiny_folder(tmp_path / "imgs", per_class=1)
    err = _fails(["classifier", "train", data, option, value, "--workers", "0", "--project", tmp_path / "runs"],
                 capsys)
    assert message in err
    assert not (tmp_path / "runs").exists()            # no args.yaml-only run, no NaN checkpoints


def test_train_config_checks_its_numbers_as_the_command_line_does():
    with pytest.raises(ValueError, match=r"^lr: must be a finite number > 0, got 'nan'$"):
        ClassifierTrainConfig(data="x", lr=float("nan"))
    with pytest.raises(ValueError, match=r"^epochs: must be an integer >= 1, got '0'$"):
        ClassifierTrainConfig(data="x", epochs=0)
    with pytest.raises(ValueError, match=r"^milestones: must be a finite number > 0, got 'inf'$"):
        ClassifierTrainConfig(data="x", milestones=(0.5, float("inf")))


def test_cli_predict_refuses_top_below_one(tmp_path, capsys):
    data = _tiny_folder(tmp_path / "imgs", per_class=1)
    err = _fails(["classifier", "predict", tmp_path / "w.pt", data / "test/a/000.png", "--top", "-2"], capsys)
    assert "argument --top: must be an integer >= 1, got '-2'" in err


def test_batchnorm_statistics_are_re_estimated_before_evaluation_without_changing_training(shared_data, tmp_path):
    """The pretrained ResNet-20 made ternary keeps its float BN statistics (no re-estimation at the start), so after
    two short epochs the running averages still mostly describe the float network; bn_eval re-estimates them from
    the final weights before each evaluation and checkpoint. Training uses batch statistics and the same augmentation
    draws (the re-estimation's are given back): the weights must come out bit for bit the same."""
    common = dict(weights=str(shared_data / "pretrained" / "resnet_cifar10"), epochs=2, train_per_class=20,
                  valid_per_class=20, lr=0.01, bn_recalibrate=0, seed=4)
    stale = train_classifier(small_cfg(shared_data, tmp_path, name="stale", bn_eval=0, **common))
    fresh = train_classifier(small_cfg(shared_data, tmp_path, name="fresh", bn_eval=3, **common))
    a, b = (read_checkpoint(tmp_path / "runs" / n / "weights" / "last.pt")["model"] for n in ("stale", "fresh"))
    weights = [k for k in a if k.endswith("weight") and a[k].dim() > 1]
    assert len(weights) == 20 and all(torch.equal(a[k], b[k]) for k in weights)
    assert int(a["bn1.num_batches_tracked"]) == 8 and int(b["bn1.num_batches_tracked"]) == 3   # 2 x 200 images / 50
    assert not torch.allclose(a["bn1.running_mean"], b["bn1.running_mean"])
    # with the float statistics a ternary ResNet-20 is near chance (calibrate.py); re-estimated, far above it
    assert stale["top1"] < 25 and fresh["top1"] > stale["top1"] + 15, (stale["top1"], fresh["top1"])
    rows = list(csv.DictReader(open(tmp_path / "runs" / "fresh" / "results.csv")))
    assert float(rows[-1]["top1"]) == pytest.approx(fresh["top1"], abs=1e-3)
