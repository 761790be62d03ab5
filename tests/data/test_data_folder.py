import numpy as np
import pytest

from tritnet.data import DataError, ImageFolder, open_files

from data_helpers import CIFAR_CLASSES, png_bytes, random_image, write_image_tree


def test_real_cifar_tarball_per_class(cifar_files):
    ds = ImageFolder(cifar_files, "test", per_class=10, transform=None)
    assert ds.classes == CIFAR_CLASSES == sorted(CIFAR_CLASSES)
    assert len(ds) == 100
    # The first 10 files of each class in sorted order, labelled by their folder.
    assert ds.refs == [f"test/{c}/{i:04d}.jpg" for c in CIFAR_CLASSES for i in range(10)]
    assert ds.targets == [k for k in range(10) for _ in range(10)]
    for i in (0, 55, 99):
        img, label = ds[i]
        assert img.shape == (32, 32, 3) and img.dtype == np.uint8
        assert ds.refs[i].split("/")[1] == CIFAR_CLASSES[label]
    tensor, _ = ImageFolder(cifar_files, "test", per_class=1)[0]  # default transform
    assert tensor.shape == (3, 32, 32) and tensor.dtype.is_floating_point
    assert 0 <= tensor.min() <= tensor.max() <= 1


def test_real_cifar_tarball_full_listing(cifar_files):
    train = ImageFolder(cifar_files, "train")
    test = ImageFolder(cifar_files, "test", classes=train.classes)
    assert (len(train), len(test)) == (50000, 10000)
    assert np.bincount(train.targets).tolist() == [5000] * 10
    assert np.bincount(test.targets).tolist() == [1000] * 10


def test_tarball_path_and_directory_give_the_same_dataset(tmp_path, cifar_files):
    # Extract a few real images into a directory tree and compare with the tarball.
    ref = ImageFolder(cifar_files, "train", per_class=2, transform=None)
    for name in ref.refs:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(cifar_files.read(name))
    (tmp_path / "train" / "README.txt").write_text("not an image, not a class")
    ds = ImageFolder(tmp_path, "train", per_class=2, transform=None)
    assert ds.classes == ref.classes and ds.refs == ref.refs and ds.targets == ref.targets
    for i in range(len(ds)):
        np.testing.assert_array_equal(ds[i][0], ref[i][0])


def test_opening_the_tarball_by_path(cifar_tarball):
    ds = ImageFolder(cifar_tarball, "test", per_class=1)
    assert len(ds) == 10 and ds.where(ds.refs[0]) == f"{cifar_tarball}:test/airplane/0000.jpg"


def test_directory_without_split_and_nested_files(tmp_path):
    pixels = write_image_tree(tmp_path, {"b_cls": 2, "a_cls": 1, "a_cls/sub": 1})
    ds = ImageFolder(tmp_path, transform=None)
    assert ds.classes == ["a_cls", "b_cls"]
    assert ds.refs == ["a_cls/000.png", "a_cls/sub/000.png", "b_cls/000.png", "b_cls/001.png"]
    assert ds.targets == [0, 0, 1, 1]
    np.testing.assert_array_equal(ds[2][0], pixels["b_cls/000.png"])  # PNG: exact pixels


def test_explicit_classes_keep_label_order_and_reject_unknown_folders(tmp_path):
    write_image_tree(tmp_path, {"test/cat": 1, "test/dog": 1})
    ds = ImageFolder(tmp_path, "test", classes=["ant", "cat", "dog"])
    assert ds.targets == [1, 2]
    with pytest.raises(DataError, match=r"test/dog: class folder 'dog' is not one of the 2 known"):
        ImageFolder(tmp_path, "test", classes=["ant", "cat"])


def test_folder_errors(tmp_path):
    write_image_tree(tmp_path, {"train/cat": 1})
    with pytest.raises(DataError, match="no images under split 'test/<class>/'.*'train'"):
        ImageFolder(tmp_path, "test")
    with pytest.raises(DataError, match="nowhere: no such file or directory"):
        ImageFolder(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: empty dataset"):
        ImageFolder(tmp_path / "empty")
    with pytest.raises(ValueError, match="per_class"):
        ImageFolder(tmp_path, "train", per_class=0)


def test_missing_and_corrupt_images_are_named_when_loaded(tmp_path):
    write_image_tree(tmp_path, {"train/cat": 2})
    (tmp_path / "train/cat/001.png").write_bytes(png_bytes(random_image(0))[:50])
    files = open_files(tmp_path)
    ds = ImageFolder(files, "train")
    with pytest.raises(DataError, match=r"train/cat/001\.png: cannot decode image"):
        ds[1]
    (tmp_path / "train/cat/000.png").unlink()  # vanished after listing
    with pytest.raises(DataError, match=r"train/cat/000\.png: cannot read image"):
        ds[0]
