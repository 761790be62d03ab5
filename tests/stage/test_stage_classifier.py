"""A three-stage plan on the pretrained ResNet-20, run end to end on 100 CIFAR images (30 to score) with a kill in the
middle of stage B: chaining (each stage starts from the tensors the stage before chose: last, min-loss, best), the
files of every
stage, resume (A is not trained again, B continues from its own last checkpoint) and the report."""
import csv

import pytest
import torch

from tritnet.models import load_classifier, read_checkpoint
from tritnet.nn.size import model_size
from tritnet.stage import load_plan, run_plan
from tritnet.train import classifier as classifier_module

PLAN = """
name: r20
model: resnet20
method: twn
chain: last
train: {{batch_size: 50, epochs: 1, lr: 0.01, bn_recalibrate: 1}}
stages:
  - {{name: A, layers: [layer3.2.conv1, layer3.2.conv2]}}
  - {{name: B, add: "13-17", chain: minloss, train: {{epochs: 2}}}}
  - {{name: C, layers: all, chain: best}}
"""


@pytest.fixture(scope="module")
def staged(tmp_path_factory, cifar_small, resnet_pretrained):
    """Run the plan twice: the first run dies in stage B's second epoch, the second finishes it."""
    root = tmp_path_factory.mktemp("staged")
    path = root / "r20.yaml"
    path.write_text(PLAN.format())
    plan = load_plan(path)
    plan.data, plan.weights = str(cifar_small), str(resnet_pretrained)
    out = root / "out"
    calls, starts, evals = [], [], []
    real_train, real_build, real_eval = (classifier_module.train_classifier, classifier_module.build_model,
                                         classifier_module.evaluate)

    def train(cfg):
        calls.append((cfg.resume, cfg.weights))
        return real_train(cfg)

    def build(cfg, n):
        model = real_build(cfg, n)
        starts.append((cfg.weights, {k: v.clone() for k, v in model.state_dict().items()}))
        return model

    def dies_in_b_epoch_2(*a, **k):
        evals.append(1)
        if len(evals) == 3:                  # A epoch 1, B epoch 1, B epoch 2 <- killed here
            raise KeyboardInterrupt("simulated kill")
        return real_eval(*a, **k)

    quiet = dict(workers=0, progress=False, echo=lambda s: None)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(classifier_module, "train_classifier", train)
        mp.setattr(classifier_module, "build_model", build)
        mp.setattr(classifier_module, "evaluate", dies_in_b_epoch_2)
        with pytest.raises(KeyboardInterrupt):
            run_plan(plan, out, **quiet)
        first_calls = list(calls)
        a_mtime = (out / "A" / "r20_A.pt").stat().st_mtime_ns
        mp.setattr(classifier_module, "evaluate", real_eval)
        calls.clear()
        said = []
        result = run_plan(plan, out, **{**quiet, "echo": said.append})
    return {"out": out, "result": result, "first_calls": first_calls, "second_calls": list(calls), "data": cifar_small,
            "starts": starts, "a_mtime": a_mtime, "said": said, "plan": plan}


def test_each_stage_starts_from_the_checkpoint_the_previous_stage_chose(staged):
    out, starts = staged["out"], staged["starts"]
    by_weights = {w: sd for w, sd in starts if w}
    for prev, nxt in (("A", "B"), ("B", "C")):
        saved = read_checkpoint(out / prev / f"r20_{prev}.pt")["model"]
        start = by_weights[str(out / prev / f"r20_{prev}.pt")]
        assert set(start) == set(saved)
        for k in saved:
            assert torch.equal(start[k], saved[k]), (nxt, k)
    # A starts from the pretrained float ResNet-20; the copies are the chosen checkpoints, byte for byte
    assert staged["first_calls"][0][1].endswith("resnet_cifar10")
    assert (out / "A" / "r20_A.pt").read_bytes() == (out / "A" / "train" / "weights" / "last.pt").read_bytes()
    assert (out / "C" / "r20_C.pt").read_bytes() == (out / "C" / "train" / "weights" / "best.pt").read_bytes()
    minloss = out / "B" / "train" / "weights" / "minloss.pt"              # the seeds' rule: min smoothed loss
    assert (out / "B" / "r20_B.pt").read_bytes() == minloss.read_bytes()
    assert read_checkpoint(minloss)["avg_loss"] > 0


def test_stage_files_hold_the_planned_ternary_layers(staged):
    out = staged["out"]
    a = read_checkpoint(out / "A" / "r20_A.pt")
    assert sorted(a["ternary"]) == ["layer3.2.conv1", "layer3.2.conv2"]
    b = read_checkpoint(out / "B" / "r20_B.pt")
    assert len(b["ternary"]) == 6 and "layer3.0.conv1" in b["ternary"] and "conv1" not in b["ternary"]
    assert len(read_checkpoint(out / "C" / "r20_C.pt")["ternary"]) == 20
    import yaml
    assert yaml.safe_load((out / "B" / "r20_B.yaml").read_text())["train"]["epochs"] == 2


def test_kill_and_rerun_resumes_stage_b_and_never_repeats_a(staged):
    out = staged["out"]
    assert [bool(r) for r, _ in staged["first_calls"]] == [False, False]           # A, then B (killed)
    assert [bool(r) for r, _ in staged["second_calls"]] == [True, False]           # B resumed, then C
    assert staged["second_calls"][0][0] == str(out / "B" / "train")
    assert (out / "A" / "r20_A.pt").stat().st_mtime_ns == staged["a_mtime"]
    rows = list(csv.DictReader(open(out / "B" / "train" / "results.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert len(list(csv.DictReader(open(out / "A" / "train" / "results.csv")))) == 1


def test_report_has_a_row_per_stage_with_scores_sizes_and_times(staged):
    out, r = staged["out"], staged["result"]
    rows = r["rows"]
    assert [x["stage"] for x in rows] == ["start (float)", "A", "B", "C"]
    assert [x["ternary_layers"] for x in rows] == [0, 2, 6, 20]
    for x, name in zip(rows[1:], "ABC"):
        state = read_checkpoint(out / name / f"r20_{name}.pt")
        if "metrics" in state:      # last / best: scored at the end of an epoch
            metrics = state["metrics"]
        else:                       # B chains on min-loss, written mid-epoch: scored by the runner
            from tritnet.data import build_classification_loaders
            from tritnet.eval import evaluate
            valid = build_classification_loaders(str(staged["data"]), batch_size=50, workers=0, train=False).valid
            metrics = evaluate(load_classifier(out / name / f"r20_{name}.pt")[0], valid)
        assert x["top1"] == pytest.approx(metrics["top1"]) and x["top5"] == pytest.approx(metrics["top5"])
        assert x["train_seconds"] > 0
    sizes = [x["packed_2bit_bytes"] for x in rows]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == rows[0]["float32_bytes"]
    model, _ = load_classifier(out / "C" / "r20_C.pt")
    assert sizes[-1] == model_size(model)["packed_2bit_bytes"]
    assert rows[3]["share_layers"] == 100
    from tritnet.data import build_classification_loaders
    from tritnet.eval import evaluate
    from tritnet.models import load_model
    valid = build_classification_loaders(str(staged["data"]), batch_size=50, workers=0, train=False).valid
    start = evaluate(load_model("resnet20", staged["plan"].weights).model.eval(), valid)      # the float start
    assert (rows[0]["top1"], rows[0]["top5"]) == pytest.approx((start["top1"], start["top5"]))
    md = (out / "report.md").read_text()
    assert "| start (float) | 0/20 |" in md and "| C | 20/20 | 100% |" in md and "top-1" in md
    assert list(csv.DictReader(open(out / "report.csv")))[2]["stage"] == "B"
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    steps = list(csv.DictReader(open(out / "B" / "train" / "steps.csv")))     # what loss.png draws for B
    assert [int(s["step"]) for s in steps] == [1, 2, 3, 4]                       # 2 epochs x 2 steps, resumed


def test_every_stage_prints_its_scores_when_it_ends(staged):
    said, rows = "\n".join(staged["said"]), {r["stage"]: r for r in staged["result"]["rows"]}
    assert "stage A: finished in an earlier run, not repeated" in said
    for name in "BC":             # trained in the second run: one line each with the scores the report holds
        assert f"stage {name} done: top-1 {rows[name]['top1']:.2f}, top-5 {rows[name]['top5']:.2f}" in said


def test_dry_run_refuses_a_folder_with_trained_stages_and_writes_nothing(staged):
    from tritnet.stage import PlanError
    out = staged["out"]
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    with pytest.raises(PlanError, match=r"holds trained stages \(A, B, C\).*another --out"):
        run_plan(staged["plan"], out, dry_run=True, echo=lambda s: None)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
