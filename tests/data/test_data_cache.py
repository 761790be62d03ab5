import os

import numpy as np
import pytest

from tritnet.data import DataError, ImageFolder, decode_all, in_memory, load_images, save_atomic
from tritnet.data import cache as cache_module
from tritnet.data.cache import cache_path

from data_helpers import write_image_tree


@pytest.fixture
def tree(tmp_path):
    pixels = write_image_tree(tmp_path / "imgs", {"train/a": 3, "train/b": 2})
    return tmp_path / "imgs", pixels


def test_decode_all_stacks_exact_pixels(tree):
    root, pixels = tree
    ds = ImageFolder(root, "train")
    images = decode_all(ds, workers=0)
    assert images.shape == (5, 8, 8, 3) and images.dtype == np.uint8
    for i, ref in enumerate(ds.refs):
        np.testing.assert_array_equal(images[i], pixels[ref])


def test_forked_workers_match_serial_decode_on_real_cifar(cifar_files):
    ds = ImageFolder(cifar_files, "test", per_class=250)  # 2,500 images: 3 chunks
    np.testing.assert_array_equal(decode_all(ds, workers=2), decode_all(ds, workers=1))


def test_errors_in_decode_workers_name_the_file(tree, monkeypatch):
    root, _ = tree
    (root / "train/b/001.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    monkeypatch.setattr(cache_module, "_CHUNK", 2)  # 5 images -> 3 spans over 2 workers
    with pytest.raises(DataError, match=r"train/b/001\.png: cannot decode image"):
        decode_all(ImageFolder(root, "train"), workers=2)


def test_cache_is_written_atomically_and_reused(tree, tmp_path, monkeypatch):
    root, pixels = tree
    cache = tmp_path / "cache"
    ds = ImageFolder(root, "train")
    replaced = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (replaced.append((a, b)), real_replace(a, b)))
    first = load_images(ds, cache)
    path = cache_path(ds, cache)
    # Written once, under a temporary name in the same folder, then renamed into place.
    assert len(replaced) == 1 and replaced[0][1] == path
    assert os.path.dirname(replaced[0][0]) == str(cache) and str(replaced[0][0]).endswith(".tmp")
    assert sorted(p.name for p in cache.iterdir()) == [path.name]
    assert path.name.startswith("imgs-train-5-")

    def no_decoding(i):
        raise AssertionError("decoded although cached")
    monkeypatch.setattr(ds, "load", no_decoding)
    np.testing.assert_array_equal(load_images(ds, cache), first)
    assert len(replaced) == 1
    assert in_memory(ds, cache).targets.tolist() == [0, 0, 0, 1, 1]


def test_cache_key_follows_the_data(tree, tmp_path):
    root, _ = tree
    key = ImageFolder(root, "train").cache_key()
    assert ImageFolder(root, "train").cache_key() == key
    assert ImageFolder(root, "train", per_class=2).cache_key() != key
    assert ImageFolder(root, "train", size=4).cache_key() != key
    os.utime(root / "train/a/000.png", ns=(0, 0))  # touched file -> new key
    assert ImageFolder(root, "train").cache_key() != key


def test_unreadable_cache_is_rebuilt(tree, tmp_path):
    root, pixels = tree
    ds = ImageFolder(root, "train")
    path = cache_path(ds, tmp_path)
    path.write_bytes(b"garbage")
    np.testing.assert_array_equal(load_images(ds, tmp_path)[0], pixels[ds.refs[0]])
    assert np.load(path).shape == (5, 8, 8, 3)


def test_failed_save_leaves_no_temporary_file(tmp_path):
    class Boom:  # np.save fails half-way on an object it cannot pickle
        def __reduce__(self):
            raise RuntimeError("boom")
    with pytest.raises(RuntimeError):
        save_atomic(tmp_path / "x.npy", np.array([Boom()], dtype=object))
    assert list(tmp_path.iterdir()) == []


def test_mixed_sizes_need_size(tmp_path):
    write_image_tree(tmp_path, {"a": 1})
    write_image_tree(tmp_path, {"b": 1}, size=(6, 6))
    with pytest.raises(DataError, match=r"b/000\.png: image is 6x6 but the first is 8x8; pass size="):
        decode_all(ImageFolder(tmp_path), workers=0)
    assert decode_all(ImageFolder(tmp_path, size=(5, 7)), workers=0).shape == (2, 5, 7, 3)


def test_undecodable_images_are_warned_about_once_and_left_out(tmp_path):
    """An empty, a truncated and a text file named .jpg: each is named in one warning and left out, the
    rest keep their labels, a cached set warns again; only a set with no usable image is an error."""
    from tritnet.data import DataWarning
    pixels = write_image_tree(tmp_path / "imgs", {"train/a": 2, "train/b": 2})
    root = tmp_path / "imgs"
    (root / "train/a/empty.png").write_bytes(b"")
    (root / "train/b/cut.png").write_bytes((root / "train/b/000.png").read_bytes()[:60])
    (root / "train/b/text.jpg").write_text("not an image")
    ds = ImageFolder(root, "train")
    for cache in (tmp_path / "cache", tmp_path / "cache"):      # decoded, then read back from the cache
        with pytest.warns(DataWarning) as got:
            kept = in_memory(ds, cache, workers=0)
        messages = sorted(str(w.message) for w in got)
        assert len(messages) == 3, messages
        assert messages[0] == f"{root}/train/a/empty.png: cannot decode image (the file is empty); skipped"
        assert messages[1].startswith(f"{root}/train/b/cut.png: cannot decode image (")
        assert messages[2] == (f"{root}/train/b/text.jpg: cannot decode image (not in an image format Pillow "
                               "reads); skipped")
        assert kept.targets.tolist() == [0, 0, 1, 1]
        np.testing.assert_array_equal(kept.images[2], pixels["train/b/000.png"])
    for f in root.glob("train/*/00*.png"):
        f.write_bytes(b"")
    with pytest.raises(DataError, match=r"imgs \[train\]: no usable image: none of the 7 images can be read"):
        in_memory(ImageFolder(root, "train"), workers=0)
