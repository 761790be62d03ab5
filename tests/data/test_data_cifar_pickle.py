import pickle

import numpy as np
import pytest

from tritnet.data import (DataError, load_cifar10, read_cifar_batch, read_cifar_meta, write_cifar_batch,
                          write_cifar_meta)

from data_helpers import CIFAR_CLASSES


def images(n, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


@pytest.fixture
def batches_dir(tmp_path):
    """A miniature cifar-10-batches-py: 5 train batches of 6 images, a test batch of 4."""
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    for i in range(1, 6):
        write_cifar_batch(root / f"data_batch_{i}", images(6, i), [(i + j) % 10 for j in range(6)])
    write_cifar_batch(root / "test_batch", images(4, 0), [3, 1, 4, 1])
    write_cifar_meta(root, CIFAR_CLASSES)
    return root


def test_planar_rgb_layout_by_hand(tmp_path):
    # One row of b'data' is 1024 red, 1024 green, 1024 blue bytes, each plane row-major.
    row = np.zeros(3072, np.uint8)
    row[0], row[1024], row[2048] = 10, 20, 30        # pixel (0, 0)
    row[1 * 32 + 2], row[1024 + 1 * 32 + 2] = 7, 8   # pixel (1, 2): R=7, G=8
    row[2048 + 31 * 32 + 31] = 99                    # pixel (31, 31): B=99
    with open(tmp_path / "b", "wb") as f:
        pickle.dump({b"data": row[None], b"labels": [7]}, f, protocol=2)
    x, y = read_cifar_batch(tmp_path / "b")
    assert x.shape == (1, 32, 32, 3) and y.tolist() == [7]
    assert x[0, 0, 0].tolist() == [10, 20, 30]
    assert x[0, 1, 2].tolist() == [7, 8, 0]
    assert x[0, 31, 31].tolist() == [0, 0, 99]
    assert x.sum() == 10 + 20 + 30 + 7 + 8 + 99


def test_round_trip_exact_pixels(batches_dir):
    x, y = read_cifar_batch(batches_dir / "data_batch_3")
    np.testing.assert_array_equal(x, images(6, 3))
    assert y.tolist() == [3, 4, 5, 6, 7, 8]
    assert read_cifar_meta(batches_dir) == CIFAR_CLASSES


def test_load_cifar10_train_test_and_per_class(batches_dir):
    train = load_cifar10(batches_dir, train=True, transform=None)
    assert len(train) == 30 and train.classes == CIFAR_CLASSES
    np.testing.assert_array_equal(train.images[6:12], images(6, 2))
    img, label = train[6]
    assert label == 2 and img.shape == (32, 32, 3)
    test = load_cifar10(batches_dir, train=False)
    assert len(test) == 4 and test[0][0].shape == (3, 32, 32) and test[0][1] == 3
    few = load_cifar10(batches_dir, train=False, per_class=1, transform=None)
    assert few.targets.tolist() == [3, 1, 4]  # first of each class, file order
    np.testing.assert_array_equal(few.images, images(4, 0)[[0, 1, 2]])


def test_official_python2_style_pickle_is_read(tmp_path):
    # The official files are Python 2 pickles: str keys come back as bytes with encoding="bytes".
    data = images(2, 9).transpose(0, 3, 1, 2).reshape(2, 3072)
    with open(tmp_path / "b", "wb") as f:
        pickle.dump({b"batch_label": b"testing batch 1 of 1", b"labels": [0, 9], b"data": data,
                     b"filenames": [b"a.png", b"b.png"]}, f, protocol=2)
    np.testing.assert_array_equal(read_cifar_batch(tmp_path / "b")[0], images(2, 9))


def test_errors_name_the_file(batches_dir, tmp_path):
    (batches_dir / "data_batch_4").unlink()
    with pytest.raises(DataError, match="data_batch_4: cannot read CIFAR batch"):
        load_cifar10(batches_dir)
    (tmp_path / "junk").write_bytes(b"\x80\x02junk")
    with pytest.raises(DataError, match="junk: not a CIFAR pickle"):
        read_cifar_batch(tmp_path / "junk")
    with open(tmp_path / "short", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(DataError, match=r"short: expected uint8 data \(N, 3072\)"):
        read_cifar_batch(tmp_path / "short")
    with open(tmp_path / "nolabels", "wb") as f:
        pickle.dump({b"data": np.zeros((1, 3072), np.uint8)}, f)
    with pytest.raises(DataError, match="nolabels: CIFAR batch lacks"):
        read_cifar_batch(tmp_path / "nolabels")


def test_refuses_pickles_that_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))
    with open(tmp_path / "evil", "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": []}, f)
    with pytest.raises(DataError, match="refusing to load builtins.print"):
        read_cifar_batch(tmp_path / "evil")
