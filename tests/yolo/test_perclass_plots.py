"""The per-class table, confusion matrix, PR/F1 curves and the training chart, on a case worked by hand:

    image 0: truths A (class a, 0.5 0.5 0.2 0.2) and B (class b, 0.2 0.2 0.2 0.2)
             d1 on A exactly, a .9 | d2 on B shifted by 0.04 (IoU .032/.048 = 2/3), b .8 | d3 far away, a .375 (exact in float32)
    image 1: truth C (class a), no detection

class a: 2 truths, ranked d1 (hit), d3 (miss): precision 1, .5 at recall .5, .5: AP .5 at every IoU.
class b: 1 truth, d2 hits while the threshold is below 2/3 (.50 .55 .60 .65): AP50 1, AP50-95 4/10.
darknet's counts at .25: TP d1, d2; FP d3; 3 truths: P = R = 2/3."""
import numpy as np
import pytest

from tritnet.eval.detection import evaluate_map
from tritnet.eval.perclass import (class_table, confusion_figure, confusion_matrix, f1_figure, format_table,
                                   pr_figure, rank_detections)

NAMES = ["a", "b"]
DETS = [(np.array([[.5, .5, .2, .2], [.24, .2, .2, .2], [.8, .8, .1, .1]], np.float32),
         np.array([[.9, 0], [0, .8], [.375, 0]], np.float32)),
        (np.zeros((0, 4), np.float32), np.zeros((0, 2), np.float32))]
TRUTHS = [(np.array([[.5, .5, .2, .2], [.2, .2, .2, .2]], np.float32), np.array([0, 1]), None),
          (np.array([[.5, .5, .4, .4]], np.float32), np.array([0]), None)]


def _table():
    result = evaluate_map(DETS, TRUTHS, NAMES, 0.5, 0.25)
    ranked = rank_detections(DETS, TRUTHS, 2)
    return result, ranked, class_table(ranked, result, len(DETS))


def test_per_class_table_by_hand():
    result, ranked, table = _table()
    got = {r.name: (r.images, r.instances, r.precision, r.recall, r.ap50, r.ap50_95) for r in table}
    assert got["a"] == pytest.approx((2, 2, .5, .5, .5, .5))
    assert got["b"] == pytest.approx((1, 1, 1.0, 1.0, 1.0, .4))
    assert got["all"] == pytest.approx((2, 3, 2 / 3, 2 / 3, .75, .45))
    assert [r.name for r in table] == ["all", "a", "b"]
    # AP50 is the area under the curve of darknet's map, class by class
    assert [r.ap50 for r in table[1:]] == pytest.approx([c.ap for c in result.classes])
    text = format_table(table).splitlines()
    assert text[0].split() == ["class", "images", "instances", "P", "R", "AP50", "AP50-95"]
    assert text[1].split() == ["all", "2", "3", "66.7%", "66.7%", "75.0%", "45.0%"]
    assert text[3].split() == ["b", "1", "1", "100.0%", "100.0%", "100.0%", "40.0%"]
    assert table[2].to_dict(percent=True)["ap50_95"] == pytest.approx(40.0)


def test_confusion_matrix_by_hand():
    m = confusion_matrix(DETS, TRUTHS, 2, 0.25, 0.5)
    # rows predicted a, b, background; columns true a, b, background
    assert m.tolist() == [[1, 0, 1], [0, 1, 0], [1, 0, 0]]
    # at a .5 confidence threshold d3 (.3) is no longer a false alarm
    assert confusion_matrix(DETS, TRUTHS, 2, 0.5, 0.5).tolist() == [[1, 0, 0], [0, 1, 0], [1, 0, 0]]
    # at IoU .7 d2 no longer pairs with B: a false alarm of b and a missed b
    assert confusion_matrix(DETS, TRUTHS, 2, 0.25, 0.7).tolist() == [[1, 0, 1], [0, 0, 1], [1, 1, 0]]


def _texts(fig):
    fig.canvas.draw()
    return [t.get_text() for ax in fig.axes for t in ax.texts] + \
        [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


def test_figures_carry_the_numbers():
    _, ranked, _ = _table()
    cm = confusion_figure(confusion_matrix(DETS, TRUTHS, 2), NAMES)
    ax = cm.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("true class", "predicted class")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "background"]
    assert _texts(cm)[:9] == ["1", "0", "1", "0", "1", "0", "1", "0", "0"]
    assert ax.get_title() == "confusion matrix (confidence > 0.25, IoU > 0.5)"

    pr = pr_figure(ranked, NAMES)
    ax = pr.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("recall", "precision")
    assert _texts(pr) == ["a 50.0%", "b 100.0%"]
    assert ax.get_title() == "precision-recall (IoU > 0.5): mAP@0.5 75.0%"
    # class a's curve: (0, 1) then the two ranked points
    x, y = ax.lines[0].get_data()
    assert x.tolist() == [0, .5, .5] and y.tolist() == [1, 1, .5]

    f1 = f1_figure(ranked, NAMES)
    ax = f1.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("confidence threshold", "F1")
    # a: F1 .5 below .375 (both), 2/3 from .375 to .9; b: 1 below .8: the mean peaks at 5/6 from the
    # first grid point above .375
    assert ax.get_title() == "F1-confidence (IoU > 0.5): best F1 0.83 at confidence 0.38"
    assert _texts(f1)[-1] == "all classes 0.83 at 0.38"


def test_training_chart_is_linear_with_the_current_values_and_time_left():
    from tritnet.yolo.chart import chart_figure
    rows = [{"iteration": str(i), "loss": str(3.0 - i / 50), "avg_loss": str(3.5 - i / 50), "seconds": "1.0",
             "map": ""} for i in range(1, 51)]
    rows[24]["map"], rows[49]["map"] = "30.0", "42.0"                       # percent, as results.csv holds it
    rows[-1]["loss"], rows[-1]["avg_loss"] = "2.0", "2.5"
    fig = chart_figure(rows, "tiny (7 ternary layers, twn)", max_batches=100)
    fig.canvas.draw()
    ax, ax2 = fig.axes
    assert ax.get_yscale() == "linear" and ax2.get_yscale() == "linear"
    assert ax.get_title() == ("tiny (7 ternary layers, twn)\niteration 50/100, loss 2.000 (avg 2.500), "
                              "mAP@0.5 42.0% (best 42.0%), 50s left")      # 50 iterations left at 1 s each
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("iteration", "training loss")
    assert ax2.get_ylabel() == "mAP@0.5 on the valid set (%)"
    labels = [t.get_text() for a in (ax, ax2) for t in a.get_yticklabels() + a.get_xticklabels()]
    assert labels and not any("10^" in s or "\\times" in s or "×" in s for s in labels), labels
    assert ax2.get_ylim() == (0.0, 50.0)                                     # 1.15·42 rounded up to tens
    assert ax2.lines[0].get_ydata().tolist() == [30.0, 42.0]
    assert "42.0%" in [t.get_text() for t in ax2.texts]
