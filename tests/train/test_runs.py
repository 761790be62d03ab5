"""The run-folder module both trainers use (tritnet.train.runs): args.yaml through PyYAML, the CSV log that
appends, the smoothed min-loss tracker, atomic figures, and the classifier's curves read back as texts."""
import os

import pytest

from tritnet.train.runs import CsvLog, MinLoss, curves_figure, new_run_dir, read_args, save_figure, write_args


def test_args_yaml_reads_back_none_as_null_and_paths_as_text(tmp_path):
    path = write_args(tmp_path, {"weights": None, "epochs": 3, "data": tmp_path / "d", "lr": 0.01, "layers": ("a", 1)})
    text = path.read_text()
    assert "weights: null" in text and f"data: {tmp_path / 'd'}" in text
    assert read_args(path) == {"weights": None, "epochs": 3, "data": str(tmp_path / "d"), "lr": 0.01,
                               "layers": ["a", 1]}
    assert [p.name for p in tmp_path.iterdir()] == ["args.yaml"]          # no temporary file left


def test_csv_log_appends_without_rewriting_and_truncates_on_resume(tmp_path):
    log = CsvLog(tmp_path / "results.csv", ["epoch", "loss"])
    log.append({"epoch": 1, "loss": "0.5"})
    before = log.path.read_bytes()
    inode = os.stat(log.path).st_ino
    log.extend([{"epoch": 2, "loss": "0.4"}, {"epoch": 3, "loss": "0.3", "ignored": "x"}])
    after = log.path.read_bytes()
    assert after.startswith(before) and os.stat(log.path).st_ino == inode        # appended in place
    assert after.decode() == "epoch,loss\r\n1,0.5\r\n2,0.4\r\n3,0.3\r\n"
    log.truncate_after(2)
    assert [r["epoch"] for r in log.rows()] == ["1", "2"]
    log.append({"epoch": 3, "loss": "0.25"})
    assert [(r["epoch"], r["loss"]) for r in log.rows()] == [("1", "0.5"), ("2", "0.4"), ("3", "0.25")]


def test_csv_log_with_an_older_header_is_rewritten_once_keeping_its_rows(tmp_path):
    (tmp_path / "log.csv").write_text("epoch,loss\n1,0.5\n")
    log = CsvLog(tmp_path / "log.csv", ["epoch", "loss", "lr"])
    log.append({"epoch": 2, "loss": "0.4", "lr": "0.1"})
    assert log.rows() == [{"epoch": "1", "loss": "0.5", "lr": ""}, {"epoch": "2", "loss": "0.4", "lr": "0.1"}]


def test_min_loss_tracker_is_darknets_running_average():
    m = MinLoss()
    assert m.update(10.0) == 10.0                         # starts at the first loss
    assert m.update(0.0) == pytest.approx(9.0)            # .9·10 + .1·0
    assert not m.improved(eligible=False) and m.min == 1e10
    assert m.improved() and m.min == pytest.approx(9.0)
    m.update(100.0)                                       # .9·9 + .1·100 = 18.1
    assert m.avg == pytest.approx(18.1) and not m.improved() and m.min == pytest.approx(9.0)
    assert m.state() == {"avg_loss": pytest.approx(18.1), "min_avg_loss": pytest.approx(9.0)}
    r = MinLoss(**{"avg": 2.0, "min": 1.5})               # a resumed run
    r.update(1.0)
    assert r.avg == pytest.approx(1.9) and not r.improved()


def test_new_run_dir_numbers_and_never_reuses(tmp_path):
    assert [new_run_dir(tmp_path, "train").name for _ in range(3)] == ["train", "train2", "train3"]
    assert new_run_dir(tmp_path, "train", exist_ok=True).name == "train"


def test_classifier_curves_tick_whole_epochs_and_name_the_validation_set(tmp_path):
    rows = [{"epoch": str(e), "train_loss": str(2.0 / e), "valid_loss": str(2.2 / e), "top1": str(50 + 10 * e),
             "top5": str(80 + 5 * e)} for e in range(1, 6)]
    fig = curves_figure(rows, "resnet20 twn")
    fig.canvas.draw()
    loss_ax, acc_ax = fig.axes
    for ax in (loss_ax, acc_ax):
        ticks = [float(t.get_text().replace("\u2212", "-")) for t in ax.get_xticklabels() if t.get_text()]
        assert ticks and all(t.is_integer() for t in ticks), ticks
        assert ax.get_xlabel() == "epoch"
    assert [t.get_text() for t in acc_ax.get_legend().get_texts()] == ["top-1 (validation)", "top-5 (validation)"]
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == ["train", "validation"]
    assert acc_ax.get_ylabel() == "validation accuracy (%)"
    assert fig._suptitle.get_text() == "resnet20 twn  epoch 5: validation top-1 100.00%"
    path = save_figure(fig, tmp_path / "curves.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and [p.name for p in tmp_path.iterdir()] == ["curves.png"]
