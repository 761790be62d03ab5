"""Pascal VOC (read directly, and darknet's voc_label conversion) and COCO JSON (read, results, pycocotools)."""
import json

import numpy as np
import pytest
from PIL import Image

from tritnet.yolo import Issues, open_data, parse_voc_xml, voc_label, voc_set_records
from tritnet.yolo.coco import coco_evaluate, coco_ground_truth, coco_records, coco_results, darknet_image_id
from tritnet_rt.detect import Candidates

from tests.yolo.detector_helpers import make_voc

@pytest.fixture
def voc(tmp_path):
    root = tmp_path / "VOC2007"
    make_voc(root, {"a": [("dog", 0, 11, 6, 31, 26), ("cat", 1, 50, 10, 90, 40)],
                    "b": [("cat", 0, 1, 1, 100, 50), ("dog", 0, 40, 20, 40, 30)],    # the dog has zero width
                    "c": [("cat", 0, 20, 10, 60, 40)]},
             {"trainval": ["a", "b"], "test": ["c", "a"]})
    return root


def test_voc_xml_uses_voc_labels_convert(voc):
    meta = parse_voc_xml(voc / "Annotations" / "a.xml")
    assert (meta["width"], meta["height"]) == (100, 50)
    recs = voc_set_records(voc / "ImageSets" / "Main" / "trainval.txt", ["dog", "cat"], Issues(warn=False))
    # voc_label.py: x = ((xmin + xmax)/2 - 1)/w, w = (xmax - xmin)/w
    np.testing.assert_allclose(recs[0].boxes[0], [(21 - 1) / 100, (16 - 1) / 50, 20 / 100, 20 / 50], rtol=1e-6)
    assert recs[0].classes.tolist() == [0, 1] and recs[0].difficult.tolist() == [False, True]
    assert recs[1].classes.tolist() == [1]                 # zero-width dog skipped


def test_voc_label_writes_darknet_tree_outside_the_voc_tree(voc, tmp_path):
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match=r"b.xml \(object 2, dog\): zero-area box"):
        r = voc_label([voc], out, ["trainval"], ["test"], names=["dog", "cat"], name="pets")
    assert (r["images"], r["boxes"], r["difficult_boxes"], r["skipped"]) == (4, 4, 2, 1)      # "a" is in both sets
    assert (out / "VOC2007" / "JPEGImages" / "a.jpg").is_symlink()
    assert (out / "VOC2007" / "labels" / "a.txt").read_text() == "0 0.200000 0.300000 0.200000 0.400000\n"
    assert (out / "VOC2007" / "labels_difficult" / "a.txt").read_text().startswith("1 ")
    # the written .data reads back as the same boxes as the XML read directly (difficult ones flagged)
    data = open_data(out / "pets.data")
    assert data.names == ["dog", "cat"]
    via_lists = data.records("valid", Issues(warn=False))
    direct = voc_set_records(voc / "ImageSets" / "Main" / "test.txt", ["dog", "cat"], Issues(warn=False))
    for a, b in zip(via_lists, direct):
        order_a, order_b = np.lexsort(a.boxes.T), np.lexsort(b.boxes.T)
        np.testing.assert_allclose(a.boxes[order_a], b.boxes[order_b], atol=1e-6)
        assert a.difficult[order_a].tolist() == b.difficult[order_b].tolist()
    assert len(data.records("train", Issues(warn=False))) == 2
    with pytest.raises(ValueError, match="must not be inside the VOC tree"):
        voc_label([voc], voc / "out")


def test_missing_annotation_or_image_is_reported_and_skipped(voc, tmp_path):
    (voc / "Annotations" / "c.xml").unlink()
    (voc / "JPEGImages" / "b.jpg").unlink()
    issues = Issues(warn=False)
    r = voc_label([voc], tmp_path / "out", ["trainval"], ["test"], names=["dog", "cat"], issues=issues)
    assert r["images"] == 2                                                # "a" in both sets; b and c skipped
    reported = {(str(p).rsplit("/", 1)[-1], why) for p, why in issues.items}
    assert {("c.xml", "annotation missing"), ("b.jpg", "image missing")} <= reported
    recs = voc_set_records(voc / "ImageSets" / "Main" / "test.txt", ["dog", "cat"], Issues(warn=False))
    assert [rec.image.rsplit("/", 1)[-1] for rec in recs] == ["a.jpg"]


def test_data_file_can_point_at_voc_imagesets_and_coco_json(voc, tmp_path):
    (tmp_path / "pets.names").write_text("dog\ncat\n")
    d = tmp_path / "voc.data"
    d.write_text(f"classes=2\nnames=pets.names\ntrain={voc}/ImageSets/Main/trainval.txt\n"
                 f"valid={voc}/ImageSets/Main/test.txt\n")
    recs = open_data(d).records("valid", Issues(warn=False))
    assert [len(r.classes) for r in recs] == [1, 2] and recs[1].difficult.tolist() == [False, True]


def coco_file(tmp_path):
    for name in ("x_1.jpg", "x_2.jpg"):
        Image.new("RGB", (100, 50)).save(tmp_path / name)
    js = {"images": [{"id": 11, "file_name": "x_1.jpg", "width": 100, "height": 50},
                     {"id": 12, "file_name": "x_2.jpg", "width": 100, "height": 50}],
          "categories": [{"id": 18, "name": "dog"}, {"id": 3, "name": "car"}],
          "annotations": [{"id": 1, "image_id": 11, "category_id": 18, "bbox": [10, 5, 20, 10], "iscrowd": 0},
                          {"id": 2, "image_id": 11, "category_id": 3, "bbox": [50, 20, 30, 20], "iscrowd": 1},
                          {"id": 3, "image_id": 12, "category_id": 3, "bbox": [0, 0, 0, 10], "iscrowd": 0}]}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(js))
    return path


def test_coco_json_reads_categories_in_id_order(tmp_path):
    issues = Issues(warn=False)
    recs, names = coco_records(coco_file(tmp_path), issues)
    assert names == ["car", "dog"]                             # sorted by category id (3, 18)
    assert recs[0].image_id == 11 and recs[0].classes.tolist() == [1, 0]
    np.testing.assert_allclose(recs[0].boxes[0], [0.2, 0.2, 0.2, 0.2])
    assert recs[0].difficult.tolist() == [False, True]        # the crowd region
    assert len(issues) == 1 and "annotation 3" in issues.items[0][0] and "zero-area" in issues.items[0][1]
    d = tmp_path / "c.data"
    d.write_text(f"train = {tmp_path / 'instances.json'}\nvalid = {tmp_path / 'instances.json'}\n")
    data = open_data(d)
    assert data.names == ["car", "dog"] and data.category_ids == [3, 18]


def test_coco_results_and_pycocotools_score_perfect_detections_1(tmp_path):
    recs, names = coco_records(coco_file(tmp_path), Issues(warn=False))
    dets = []
    for r in recs:
        keep = ~r.difficult
        prob = np.zeros((keep.sum(), 2), np.float32)
        prob[np.arange(keep.sum()), r.classes[keep]] = 0.9
        dets.append(Candidates(r.boxes[keep], np.full(keep.sum(), .9, np.float32), prob))
    sizes = [(100, 50)] * len(recs)
    results = coco_results(recs, dets, sizes, [3, 18])
    assert results[0] == {"image_id": 11, "category_id": 18, "bbox": [10.0, 5.0, 20.0, 10.0], "score": 0.9}
    gt = coco_ground_truth(recs, sizes, names, [3, 18])
    stats = coco_evaluate(gt, results)
    assert stats["AP"] == pytest.approx(1.0) and stats["AP50"] == pytest.approx(1.0)
    half = [dict(r, bbox=[r["bbox"][0] + r["bbox"][2] * 0.6, *r["bbox"][1:]]) for r in results]   # IoU 0.25
    assert coco_evaluate(gt, half)["AP50"] == pytest.approx(0.0)


def test_darknet_coco_image_id_rule():
    assert darknet_image_id("/x/COCO_val2014_000000000042.jpg") == 42
    assert darknet_image_id("/x/BloodImage_00338.jpg") == 338
    assert darknet_image_id("/x/img.jpg") is None


def test_coco_annotations_of_categories_left_out_of_the_names_are_counted(tmp_path):
    issues = Issues(warn=False)
    recs, names = coco_records(coco_file(tmp_path), issues, names=["dog"])
    assert names == ["dog"] and recs[0].classes.tolist() == [0]
    unknown = [item for item in issues.items if "not in the names list" in item[1]]
    assert unknown == [(str(tmp_path / "instances.json"),
                        f"2 objects of classes not in the names list (car: 2, first in {tmp_path / 'instances.json'})")]
