"""Shared by the export and runtime tests: small models, CIFAR test images, random darknet networks."""
from __future__ import annotations

import io

import numpy as np
import torch

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
MEAN, STD = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)


def cifar_test(shared, per_class: int, split: str = "test"):
    """(x normalised NCHW float32, labels) of the first ``per_class`` JPEGs of each class of a split."""
    from PIL import Image
    from tritnet.data.tarball import read_tar

    def keep(name):
        parts = name.split("/")
        return len(parts) >= 3 and parts[-3] == split and parts[-2] in CLASSES

    files = read_tar(shared / "cifar10" / "cifar10-jpeg.tar.gz", keep)
    xs, ys = [], []
    for c, cls in enumerate(CLASSES):
        names = sorted(n for n in files if n.split("/")[-2] == cls)[:per_class]
        for n in names:
            im = np.asarray(Image.open(io.BytesIO(files[n])).convert("RGB"), np.float32) / 255
            xs.append(((im - MEAN) / STD).transpose(2, 0, 1))
            ys.append(c)
    return np.stack(xs).astype(np.float32), np.array(ys)


def ternary_resnet20(shared, layers="all", per_class=100):
    """The pretrained ResNet-20, TWN per channel, with its batch-norm statistics re-estimated on
    ``per_class`` training images per class (no training: ternarizing shifts the statistics)."""
    import tritnet
    m = tritnet.create_model("resnet20", pretrained=str(shared / "pretrained" / "resnet_cifar10"))
    tritnet.ternarize_(m, method="twn", layers=layers, per_channel=True)
    x, _ = cifar_test(shared, per_class, split="train")
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.reset_running_stats()
            mod.momentum = None                      # cumulative average over the batches
    m.train()
    with torch.no_grad():
        for i in range(0, len(x), 200):
            m(torch.from_numpy(x[i:i + 200]))
    return m.eval()


def random_bn_(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            n = mod.num_features
            mod.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            mod.weight.data.copy_(torch.rand(n, generator=g) * 0.4 + 0.8)
            if mod.bias is not None:
                mod.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
    return model


def darknet_net(shared, name, size=None, method="twn", seed=0):
    """A darknet cfg from shared/, all convs ternary (none with method=None), random weights (BN statistics
    randomised), optionally resized."""
    from tritnet.darknet import build_darknet, parse_cfg, set_ternary
    cfg = parse_cfg(shared / "darknet" / "cfg" / f"{name}.cfg")
    if method:
        set_ternary(cfg)                              # every conv ternary
    if size:
        cfg.net.set("width", size)
        cfg.net.set("height", size)
    torch.manual_seed(seed)
    net = build_darknet(cfg, None, method=method or "twn", per_channel=True)
    with torch.no_grad():
        random_bn_(net, seed)
    return net
