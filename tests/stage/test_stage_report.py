"""The staged report's collapse flag: a stage whose main score ends below a quarter of the score it started
from (the row above it) is marked in report.md, report.csv and the stage's end-of-stage line."""
from types import SimpleNamespace

from tritnet.stage.report import format_markdown, report_rows
from tritnet.stage.runner import _stage_summary
from tritnet.stage.state import State


def _backend():
    layers = SimpleNamespace(ids=[0, 1, 2, 3], params=[10, 20, 30, 40])
    return SimpleNamespace(layers=layers, metric_names=(("map", "mAP@0.5"), ("avg_iou", "avg IoU")),
                           extra_metrics=(), budget_key="max_batches", budget=lambda train: train["max_batches"])


def _state(tmp_path, maps):
    state = State(tmp_path / "state.json")
    state.data["start"] = {"metrics": {"map": 40.0, "avg_iou": 50.0}}
    for name, m in maps.items():
        state.update(name, status="done", metrics={"map": m, "avg_iou": 30.0}, seconds=1.0)
    return state


def test_a_stage_below_a_quarter_of_the_row_above_is_flagged(tmp_path):
    runs = [SimpleNamespace(name=n, ternary=t, train={"max_batches": 100}, start=0)
            for n, t in (("M1", [3]), ("M2", [2, 3]), ("M3", [0, 1, 2, 3]))]
    # M1: 40 -> 10.5 (above 10, a quarter of 40); M2: 10.5 -> 2.6 (below 2.625); M3: 2.6 -> 2.0 (not below 0.65)
    rows = report_rows(_backend(), runs, _state(tmp_path, {"M1": 10.5, "M2": 2.6, "M3": 2.0}))
    assert [r["collapsed"] for r in rows] == [False, False, True, False]
    md = format_markdown(rows, _backend(), "t")
    assert "| M2 **(collapsed)** | 2/4 |" in md and "| M1 | 1/4 |" in md
    assert "ended below a quarter of the mAP@0.5 it started from" in md


def test_the_end_of_stage_line_warns_on_a_collapse():
    b = _backend()
    ok = _stage_summary("M1", b, {"metrics": {"map": 30.0, "avg_iou": 41.5}}, {"map": 40.0})
    assert ok == "stage M1 done: mAP@0.5 30.00, avg IoU 41.50"
    bad = _stage_summary("M2", b, {"metrics": {"map": 0.0, "avg_iou": 3.0}}, {"map": 30.0})
    assert bad.splitlines()[1] == ("WARNING: stage M2 collapsed: mAP@0.5 0.00 against 30.00 before it; "
                                   "try a lower learning rate or a longer warm-up")
