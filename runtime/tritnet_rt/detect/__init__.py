"""Detection post-processing as darknet does it, numpy only: letterbox input, region/yolo decoding,
thresholds, NMS, the reported list, and drawing.

    from tritnet_rt import detect
    x = detect.letterbox(detect.load_image("dog.jpg"), 416, 416)          # darknet's network input
    cands = detect.get_network_boxes(heads, im_w, im_h, 416, 416, thresh=.24)
    dets = detect.select_detections(detect.do_nms_sort(cands, .45), .24, im_w, im_h, names)

AlexeyAB's detector test (resize or letterbox, new_coords, greedy/DIoU NMS, draw_detections_v3's order) is
``detect.alexeyab``.
"""
from .alexeyab import (box_diou, correct_yolo_boxes, diounms_sort, format_detection_v3, get_network_boxes_alexeyab,
                       nms_alexeyab, select_detections_v3)
from .boxes import Candidates, Head, correct_boxes, get_network_boxes, region_candidates, yolo_candidates
from .image import (MAX_PIXELS, check_pixels, from_uint8, letterbox, letterbox_size, load_image, read_rgb,
                    resize_image, rgb_from_bytes, rgb_from_pil)
from .nms import box_iou, do_nms_obj, do_nms_sort
from .results import Detection, format_detection, select_detections

__all__ = ["Candidates", "Head", "correct_boxes", "get_network_boxes", "region_candidates", "yolo_candidates",
           "from_uint8", "letterbox", "letterbox_size", "load_image", "resize_image", "box_iou", "do_nms_obj",
           "do_nms_sort", "Detection", "format_detection", "select_detections", "draw_detections",
           "box_diou", "correct_yolo_boxes", "diounms_sort", "format_detection_v3", "get_network_boxes_alexeyab",
           "nms_alexeyab", "select_detections_v3", "read_rgb", "rgb_from_bytes", "rgb_from_pil", "check_pixels",
           "MAX_PIXELS"]


def __getattr__(name):
    if name == "draw_detections":      # Pillow is imported only when drawing
        from .draw import draw_detections
        return draw_detections
    raise AttributeError(f"module 'tritnet_rt.detect' has no attribute {name!r}")
