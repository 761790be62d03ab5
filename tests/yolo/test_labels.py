"""Ground truth readers: darknet's label rule, YOLO label files, .data files, and bad entries (reported once,
skipped, never fatal)."""
import warnings

import numpy as np
import pytest

from tritnet.yolo import DataWarning, Issues, label_path, open_data, read_yolo_labels
from tritnet.yolo.labels import darknet_records


def test_label_path_follows_darknets_rule():
    assert label_path("/d/VOC2007/JPEGImages/000001.jpg") == "/d/VOC2007/labels/000001.txt"
    assert label_path("/d/coco/images/train2014/x.JPEG") == "/d/coco/labels/train2014/x.txt"
    assert label_path("data/images/a.png") == "data/labels/a.txt"
    # only the first occurrence is replaced, as darknet's find_replace
    assert label_path("/images/x/images/b.jpg") == "/labels/x/images/b.txt"
    # AlexeyAB's difficult= trick: JPEGImages_difficult -> labels_difficult
    assert label_path("/o/JPEGImages_difficult/7.jpg") == "/o/labels_difficult/7.txt"


def test_bad_label_lines_are_reported_once_and_skipped(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("0 0.5 0.5 0.2 0.2\n"          # fine
                 "1 0.5 0.5 0 0.3\n"             # zero area
                 "7 0.5 0.5 0.1 0.1\n"           # class out of range
                 "0 1.5 0.5 0.1 0.1\n"           # centre outside
                 "0 0.5 0.5\n"                    # too short
                 "x 0.1 0.1 0.1 0.1\n"           # not a number
                 "1 0.95 0.5 0.2 0.4\n")         # overhangs the right edge: clipped
    issues = Issues()
    with pytest.warns(DataWarning) as rec:
        boxes, classes = read_yolo_labels(f, 2, issues)
    msgs = [str(w.message) for w in rec]
    assert len(msgs) == 5 and all(str(f) in m and m.endswith("skipped") for m in msgs)
    assert any(":2: zero-area" in m for m in msgs) and any(":3: class 7 is not in 0..1" in m for m in msgs)
    assert classes.tolist() == [0, 1]
    np.testing.assert_allclose(boxes[1], [0.925, 0.5, 0.15, 0.4], atol=1e-6)   # x from .85 to 1.0
    # the same problems again are not reported twice
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_yolo_labels(f, 2, issues)
    assert len(issues) == 5


def test_missing_label_file_skips_the_image(shapes):
    lab = shapes.parent / "labels" / "train_001.txt"
    lab.unlink()
    issues = Issues(warn=False)
    recs = open_data(shapes).records("train", issues)
    assert len(recs) == 5 and not any("train_001" in r.image for r in recs)
    assert issues.items[0][0].endswith("train_001.png") and "no label file" in issues.items[0][1]


def test_data_file_errors_name_the_file(tmp_path, shapes):
    with pytest.raises(FileNotFoundError, match="nope.data"):
        open_data(tmp_path / "nope.data")
    bad = tmp_path / "bad.data"
    bad.write_text(f"classes = 3\nnames = {shapes.parent / 'shapes.names'}\ntrain = {shapes.parent / 'train.txt'}\n")
    with pytest.raises(ValueError, match=r"bad.data: classes = 3 but the names list has 2"):
        open_data(bad)
    bad.write_text(f"classes = 2\ntrain = {tmp_path / 'missing.txt'}\n")
    with pytest.raises(FileNotFoundError, match=r"bad.data: train = .*missing.txt: no such file"):
        open_data(bad).records("train")


def test_difficult_list_marks_boxes_difficult(tmp_path, shapes):
    root = shapes.parent
    (root / "labels_difficult").mkdir()
    (root / "labels_difficult" / "valid_000.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    hard = [str(root / "JPEGImages_difficult" / f"valid_{k:03d}.png") for k in range(3)]
    (root / "difficult.txt").write_text("\n".join(hard) + "\n")
    recs = darknet_records(root / "valid.txt", 2, Issues(), root / "difficult.txt")
    assert recs[0].difficult.tolist() == [False, False, True] and not recs[1].difficult.any()
    assert recs[0].trainable().classes.tolist() == recs[0].classes[:2].tolist()


def test_bccd_zero_area_boxes_are_reported_and_skipped(shared):
    from tritnet.yolo import voc_set_records
    issues = Issues(warn=False)
    recs = voc_set_records(shared / "bccd" / "ImageSets" / "Main" / "trainval.txt", ["RBC", "WBC", "Platelets"], issues)
    recs += voc_set_records(shared / "bccd" / "ImageSets" / "Main" / "test.txt", ["RBC", "WBC", "Platelets"], issues)
    bad = sorted(w for w, _ in issues.items)
    assert len(bad) == 2 and "BloodImage_00338.xml" in bad[0] and "BloodImage_00343.xml" in bad[1]
    assert all("zero-area" in p for _, p in issues.items)
    assert len(recs) == 364 and sum(len(r.classes) for r in recs) == 4888 - 2
    assert all((r.boxes[:, 2:] > 0).all() for r in recs)


def test_unreadable_and_truncated_images_are_reported_once_and_skipped(shapes):
    from tritnet.yolo.loader import ImageStore, TrainSet
    images = shapes.parent / "images"
    (images / "train_002.png").write_bytes(b"not an image")
    whole = (images / "train_003.png").read_bytes()
    (images / "train_003.png").write_bytes(whole[: len(whole) // 2])
    issues = Issues(warn=False)
    recs = open_data(shapes).records("train", issues)
    store = ImageStore([r.image for r in recs], cache_mb=100, workers=0, issues=issues)
    assert store.cached and store.bad == {2, 3}
    assert [(w.rsplit("/", 1)[-1], p) for w, p in issues.items] == \
        [("train_002.png", "not an image Pillow can read"),
         ("train_003.png", "cannot read the image (image file is truncated)")]
    # decoded on demand (no cache): a draw of a bad image takes the next good one and names the bad ones
    lazy = ImageStore([r.image for r in recs], cache_mb=0, workers=0)
    aug = dict(jitter=0, hue=0, saturation=1, exposure=1, flip=False)
    x, truth, skipped = TrainSet(recs, lazy, aug, 30)[(2, 32, 32, 0)]
    assert [p.rsplit("/", 1)[-1] for p, _ in skipped] == ["train_002.png", "train_003.png"]
    assert sorted(truth[:2, 4].tolist()) == sorted(recs[4].classes.tolist()) and x.shape == (3, 32, 32)
