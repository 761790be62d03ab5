"""mAP and darknet's threshold counts against hand-built cases and an independent, textbook VOC devkit
computation."""
import numpy as np
import pytest

from tritnet.eval.detection import average_precision, evaluate_map

NAMES = ["a", "b"]


def det(*rows):
    """rows of (x, y, w, h, class, prob) → (boxes, prob matrix)."""
    boxes = np.array([r[:4] for r in rows], np.float32).reshape(-1, 4)
    prob = np.zeros((len(rows), 2), np.float32)
    for k, r in enumerate(rows):
        prob[k, r[4]] = r[5]
    return boxes, prob


def truth(*rows, difficult=None):
    return (np.array([r[:4] for r in rows], np.float32).reshape(-1, 4), np.array([r[4] for r in rows]),
            None if difficult is None else np.array(difficult, bool))


def voc_devkit_ap(scores, hits, npos, use_07):
    """VOC devkit's voc_eval/voc_ap, written out as in the devkit (loops, not the code under test)."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    tp = fp = 0
    rec, prec = [], []
    for i in order:
        tp, fp = tp + hits[i], fp + (not hits[i])
        rec.append(tp / npos)
        prec.append(tp / (tp + fp))
    if use_07:
        ap = 0.0
        for t in [k / 10 for k in range(11)]:
            ps = [p for r, p in zip(rec, prec) if r >= t]
            ap += (max(ps) if ps else 0.0) / 11
        return ap
    mrec, mpre = [0.0] + rec + [1.0], [0.0] + prec + [0.0]
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    return sum((mrec[i + 1] - mrec[i]) * mpre[i + 1] for i in range(len(mrec) - 1) if mrec[i + 1] != mrec[i])


def test_perfect_detections_score_one():
    t = [truth((.3, .3, .2, .2, 0), (.7, .7, .2, .3, 1)), truth((.5, .5, .4, .4, 1))]
    d = [det((.3, .3, .2, .2, 0, .9), (.7, .7, .2, .3, 1, .8)), det((.5, .5, .4, .4, 1, .95))]
    r = evaluate_map(d, t, NAMES)
    assert (r.map11, r.map, r.map101) == (1.0, 1.0, 1.0)
    assert (r.tp, r.fp, r.fn, r.precision, r.recall, r.f1) == (3, 0, 0, 1.0, 1.0, 1.0)
    assert r.avg_iou == pytest.approx(1.0) and r.truths == 3 and r.detections == 3


def test_duplicates_are_false_positives():
    # two truths of class a; detections ranked TP (.9), duplicate (.8), TP (.7): precision 1, 1/2, 2/3 at
    # recall 1/2, 1/2, 1. AUC = .5·1 + .5·(2/3) = 5/6; 11-point = (6·1 + 5·(2/3))/11 = 28/33.
    t = [truth((.25, .25, .2, .2, 0), (.75, .75, .2, .2, 0))]
    d = [det((.25, .25, .2, .2, 0, .9), (.26, .25, .2, .2, 0, .8), (.75, .75, .2, .2, 0, .7))]
    r = evaluate_map(d, t, NAMES)
    a = r.classes[0]
    assert a.ap == pytest.approx(5 / 6) and a.ap11 == pytest.approx(28 / 33)
    assert r.classes[1].ap == 0 and r.map == pytest.approx(5 / 12)        # class b has no truths: AP 0
    # at conf .25 in output order: TP, FP (its truth already taken), TP; darknet's average IoU divides the
    # TPs' IoU sum by TP + FP
    assert (r.tp, r.fp, r.fn) == (2, 1, 0) and r.precision == pytest.approx(2 / 3) and r.f1 == pytest.approx(.8)
    assert r.avg_iou == pytest.approx(2 / 3)
    assert (a.tp, a.fp) == (2, 1)


def test_difficult_truths_are_ignored_in_voc_mode():
    t_voc = truth((.25, .25, .2, .2, 0), (.75, .75, .2, .2, 0), difficult=[False, True])
    d = [det((.75, .75, .2, .2, 0, .95), (.25, .25, .2, .2, 0, .9))]      # the best-ranked one hits the difficult
    r = evaluate_map(d, [t_voc], NAMES)
    assert r.classes[0].ap == 1.0 and r.classes[0].truths == 1 and (r.tp, r.fp, r.fn) == (1, 0, 0)
    plain = evaluate_map(d, [truth((.25, .25, .2, .2, 0), (.75, .75, .2, .2, 0))], NAMES)
    assert plain.classes[0].truths == 2 and plain.classes[0].ap == 1.0
    missed = evaluate_map([det((.25, .25, .2, .2, 0, .9))], [t_voc], NAMES)       # missing a difficult: no FN
    assert missed.fn == 0 and missed.classes[0].ap == 1.0


def test_wrong_class_and_low_iou_are_false_positives():
    t = [truth((.5, .5, .4, .4, 0))]
    r = evaluate_map([det((.5, .5, .4, .4, 1, .9), (.7, .5, .4, .4, 0, .8))], t, NAMES)   # IoU .2/.6 = 1/3
    assert (r.tp, r.fp, r.fn) == (0, 2, 1) and r.classes[0].ap == 0 and r.avg_iou == 0
    below = evaluate_map([det((.5, .5, .4, .4, 0, .2))], t, NAMES, conf_thresh=.25)
    assert (below.tp, below.fp) == (0, 0) and below.classes[0].ap == 1.0     # ranked, but not counted at .25


def test_ap_agrees_with_the_voc_devkit_on_random_rankings():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n, npos = int(rng.integers(1, 30)), int(rng.integers(1, 20))
        hits = list(rng.random(n) < .5)
        hits = [h for h, _ in zip(hits, range(n))]
        while sum(hits) > npos:
            hits[hits.index(True)] = False
        scores = list(rng.random(n))
        order = np.argsort(-np.asarray(scores), kind="stable")
        h = np.asarray(hits)[order]
        ctp = np.cumsum(h)
        rec, prec = ctp / npos, ctp / np.arange(1, n + 1)
        assert average_precision(rec, prec, 0) == pytest.approx(voc_devkit_ap(scores, hits, npos, False), abs=1e-12)
        assert average_precision(rec, prec, 11) == pytest.approx(voc_devkit_ap(scores, hits, npos, True), abs=1e-12)


def test_recall_report_by_hand():
    """darknet's recall: proposals are boxes with objectness > thresh; a truth is found when the best IoU of
    any proposal exceeds .5; the lines are running totals."""
    from types import SimpleNamespace

    from tritnet.yolo.evaluate import Detections, score_recall
    from tritnet_rt.detect import Candidates
    # image 1: truths A (.2,.2,.2,.2) and B (.7,.7,.2,.2). Proposals: A shifted by half its width in x
    # (IoU = .1·.2 / (2·.04 − .02) = 1/3), B exactly but at objectness .0005 (below thresh: not a proposal),
    # and A exactly (IoU 1).
    c1 = Candidates(np.array([[.3, .2, .2, .2], [.7, .7, .2, .2], [.2, .2, .2, .2]], np.float32),
                    np.array([.9, .0005, .6], np.float32), np.zeros((3, 2), np.float32))
    # image 2: one truth C (.5,.5,.4,.4) and one proposal (.5,.5,.4,.18): IoU = .072/.16 = .45, not > .5
    c2 = Candidates(np.array([[.5, .5, .4, .18]], np.float32), np.array([.5], np.float32), np.zeros((1, 2), np.float32))
    recs = [SimpleNamespace(boxes=np.array([[.2, .2, .2, .2], [.7, .7, .2, .2]], np.float32), difficult=[False, False]),
            SimpleNamespace(boxes=np.array([[.5, .5, .4, .4]], np.float32), difficult=[False])]
    r = score_recall(Detections([c1, c2], [(100, 100)] * 2, 0.0, 0.0), recs, thresh=.001)
    first, second = r["lines"]
    assert (first["correct"], first["total"], first["rps_per_image"]) == (1, 2, 2.0)
    assert first["iou"] == pytest.approx(100 * (1 + 0) / 2)                  # B has no proposal: IoU 0
    assert (second["correct"], second["total"], second["rps_per_image"]) == (1, 3, 1.5)
    assert second["iou"] == pytest.approx(100 * (1 + 0 + .45) / 3, abs=1e-4)
    assert r["recall"] == pytest.approx(100 / 3) and r["proposals"] == 3
