"""YOLO detector training and evaluation from darknet cfgs ([region] v2 and [yolo] v3 heads), float or with
``ternary=1`` layers, the way darknet users work: a ``.data`` file, a cfg, optional initial weights::

    from tritnet import yolo
    r = yolo.train_detector(yolo.DetectorTrainConfig("bccd.data", "ttt5_bccd.cfg", "ttt5_pre_141_conv7.weights"))
    m = yolo.map_detector("bccd.data", "ttt5_bccd.cfg", r["final"])["result"]     # .map11, .classes, .avg_iou
    yolo.valid_detector("bccd.data", "ttt5_bccd.cfg", r["final"], "results")     # comp4 files + COCO json
    yolo.voc_label(["VOCdevkit/VOC2007"], "out", ["trainval"], ["test"])          # darknet's voc_label.py

Files, one job each: ``labels``/``voc``/``coco``/``data`` read ground truth; ``augment``/``loader`` feed
images; ``region_loss``/``yolo_loss``/``loss`` are darknet's losses; ``schedule`` its learning rate and SGD;
``train`` the loop; ``evaluate``/``validate``/``report`` the scores (numbers in ``tritnet.eval.detection``).
"""
from ..darknet.cfgedit import set_classes, set_schedule
from .coco import coco_evaluate, coco_records
from .data import DetectionData, open_data
from .labels import DataWarning, Issues, Record, label_path, read_yolo_labels
from .region_loss import RegionSettings, region_loss
from .schedule import learning_rate, make_optimizer
from .train import DetectorTrainConfig, launch, train_detector
from .validate import load_detector, map_detector, recall_detector, valid_detector
from .voc import parse_voc_xml, voc_label, voc_set_records
from .yolo_loss import YoloSettings, yolo_loss

__all__ = ["set_classes", "set_schedule", "coco_evaluate", "coco_records", "DetectionData", "open_data",
           "DataWarning", "Issues", "Record", "label_path", "read_yolo_labels", "RegionSettings", "region_loss",
           "learning_rate", "make_optimizer", "DetectorTrainConfig", "launch", "train_detector", "load_detector",
           "map_detector", "recall_detector", "valid_detector", "parse_voc_xml", "voc_label", "voc_set_records",
           "YoloSettings", "yolo_loss"]
