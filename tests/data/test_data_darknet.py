import os

import numpy as np
import pytest

from tritnet.data import DarknetList, DataError, label_of, read_data_cfg, read_labels

from data_helpers import png_bytes, random_image

LABELS = ["airplane", "cat", "dog"]


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A darknet-style tree; the tests run from an unrelated directory, so every relative
    path must be found relative to the .data file or the list."""
    root = tmp_path / "proj"
    (root / "data" / "imgs").mkdir(parents=True)
    (root / "cfg").mkdir()
    pixels = {}
    for i, name in enumerate(["1_cat.png", "2_dog.png", "3_airplane.png", "4_cat.png"]):
        pixels[name] = random_image(i)
        (root / "data" / "imgs" / name).write_bytes(png_bytes(pixels[name]))
    (root / "data" / "labels.txt").write_text("\n".join(LABELS) + "\n\n")
    (root / "data" / "train.list").write_text("imgs/1_cat.png\nimgs/2_dog.png\n\nimgs/3_airplane.png\n")
    (root / "data" / "valid.list").write_text(f"{root}/data/imgs/4_cat.png\n")
    (root / "cfg" / "tiny.data").write_text(
        "# a classifier\n"
        "classes = 3\n"
        "train  =   ../data/train.list\n"
        "valid=../data/valid.list\n"
        "; another comment style\n"
        "labels = ../data/labels.txt\n"
        "backup = backup/\n"
        "top=2\n"
        "classes = 99\n")  # darknet: the first value of a key wins
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return root, pixels


def test_read_data_cfg_resolves_relative_to_the_data_file(project):
    root, _ = project
    cfg = read_data_cfg(root / "cfg" / "tiny.data")
    assert cfg.classes == 3 and cfg.top == 2
    assert cfg.train == root / "cfg" / "../data/train.list" and cfg.train.is_file()
    assert cfg.labels.is_file()
    assert cfg.backup == __import__("pathlib").Path("backup/")  # missing: kept as given
    assert cfg.options["valid"] == "../data/valid.list"


def test_paths_relative_to_cwd_win(project, monkeypatch):
    root, _ = project
    monkeypatch.chdir(root)
    (root / "cfg" / "cwd.data").write_text("train = data/train.list\nlabels = data/labels.txt\n")
    cfg = read_data_cfg("cfg/cwd.data")
    assert str(cfg.train) == "data/train.list"


def test_darknet_list_labels_by_path_substring(project):
    root, pixels = project
    train = DarknetList(root / "cfg" / "tiny.data", "train", transform=None)
    assert train.classes == LABELS
    assert train.targets == [1, 2, 0]
    assert [os.path.basename(r) for r in train.refs] == ["1_cat.png", "2_dog.png", "3_airplane.png"]
    np.testing.assert_array_equal(train[1][0], pixels["2_dog.png"])
    valid = DarknetList(root / "cfg" / "tiny.data", "valid")
    assert valid.targets == [1] and valid[0][0].shape == (3, 8, 8)
    assert DarknetList(root / "cfg" / "tiny.data", "train", per_class=1).targets == [1, 2, 0]


def test_label_of_follows_darknet_strstr():
    assert label_of("data/cifar/train/123_cat.png", ["cat", "dog"], "l:1") == 0
    assert label_of("x/dog/cat.png", ["truck", "cat"], "l:1") == 1
    with pytest.raises(DataError, match=r"^l:1: no label appears in image path 'x/bird.png'"):
        label_of("x/bird.png", ["cat", "dog"], "l:1")
    with pytest.raises(DataError, match=r"^l:2: ambiguous: labels \['cat', 'bobcat'\] all appear"):
        label_of("x/bobcat_1.png", ["cat", "bobcat"], "l:2")


def test_unknown_and_ambiguous_labels_name_list_and_line(project):
    root, _ = project
    (root / "data" / "imgs" / "5_bird.png").write_bytes(png_bytes(random_image(5)))
    (root / "data" / "train.list").write_text("imgs/1_cat.png\nimgs/5_bird.png\n")
    with pytest.raises(DataError, match=r"train\.list:2: no label appears in image path 'imgs/5_bird.png'"):
        DarknetList(root / "cfg" / "tiny.data")
    (root / "data" / "imgs" / "6_catdog.png").write_bytes(png_bytes(random_image(6)))
    (root / "data" / "train.list").write_text("imgs/6_catdog.png\n")
    with pytest.raises(DataError, match=r"train\.list:1: ambiguous: labels \['cat', 'dog'\]"):
        DarknetList(root / "cfg" / "tiny.data")


def test_missing_and_corrupt_images(project):
    root, _ = project
    (root / "data" / "train.list").write_text("imgs/1_cat.png\n\nimgs/9_dog.png\n")
    with pytest.raises(DataError, match=r"train\.list:3: image not found: imgs/9_dog\.png"):
        DarknetList(root / "cfg" / "tiny.data")
    (root / "data" / "imgs" / "2_dog.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (root / "data" / "train.list").write_text("imgs/1_cat.png\nimgs/2_dog.png\n")
    ds = DarknetList(root / "cfg" / "tiny.data")
    with pytest.raises(DataError, match=r"2_dog\.png: cannot decode image"):
        ds[1]


def test_bad_data_files(project, tmp_path):
    root, _ = project
    bad = tmp_path / "bad.data"
    bad.write_text("classes = 3\n# fine\ntrain /no/equals/sign\n")
    with pytest.raises(DataError, match=r"bad\.data:3: expected 'key = value', got 'train /no/equals/sign'"):
        read_data_cfg(bad)
    bad.write_text("classes = three\n")
    with pytest.raises(DataError, match=r"bad\.data: 'classes' must be an integer"):
        read_data_cfg(bad)
    with pytest.raises(DataError, match=r"nothing\.data: cannot read \.data file"):
        read_data_cfg(tmp_path / "nothing.data")
    text = (root / "cfg" / "tiny.data").read_text()
    (root / "cfg" / "tiny.data").write_text(text.replace("classes = 3", "classes = 4"))
    with pytest.raises(DataError, match=r"tiny\.data: classes = 4 but .*labels\.txt lists 3 labels"):
        DarknetList(root / "cfg" / "tiny.data")
    (root / "cfg" / "nolabels.data").write_text("train = ../data/train.list\n")
    with pytest.raises(DataError, match=r"nolabels\.data: no 'labels' \(or 'names'\) file"):
        DarknetList(root / "cfg" / "nolabels.data")
    (root / "cfg" / "novalid.data").write_text("labels = ../data/labels.txt\n")
    with pytest.raises(DataError, match=r"novalid\.data: no 'valid' list"):
        DarknetList(root / "cfg" / "novalid.data", "valid")
    (root / "cfg" / "tiny.data").write_text(text)
    (root / "data" / "train.list").write_text("\n\n")
    with pytest.raises(DataError, match=r"train\.list: empty dataset"):
        DarknetList(root / "cfg" / "tiny.data")


def test_labels_file_checks(tmp_path):
    (tmp_path / "l.txt").write_text("cat\ndog\ncat\n")
    with pytest.raises(DataError, match=r"l\.txt: duplicate labels \['cat'\]"):
        read_labels(tmp_path / "l.txt")
    (tmp_path / "e.txt").write_text("\n")
    with pytest.raises(DataError, match=r"e\.txt: labels file is empty"):
        read_labels(tmp_path / "e.txt")


def test_real_darknet_files(shared_data):
    cfg = read_data_cfg(shared_data / "darknet" / "cfg" / "voc.data")
    assert cfg.classes == 20
    assert str(cfg.train) == "/home/pjreddie/data/voc/train.txt"
    assert cfg.options["names"] == "data/voc.names"
    labels5 = read_labels(shared_data / "darknet" / "weights" / "labels5.txt")
    assert labels5 == ["automobile", "person", "background"]
    assert len(read_labels(shared_data / "darknet" / "cfg" / "voc.names")) == 20
