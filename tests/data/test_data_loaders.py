import numpy as np
import pytest
import torch

from tritnet.data import (IMAGENET_MEAN, IMAGENET_STD, DataError, ImageFolder, build_classification_loaders,
                          decode_all, load_image_for_model, open_datasets, write_cifar_batch,
                          write_cifar_meta)

from data_helpers import CIFAR_CLASSES, png_bytes, random_image, write_image_tree


def expected_batch(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    return (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def test_cifar10_by_name_from_the_real_tarball(shared_data, cifar_files, tmp_path):
    data = build_classification_loaders("cifar10", data_root=shared_data, batch_size=32,
                                        train_per_class=10, valid_per_class=5, cache_dir=tmp_path)
    assert data.class_names == CIFAR_CLASSES
    assert len(data.train.dataset) == 100 and len(data.valid.dataset) == 50
    x, y = next(iter(data.train))
    assert x.shape == (32, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    # valid: not augmented, in order, normalised with the ImageNet statistics
    x, y = next(iter(data.valid))
    ref = ImageFolder(cifar_files, "test", per_class=5)
    torch.testing.assert_close(x, expected_batch(decode_all(ref, workers=0)[:32]))
    assert y.tolist() == ref.targets[:32]
    assert len(list(tmp_path.glob("cifar10-jpeg-t*.npy"))) == 2  # train and test cached


def test_train_order_is_seeded_per_epoch(tmp_path):
    write_image_tree(tmp_path, {"train/a": 6, "train/b": 6, "val/a": 1, "val/b": 1})
    def order(epoch, seed=0):
        data = build_classification_loaders(tmp_path, batch_size=12, padding=0, flip=False, seed=seed)
        data.set_epoch(epoch)
        x, y = next(iter(data.train))
        return x.sum(dim=(1, 2, 3)).tolist()
    assert order(0) == order(0)
    assert order(0) != order(1)
    assert order(0) != order(0, seed=1)


def test_distributed_shards_cover_valid_exactly_once(tmp_path):
    write_image_tree(tmp_path, {"train/a": 4, "train/b": 3, "test/a": 3, "test/b": 2})
    seen = []
    for rank in range(2):
        data = build_classification_loaders(tmp_path, batch_size=100, distributed=True, rank=rank,
                                            world_size=2)
        seen += [tuple(v) for v in next(iter(data.valid))[0].flatten(1)[:, :4].tolist()]
        assert len(data.train.sampler) == 4  # 7 training images, padded to 8 over 2 ranks
    assert len(seen) == 5 and len(set(seen)) == 5


def test_specs_pickle_dir_darknet_and_valid_split(tmp_path):
    cifar = tmp_path / "cifar-10-batches-py"
    cifar.mkdir()
    imgs = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    for i in range(1, 6):
        write_cifar_batch(cifar / f"data_batch_{i}", imgs, [0, 1, 2, 3])
    write_cifar_batch(cifar / "test_batch", imgs[:2], [5, 6])
    write_cifar_meta(cifar, CIFAR_CLASSES)
    data = build_classification_loaders(cifar, batch_size=8, train_per_class=2)
    assert len(data.train.dataset) == 8 and data.class_names == CIFAR_CLASSES
    x, y = next(iter(data.valid))
    torch.testing.assert_close(x, expected_batch(imgs[:2]))
    assert y.tolist() == [5, 6]

    dk = tmp_path / "dk"
    write_image_tree(dk, {"imgs": 2})
    (dk / "imgs" / "000.png").rename(dk / "imgs" / "0_cat.png")
    (dk / "imgs" / "001.png").rename(dk / "imgs" / "1_dog.png")
    (dk / "all.list").write_text("imgs/0_cat.png\nimgs/1_dog.png\n")
    (dk / "labels.txt").write_text("dog\ncat\n")
    (dk / "t.data").write_text("classes=2\ntrain=all.list\nvalid=all.list\nlabels=labels.txt\n")
    data = build_classification_loaders(dk / "t.data", batch_size=2)
    assert data.class_names == ["dog", "cat"] and next(iter(data.valid))[1].tolist() == [1, 0]

    write_image_tree(tmp_path / "inet", {"train/x": 1, "val/x": 1})
    train, valid = open_datasets(tmp_path / "inet")
    assert valid.split == "val"


def test_lazy_decoding_in_a_worker_process(tmp_path):
    write_image_tree(tmp_path, {"train/a": 2, "test/a": 2}, fmt="jpg")
    write_image_tree(tmp_path, {"train/b": 2, "test/b": 2}, size=(12, 10), fmt="jpg")
    data = build_classification_loaders(tmp_path, batch_size=4, decode=False, size=(8, 8), workers=1,
                                        train=False)
    assert data.train is None
    x, y = next(iter(data.valid))
    assert x.shape == (4, 3, 8, 8) and y.tolist() == [0, 0, 1, 1]


def test_spec_errors(tmp_path):
    with pytest.raises(DataError, match="nope: no such dataset"):
        build_classification_loaders(tmp_path / "nope")
    with pytest.raises(DataError, match="dataset 'cifar10' not found here"):
        build_classification_loaders("cifar10", data_root=tmp_path)
    write_image_tree(tmp_path / "only_train", {"train/a": 1})
    with pytest.raises(DataError, match=r"only_train: no validation split.*\['train'\]"):
        build_classification_loaders(tmp_path / "only_train")


def test_load_image_for_model(tmp_path):
    img = random_image(0, 8, 8)
    (tmp_path / "x.png").write_bytes(png_bytes(img))
    x = load_image_for_model(tmp_path / "x.png", (8, 8), IMAGENET_MEAN, IMAGENET_STD)
    torch.testing.assert_close(x, expected_batch(img[None])[0])
    assert load_image_for_model(tmp_path / "x.png", (4, 6)).shape == (3, 4, 6)
