"""Text as darknet prints it: AlexeyAB's ``detector map`` summary and pjreddie's ``detector recall`` lines."""
from __future__ import annotations

from ..eval.detection import MapResult

__all__ = ["format_map", "format_recall_line"]


def format_map(r: MapResult, coco: dict | None = None) -> str:
    lines = [f" detections_count = {r.detections}, unique_truth_count = {r.truths}  "]
    for i, c in enumerate(r.classes):
        lines.append(f"class_id = {i}, name = {c.name}, ap = {100 * c.ap11:.2f}% (VOC2007) / {100 * c.ap:.2f}% (AUC)"
                     f"   \t (TP = {c.tp}, FP = {c.fp}, truths = {c.truths}) ")
    lines += ["",
              f" for conf_thresh = {r.conf_thresh:1.2f}, precision = {r.precision:1.2f}, recall = {r.recall:1.2f}, "
              f"F1-score = {r.f1:1.2f} ",
              f" for conf_thresh = {r.conf_thresh:0.2f}, TP = {r.tp}, FP = {r.fp}, FN = {r.fn}, "
              f"average IoU = {100 * r.avg_iou:2.2f} % ",
              "",
              f" IoU threshold = {100 * r.iou_thresh:2.0f} %, used 11 Recall-points (PascalVOC 2007) ",
              f" mean average precision (mAP@{r.iou_thresh:0.2f}) = {r.map11:f}, or {100 * r.map11:2.2f} % ",
              f" IoU threshold = {100 * r.iou_thresh:2.0f} %, used Area-Under-Curve for each unique Recall ",
              f" mean average precision (mAP@{r.iou_thresh:0.2f}) = {r.map:f}, or {100 * r.map:2.2f} % "]
    if coco:
        lines.append(f" COCO mAP@[.50:.95] = {coco['AP']:.4f}, AP50 = {coco['AP50']:.4f}, AP75 = {coco['AP75']:.4f}")
    return "\n".join(lines)


def format_recall_line(d: dict) -> str:
    return (f"{d['image']:5d} {d['correct']:5d} {d['total']:5d}\tRPs/Img: {d['rps_per_image']:.2f}\t"
            f"IOU: {d['iou']:.2f}%\tRecall:{d['recall']:.2f}%")
