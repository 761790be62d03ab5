"""What AlexeyAB's ``detector test`` does after the network ran, where it differs from pjreddie's (numpy only).
The code lives in the runtime (``tritnet_rt.detect.alexeyab``, which packed files use too); this module feeds it
a ``DarknetNet``'s layers.

pjreddie's pipeline is ``tritnet_rt.detect``; AlexeyAB's (src/detector.c ``test_detector``, yolo_layer.c, box.c,
image.c) reuses its pieces and differs in four places:

* **Input.** ``resize_image`` to the network size (stretching) unless ``-letter_box`` or ``[net] letter_box=1``;
  then ``correct_yolo_boxes`` with letter=0 leaves the relative boxes as they are.
* **Boxes.** ``get_yolo_box`` with ``new_coords=1`` takes w = (2·t)²·anchor_w/net_w from the logistic outputs
  (the code writes ``x*x*4``); without it, exp as pjreddie. ``correct_yolo_boxes`` scales w by ``1/ratio``.
* **NMS.** The ``nms_kind`` of the last ``[yolo]`` layer: ``default`` is pjreddie's ``do_nms_sort``; ``greedynms``
  and ``diounms`` run ``diounms_sort``, which suppresses when ``box_diou`` (IoU − (d²/c²)^0.6) or ``box_diounms``
  (exponent ``beta_nms``) passes the threshold, in float32 as box.c computes them.
* **Print order** (``draw_detections_v3``): the candidates with some class above the threshold, sorted by their
  left edge x − w/2 (glibc's stable qsort), each with its best class (the first strict maximum) first, then its
  other classes above the threshold in index order.
"""
from __future__ import annotations

from typing import Sequence

from tritnet_rt.detect import Candidates, Head, yolo_candidates
from tritnet_rt.detect.alexeyab import (box_diou, correct_yolo_boxes, diounms_sort, format_detection_v3,  # noqa: F401
                                        get_network_boxes_alexeyab, nms_alexeyab, select_detections_v3)

__all__ = ["yolo_candidates_alexeyab", "correct_yolo_boxes", "get_network_boxes", "box_diou", "diounms_sort",
           "nms_alexeyab", "select_detections_v3", "format_detection_v3"]


def yolo_candidates_alexeyab(head: Head, net_w: int, net_h: int, thresh: float, new_coords: bool) -> Candidates:
    """``get_yolo_detections`` before the box correction; with ``new_coords`` the w, h entries are logistic
    outputs and w = t·t·4·anchor_w/net_w, in float32 left to right as the C expression."""
    head.new_coords = bool(new_coords)
    return yolo_candidates(head, net_w, net_h, thresh)


def get_network_boxes(heads: Sequence[tuple], im_w: int, im_h: int, net_w: int, net_h: int, thresh: float,
                      letter: bool) -> Candidates:
    """Candidates of every ``[yolo]`` head, in net order: ``heads`` is ``[(LayerInfo, output)]``."""
    for info, _ in heads:
        if info.type != "yolo":
            raise ValueError(f"layer {info.index}: AlexeyAB's [{info.type}] boxes are not decoded by tritnet")
    return get_network_boxes_alexeyab([Head.from_layer(info, output) for info, output in heads], im_w, im_h,
                                      net_w, net_h, thresh, letter)
