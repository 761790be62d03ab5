"""Shared data for the staged-ternarization tests, skipped when absent."""
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CFG_DIR = SHARED / "darknet" / "cfg"


@pytest.fixture(scope="session")
def cfg_dir() -> Path:
    if not CFG_DIR.is_dir():
        pytest.skip(f"shared darknet cfgs not found at {CFG_DIR}")
    return CFG_DIR


@pytest.fixture(scope="session")
def cifar() -> Path:
    path = SHARED / "cifar10" / "cifar10-jpeg.tar.gz"
    if not path.is_file():
        pytest.skip(f"CIFAR-10 not found at {path}")
    return path


@pytest.fixture(scope="session")
def cifar_small(cifar, tmp_path_factory) -> Path:
    """10 training and 3 test images per class, copied out of the CIFAR-10 tarball once (a folder reads in
    milliseconds, the 20 MB tarball in seconds on every stage)."""
    import tarfile
    root = tmp_path_factory.mktemp("cifar_small")
    want = {"train": 10, "test": 3}
    with tarfile.open(cifar) as tf:
        members = sorted((m for m in tf if m.isfile() and m.name.endswith(".jpg")), key=lambda m: m.name)
        taken = {}
        for m in members:
            split, cls, _ = m.name.split("/")[-3:]
            if split in want and taken.get((split, cls), 0) < want[split]:
                taken[(split, cls)] = taken.get((split, cls), 0) + 1
                dst = root / split / cls / Path(m.name).name
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.write_bytes(tf.extractfile(m).read())
    return root


@pytest.fixture(scope="session")
def resnet_pretrained() -> Path:
    path = SHARED / "pretrained" / "resnet_cifar10"
    if not path.is_dir():
        pytest.skip(f"pretrained ResNets not found at {path}")
    return path
