"""Darknet classifier cfgs in the classifier loop: cifar_minin.cfg from its real weights, float and ternary,
checkpoints that rebuild the network from their own cfg text, darknet .weights written beside them."""
import tarfile

import numpy as np
import pytest
import torch

from tritnet.cli import main
from tritnet.train import ClassifierTrainConfig, load_classifier, train_classifier


@pytest.fixture(scope="module")
def three_classes(shared_data, tmp_path_factory):
    """cifar_minin's 3 outputs: an image folder of 3 CIFAR-10 classes (30 train / 10 test images each)."""
    root = tmp_path_factory.mktemp("three")
    want, taken = {"train": 30, "test": 10}, {}
    with tarfile.open(shared_data / "cifar10" / "cifar10-jpeg.tar.gz") as tf:
        for m in tf:
            parts = m.name.split("/")[-3:]
            if not m.isfile() or len(parts) < 3 or parts[1] not in ("automobile", "bird", "cat"):
                continue
            split, cls, name = parts
            if split in want and taken.get((split, cls), 0) < want[split]:
                taken[(split, cls)] = taken.get((split, cls), 0) + 1
                (root / split / cls).mkdir(parents=True, exist_ok=True)
                (root / split / cls / name).write_bytes(tf.extractfile(m).read())
    return root


def scores_by_hand(net, folder):
    """(top-1 %, mean cross-entropy, images) of ``net`` on folder/test: each JPEG decoded by Pillow, x/255 (a
    darknet classifier's input), arg max against the folder's class (classes in name order)."""
    from PIL import Image
    net.eval()
    logits, labels = [], []
    for k, cls in enumerate(sorted(p.name for p in (folder / "test").iterdir())):
        for f in sorted((folder / "test" / cls).iterdir()):
            x = torch.from_numpy(np.asarray(Image.open(f).convert("RGB"), np.float32) / 255).permute(2, 0, 1)
            with torch.no_grad():
                logits.append(net(x[None]).flatten())
            labels.append(k)
    logits, labels = torch.stack(logits), torch.tensor(labels)
    top1 = 100 * (logits.argmax(1) == labels).double().mean().item()
    return top1, torch.nn.functional.cross_entropy(logits, labels).item(), len(labels)


@pytest.fixture(scope="module")
def minin(shared_data):
    w = shared_data / "darknet" / "weights"
    return str(w / "cifar_minin.cfg"), str(w / "cifar_minin.weights")


def test_a_darknet_cfg_trains_ternary_and_its_checkpoint_rebuilds_it(three_classes, minin, tmp_path):
    cfg, weights = minin
    r = train_classifier(ClassifierTrainConfig(
        data=str(three_classes), model=cfg, weights=weights, method="twn", layers="all", epochs=1, batch_size=30,
        lr=0.01, workers=0, project=str(tmp_path), name="minin", progress=False))
    run = tmp_path / "minin"
    assert {"last.pt", "best.pt", "last.weights", "best.weights"} <= {p.name for p in (run / "weights").iterdir()}
    model, state = load_classifier(run / "weights" / "last.pt")
    assert state["darknet_cfg"].count("ternary=1") == 4 and "[convolutional]" in state["darknet_cfg"]
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), r["model"].eval()(x), atol=1e-6)
    # the .weights hold the ternary values: one magnitude per layer (TWN per layer)
    from tritnet.darknet import load_weights, parse_cfg
    w = load_weights(parse_cfg(cfg), run / "weights" / "last.weights")
    assert w.complete and len(np.unique(np.abs(w.layers[0]["weights"][w.layers[0]["weights"] != 0]))) == 1
    top1, loss, n = scores_by_hand(model, three_classes)     # the saved network scored from the JPEGs
    assert r["top1"] == pytest.approx(top1) and r["loss"] == pytest.approx(loss, rel=1e-5) and n == 30
    # the checkpoint packed and run by tritnet_rt: the same scores as PyTorch, up to int8 activations
    import tritnet_rt
    from tritnet.export import save, to_packed
    save(to_packed(model), tmp_path / "m.tnp")
    rt = tritnet_rt.load(tmp_path / "m.tnp")
    with torch.no_grad():
        ref = model(x).numpy()                              # cifar_minin ends in [avgpool]: no softmax
    got = rt(x.numpy())[0].reshape(4, -1)
    assert np.abs(got - ref).max() < 0.05 * np.abs(ref).max() and (got.argmax(1) == ref.argmax(1)).mean() >= 0.75


def test_float_cfg_from_darknet_weights_scores_as_the_real_network(three_classes, minin, capsys):
    """`classifier valid DATA WEIGHTS --model CFG`: the real weights, x/255 inputs, the cfg's outputs."""
    cfg, weights = minin
    assert main(["classifier", "valid", str(three_classes), weights, "--model", cfg, "--workers", "0",
                 "--json"]) == 0
    import json
    r = json.loads(capsys.readouterr().out)
    from tritnet.darknet import build_darknet
    top1, loss, n = scores_by_hand(build_darknet(cfg, weights, None), three_classes)
    assert r["images"] == n == 30 and r["top1"] == pytest.approx(top1) and r["loss"] == pytest.approx(loss, rel=1e-5)


def test_a_cfg_with_another_class_count_is_a_clear_error(shared_data, minin, tmp_path):
    from tritnet.models import create_model
    with pytest.raises(ValueError, match=r"cifar_minin.cfg:\d+: .*outputs 3 classes, the data has 10; set filters=10"):
        create_model(minin[0], num_classes=10)
