"""Fair comparisons of staged and direct ternarization: the seeds' protocol (every stage as long as the direct
run), the equal split (the direct run's budget shared by the stages) and continue (shared as one schedule), the
teacher every stage learns from, and a stage boundary's batch-norm re-estimation, end to end on a tiny detector."""
import pytest
import yaml

from tritnet.darknet import parse_cfg
from tritnet.stage import PlanError, make_backend, plan_from_dict, run_plan
from tritnet.stage.resolve import protocol_budgets, resolve_stages
from tritnet.yolo import train as yolo_train

from stage_helpers import TINY_REGION_CFG, tiny_detector

QUIET = dict(echo=lambda s: None)


def test_protocol_budgets_by_hand():
    assert protocol_budgets("seeds", 8, 4) == [8, 8, 8, 8]
    assert protocol_budgets("equal", 8, 4) == [2, 2, 2, 2]
    assert protocol_budgets("equal", 10, 4) == [2, 2, 3, 3]            # the last (most ternary) stages take the rest
    assert sum(protocol_budgets("equal", 41000, 3)) == 41000
    with pytest.raises(PlanError, match="cannot be split"):
        protocol_budgets("equal", 3, 4)
    with pytest.raises(PlanError, match="did you mean 'equal'"):
        protocol_budgets("equl", 8, 4)


@pytest.fixture
def tiny_cfg(tmp_path):
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_REGION_CFG.replace("max_batches=3\npolicy=constant",
                                           "max_batches=100\npolicy=steps\nsteps=80,90\nscales=.1,.1"))
    return cfg


def _stage_budgets(out):
    stages = yaml.safe_load((out / "stages.yaml").read_text())["stages"]
    return [(s["train"].get("max_batches", s["train"].get("epochs")), s["train"].get("steps")) for s in stages]


def test_darknet_budgets_under_each_protocol(tiny_cfg, tmp_path):
    plan = plan_from_dict({"name": "t", "model": str(tiny_cfg), "chain": "last",
                           "stages": [{"name": f"M{k}", "layers": f} for k, f in enumerate([0.25, 0.5, 0.75, 1.0])]})
    run_plan(plan, tmp_path / "seeds", dry_run=True, protocol="seeds", **QUIET)
    # the cfg's own 100 iterations are the direct run's budget: every stage trains 100, steps where they were
    assert _stage_budgets(tmp_path / "seeds") == [(100, [80, 90])] * 4
    run_plan(plan, tmp_path / "equal", dry_run=True, protocol="equal", budget=120, **QUIET)
    # 120 shared: 30 a stage, the cfg's steps (at 80 and 90 of 100) moved in proportion: 24, 27
    assert _stage_budgets(tmp_path / "equal") == [(30, [24, 27])] * 4
    assert parse_cfg(tmp_path / "equal" / "M3" / "t_M3.cfg").net.param("max_batches") == 30
    for protocol in ("seeds", "equal"):                  # the direct run is the budget either way
        run_plan(plan, tmp_path / f"direct-{protocol}", dry_run=True, direct=True, protocol=protocol, budget=120,
                 **QUIET)
        assert _stage_budgets(tmp_path / f"direct-{protocol}") == [(120, [96, 108])]
    run_plan(plan, tmp_path / "plain", dry_run=True, direct=True, **QUIET)      # no protocol: the sum, as before
    assert _stage_budgets(tmp_path / "plain") == [(400, [320, 360])]
    with pytest.raises(PlanError, match="--budget"):
        run_plan(plan, tmp_path / "x", dry_run=True, budget=50, **QUIET)


def test_classifier_budgets_under_each_protocol(tmp_path):
    plan = plan_from_dict({"name": "c", "model": "resnet20", "train": {"epochs": 4, "warmup": 0.1},
                           "stages": [{"name": "A", "layers": [19]}, {"name": "B", "layers": "all"}]})
    run_plan(plan, tmp_path / "seeds", dry_run=True, protocol="seeds", **QUIET)
    assert [b for b, _ in _stage_budgets(tmp_path / "seeds")] == [4, 4]
    run_plan(plan, tmp_path / "equal", dry_run=True, protocol="equal", **QUIET)
    assert [b for b, _ in _stage_budgets(tmp_path / "equal")] == [2, 2]
    # every stage restarts its schedule with its warm-up (a fraction of the stage)
    stages = yaml.safe_load((tmp_path / "equal" / "stages.yaml").read_text())["stages"]
    assert [s["train"]["warmup"] for s in stages] == [0.1, 0.1]


def test_every_stage_learns_from_the_float_start(tiny_cfg, tmp_path):
    d = {"name": "t", "model": str(tiny_cfg), "weights": "float.weights", "train": {"distill": True},
         "stages": [{"name": "A", "layers": [4]}, {"name": "B", "add": [0, 2]}]}
    plan = plan_from_dict(d)
    runs = resolve_stages(plan, make_backend(plan))
    assert [r.train["teacher"] for r in runs] == ["float.weights", "float.weights"]
    assert [r.train["bn_recalibrate"] for r in runs] == [20, 20]          # darknet stages re-estimate BN
    given = plan_from_dict({**d, "train": {"distill": True, "teacher": "big.weights"}})
    assert [r.train["teacher"] for r in resolve_stages(given, make_backend(given))] == ["big.weights"] * 2
    with pytest.raises(PlanError, match="teacher is the float start"):
        bare = plan_from_dict({**d, "weights": None})
        resolve_stages(bare, make_backend(bare))
    cls = plan_from_dict({"name": "c", "model": "resnet20", "weights": "pre", "train": {"distill": True},
                          "stages": [{"name": "A", "layers": [19]}, {"name": "B", "layers": "all"}]})
    assert [r.train["teacher"] for r in resolve_stages(cls, make_backend(cls))] == ["pre", "pre"]


def test_staged_run_with_transfer_and_equal_budgets(tmp_path, monkeypatch):
    data, cfg, start = tiny_detector(tmp_path)
    plan = plan_from_dict({"name": "tiny", "model": str(cfg), "data": str(data), "weights": str(start),
                           "chain": "last", "train": {"cache_mb": 16, "distill": True},
                           "stages": [{"name": "A", "layers": [4]}, {"name": "B", "add": [0, 2]}]})
    configs, recalibrated = [], []
    real_train, real_recal = yolo_train.train_detector, yolo_train.recalibrate_batchnorm

    def train(c):
        configs.append(c)
        return real_train(c)

    def recal(net, loader, batches, device, only=None):
        recalibrated.append((batches, "all" if only is None else sorted(i for i, layer in enumerate(net.layers)
                                                                        if getattr(layer, "bn", None) is not None
                                                                        and any(layer.bn is m for m in only))))
        return real_recal(net, loader, batches, device, only)

    monkeypatch.setattr(yolo_train, "train_detector", train)
    monkeypatch.setattr(yolo_train, "recalibrate_batchnorm", recal)
    r = run_plan(plan, tmp_path / "out", protocol="equal", budget=4, workers=0, progress=False, **QUIET)
    assert [c.teacher for c in configs] == [str(start), str(start)]       # the float start, not stage A
    assert configs[1].weights == str(tmp_path / "out" / "A" / "tiny_A.weights")
    assert [c.distill and c.bn_recalibrate for c in configs] == [20, 20]
    # A: layer 4 is its first ternary layer; B: layer 0 (BN of layers 0, 2, 4 re-estimated; 5 has none); each
    # stage's final weights: every statistic re-estimated (bn_eval)
    assert recalibrated == [(20, [4]), (200, "all"), (20, [0, 2, 4]), (200, "all")]
    assert [row["budget"] for row in r["rows"][1:]] == [2, 2]
    assert "equal protocol (4 max_batches in all" in r["markdown"]


def test_the_continue_protocol_runs_the_stages_as_one_schedule(tmp_path, monkeypatch):
    """protocol continue: 9 iterations over three stages are the direct run's one schedule cut at 3 and 6: only
    the first stage warms up, the steps fall where the direct run has them, every stage but the first trains
    without -clear from the previous stage's end (with chain shadow its optimizer too), and each boundary still
    re-estimates the newly ternary layers' BN statistics."""
    import csv
    data, cfg, start = tiny_detector(tmp_path)
    train = {"max_batches": 9, "burn_in": 2, "policy": "steps", "steps": [5, 8], "scales": [.1, .1],
             "learning_rate": 0.01, "cache_mb": 16}
    d = {"name": "tiny", "model": str(cfg), "data": str(data), "weights": str(start), "train": train,
         "stages": [{"name": "A", "layers": [4], "chain": "shadow"}, {"name": "B", "add": [2], "chain": "last"},
                    {"name": "C", "layers": "all"}]}
    configs, recalibrated, restored = [], [], []
    real_train, real_recal, real_opt = yolo_train.train_detector, yolo_train.recalibrate_batchnorm, \
        yolo_train.make_optimizer

    def train_detector(c):
        configs.append(c)
        return real_train(c)

    def recal(net, loader, batches, device, only=None):
        recalibrated.append(batches)
        return real_recal(net, loader, batches, device, only)

    def make_optimizer(net):
        opt = real_opt(net)
        real_load = opt.load_state_dict
        opt.load_state_dict = lambda st: (restored.append(len(configs)), real_load(st))
        return opt

    monkeypatch.setattr(yolo_train, "train_detector", train_detector)
    monkeypatch.setattr(yolo_train, "recalibrate_batchnorm", recal)
    monkeypatch.setattr(yolo_train, "make_optimizer", make_optimizer)
    plan = plan_from_dict(d)
    r = run_plan(plan, tmp_path / "out", protocol="continue", workers=0, progress=False, **QUIET)
    out = tmp_path / "out"
    assert _stage_budgets(out) == [(3, [5, 8]), (6, [5, 8]), (9, [5, 8])]     # max_batches: where each stage ends
    assert [(c.clear, c.weights) for c in configs] == [
        (True, str(start)), (False, str(out / "A" / "tiny_A.ckpt")), (False, str(out / "B" / "tiny_B.weights"))]
    assert restored == [2]                         # B goes on with A's momentum; C starts a .weights file's own
    assert recalibrated == [20, 200, 20, 200, 20, 200]

    def lr_column(folder):
        with open(folder / "train" / "results.csv", newline="") as f:
            return [(int(row["iteration"]), float(row["lr"])) for row in csv.DictReader(f)]

    # darknet's rate at iteration i: 0.01·(i/2)^4 below burn_in=2, then 0.01, x0.1 from 5 and again from 8
    expected = [(1, 0.000625), (2, 0.01), (3, 0.01), (4, 0.01), (5, 0.001), (6, 0.001), (7, 0.001), (8, 1e-4),
                (9, 1e-4)]
    got = lr_column(out / "A") + lr_column(out / "B") + lr_column(out / "C")
    assert [i for i, _ in got] == [i for i, _ in expected]
    assert [lr for _, lr in got] == pytest.approx([lr for _, lr in expected])
    run_plan(plan, tmp_path / "direct", protocol="continue", direct=True, workers=0, progress=False, **QUIET)
    assert lr_column(tmp_path / "direct" / "direct") == got                # the direct run's schedule, the same
    assert [row["budget"] for row in r["rows"][1:]] == [3, 3, 3]
    assert "continue protocol (9 max_batches in all, one schedule" in r["markdown"]

    with pytest.raises(PlanError, match=r"stages\[0\].chain: --protocol continue .* minloss weights were saved"):
        run_plan(plan_from_dict({**d, "stages": [{**d["stages"][0], "chain": "minloss"}] + d["stages"][1:]}),
                 tmp_path / "x", dry_run=True, protocol="continue", **QUIET)
    with pytest.raises(PlanError, match=r"stages\[1\].train.batch: .* the same batch"):
        run_plan(plan_from_dict({**d, "stages": [d["stages"][0], {**d["stages"][1], "train": {"batch": 8}}]}),
                 tmp_path / "y", dry_run=True, protocol="continue", **QUIET)
    with pytest.raises(PlanError, match="classifier plans restart their schedule every stage; use equal"):
        run_plan(plan_from_dict({"name": "c", "model": "resnet20", "stages": [{"name": "A", "layers": "all"}]}),
                 tmp_path / "z", dry_run=True, protocol="continue", **QUIET)
