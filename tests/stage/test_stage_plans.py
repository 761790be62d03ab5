"""Plans without training: the built-in plans against the cfgs darknetTWN ships, the automatic order, YAML
plans written by hand, dry runs, and the errors a bad plan gives."""
import json
import warnings

import pytest
import yaml

from tritnet.darknet import parse_cfg, ternary_layers
from tritnet.stage import PlanError, auto_plan, builtin_plans, load_plan, plan_from_dict, plan_to_dict, run_plan
from tritnet.cli.stage import VERBS, add_parsers

NET_KEYS = ("batch", "subdivisions", "learning_rate", "max_batches", "steps", "scales", "burn_in", "policy")
BASES = {"yolov2-voc": "yolov2-voc.cfg", "yolov3-voc": "yolov3-voc.cfg", "yolov3-tiny-voc": "yolov3-tiny.cfg"}


def read(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return parse_cfg(path)


@pytest.mark.parametrize("name", sorted(BASES))
def test_builtin_plan_gives_the_shipped_stage_cfgs(name, cfg_dir, tmp_path):
    plan = load_plan(name)
    plan.model = str(cfg_dir / BASES[name])
    run_plan(plan, tmp_path, dry_run=True, echo=lambda s: None)
    assert ternary_layers(read(tmp_path / f"{plan.name}.cfg")) == []       # the float start, beside the stages
    compared = 0
    for k, stage in enumerate(plan.stages):
        made = read(tmp_path / stage.name / f"{name}_{stage.name}.cfg")
        shipped_path = cfg_dir / f"{name}_M{k}.cfg"
        if not shipped_path.is_file():        # yolov3-voc has no M3 cfg: M3 = every conv ternary
            assert stage.name == "M3" and len(ternary_layers(made)) == sum(s.type == "convolutional"
                                                                           for s in made.layers)
            continue
        shipped = read(shipped_path)
        assert len(made.layers) == len(shipped.layers)
        for i, (a, b) in enumerate(zip(made.layers, shipped.layers)):
            assert a.type == b.type, (name, stage.name, i)
            assert a.params() == b.params(), (name, stage.name, i)     # ternary flags included
        assert ternary_layers(made) == ternary_layers(shipped)
        for key in NET_KEYS:
            assert made.net.param(key) == shipped.net.param(key), (name, stage.name, key)
        assert made.net.params() == shipped.net.params()
        compared += 1
    assert compared == (3 if name == "yolov3-voc" else 4)


def test_automatic_order_is_the_seeds_yolov2_order(cfg_dir, tmp_path):
    """Fractions 4/23, 14/23, 21/23, 1 of the automatic order are the seeds' M0–M3, layer for layer."""
    plan = auto_plan(str(cfg_dir / "yolov2-voc.cfg"), fractions=[4 / 23, 14 / 23, 21 / 23, 1.0])
    result = run_plan(plan, tmp_path, dry_run=True, echo=lambda s: None)
    for k, st in enumerate(result["stages"]):
        assert st["ternary"] == ternary_layers(read(cfg_dir / f"yolov2-voc_M{k}.cfg")), k


def test_automatic_classifier_plan_defers_first_and_last_layers(tmp_path):
    result = run_plan(auto_plan("resnet20"), tmp_path, dry_run=True, echo=lambda s: None)
    sets = [s["ternary"] for s in result["stages"]]
    assert [len(s) for s in sets] == [3, 8, 18, 20]              # 15%, 40%, 90%, 100% of 20 layers
    assert sets[0] == [16, 17, 18]                                # the last blocks before the classifier
    assert 0 not in sets[2] and 19 not in sets[2] and sets[3] == list(range(20))
    staged = yaml.safe_load((tmp_path / "M0" / "resnet20_M0.yaml").read_text())
    assert staged["ternary"] == ["layer3.1.conv2", "layer3.2.conv1", "layer3.2.conv2"]


def test_hand_written_plan_with_names_ranges_fractions_and_add(tmp_path, cfg_dir):
    text = """
name: tiny
model: {cfg}
classes: 20
method: ttn
chain: last
train: {{max_batches: 100, burn_in: 10}}
stages:
  - name: A
    layers: "13-15, last"
  - name: B
    add: ["40%", 2]
    method: twn
    train: {{learning_rate: 1e-3, steps: [50, 80], scales: [.1, .1], policy: steps}}
  - {{name: C, layers: 1.0}}
""".format(cfg=cfg_dir / "yolov3-tiny.cfg")
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    plan = load_plan(path)
    r = run_plan(plan, tmp_path / "out", dry_run=True, echo=lambda s: None)
    # convs 0,2,4,6,8,10,12,13,14,15,18,21,22; outputs (feed a [yolo]) 15, 22; order 21,18,14,13,12,10,...
    assert [s["ternary"] for s in r["stages"]] == [[13, 14, 15, 22], [2, 12, 13, 14, 15, 18, 21, 22],
                                                   [0, 2, 4, 6, 8, 10, 12, 13, 14, 15, 18, 21, 22]]
    b = read(tmp_path / "out" / "B" / "tiny_B.cfg")
    assert b.net.param("learning_rate") == 1e-3 and b.net.param("steps") == [50, 80]
    assert b.net.param("max_batches") == 100 and b.layers[15].param("filters") == 75
    stages = yaml.safe_load((tmp_path / "out" / "stages.yaml").read_text())["stages"]
    assert [s["method"] for s in stages] == ["ttn", "twn", "ttn"] and stages[0]["chain"] == "last"
    assert "seed" not in stages[0]["train"] and [s["train"]["seed"] for s in stages[1:]] == [1, 2]
    assert plan_from_dict(plan_to_dict(plan), "again").stages[1].add == ["40%", 2]


@pytest.mark.parametrize("change, message", [
    ({"stages": [{"name": "M0", "layer": [1]}]}, "p.yaml: stages[0].layer: unknown key; did you mean 'layers'"),
    ({"stage": []}, "p.yaml: stage: unknown key; did you mean 'stages'"),
    ({"stages": [{"name": "M0", "layers": [25]}]}, "p.yaml: stages[0].layers: layer 25 is a [route]"),
    ({"stages": [{"name": "M0", "layers": [99]}]}, "p.yaml: stages[0].layers: layer 99 does not exist"),
    ({"stages": [{"name": "M0", "layers": [1.5]}]}, "p.yaml: stages[0].layers: fraction 1.5 is out of range"),
    ({"stages": [{"name": "M0", "layers": ["140%"]}]}, "fraction '140%' is out of range"),
    ({"stages": [{"name": "M0", "layers": ["9-3"]}]}, "range '9-3' runs backwards"),
    ({"stages": [{"name": "M0", "layers": ["conv1"]}]}, "darknet layers are chosen by index"),
    ({"stages": [{"name": "M0", "layers": [0], "add": [2]}]}, "give exactly one of layers"),
    ({"stages": [{"name": "M0", "layers": [0]}, {"name": "M0", "layers": [2]}]}, "already names stages[0]"),
    ({"stages": [{"name": "M0", "layers": [0, 2]}, {"name": "M1", "layers": [2]}]}, "drops layers that M0 made"),
    ({"train": {"max_batchs": 5}}, "p.yaml: train.max_batchs: not a [net] key nor a detector-training option; "
                                   "did you mean 'max_batches'"),
    ({"train": {"learning_rate": "fast"}}, "p.yaml: train.learning_rate: bad value 'fast'"),
    ({"stages": [{"name": "M0", "layers": [0], "train": {"max_batches": 5}}]}, "stages[0].train.max_batches: 5 "
                                                                               "iterations end before burn_in"),
    ({"method": "twm"}, "p.yaml: method: unknown method 'twm'; did you mean 'twn'"),
    ({"chain": "minlos"}, "p.yaml: chain: unknown chain 'minlos'; did you mean 'minloss'"),
])
def test_bad_darknet_plans_name_file_and_field(change, message, cfg_dir, tmp_path):
    d = {"name": "p", "model": str(cfg_dir / "yolov2-voc.cfg"), "stages": [{"name": "M0", "layers": [0]}]}
    d.update(change)
    with pytest.raises(PlanError) as e:
        run_plan(plan_from_dict(d, "p.yaml"), tmp_path, dry_run=True, echo=lambda s: None)
    assert message in str(e.value)


@pytest.mark.parametrize("change, message", [
    ({"stages": [{"name": "M0", "layers": ["layer3.0.comv1"]}]},
     "named 'layer3.0.comv1'; did you mean 'layer3.0.conv1'"),
    ({"train": {"epoch": 2}}, "c.yaml: train.epoch: unknown setting; did you mean 'epochs'"),
    ({"train": {"epochs": "two"}}, "c.yaml: train.epochs: expected an integer, got 'two'"),
    ({"train": {"weights": "x.pt"}}, "c.yaml: train.weights: set by the stage runner"),
    ({"chain": "minlos"}, "c.yaml: chain: unknown chain 'minlos'; did you mean 'minloss'?"),
    ({"stages": [{"name": "M0", "layers": [20]}]}, "layer 20 does not exist (the model has 20 layers)"),
])
def test_bad_classifier_plans_name_file_and_field(change, message, tmp_path):
    d = {"name": "c", "model": "resnet20", "stages": [{"name": "M0", "layers": [0]}]}
    d.update(change)
    with pytest.raises(PlanError) as e:
        run_plan(plan_from_dict(d, "c.yaml"), tmp_path, dry_run=True, echo=lambda s: None)
    assert message in str(e.value)


def test_bad_yaml_and_unknown_plan(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstages: [\n")
    with pytest.raises(PlanError, match="bad.yaml: not valid YAML"):
        load_plan(bad)
    with pytest.raises(FileNotFoundError, match="did you mean 'yolov2-voc'"):
        load_plan("yolov2-vco")
    assert set(builtin_plans()) == {"yolov2-voc", "yolov3-voc", "yolov3-tiny-voc"}


def test_cli_dry_run_prints_the_plan_and_writes_cfgs(cfg_dir, tmp_path, capsys):
    import argparse
    parser = argparse.ArgumentParser()
    add_parsers(parser.add_subparsers(dest="verb"))
    a = parser.parse_args(["stage", "yolov2-voc", "--model", str(cfg_dir / "yolov2-voc.cfg"), "--dry-run",
                           "--out", str(tmp_path), "--set", "max_batches=2000", "--set", "steps=[1500,1800]"])
    VERBS[("stage", None)](a)
    out = capsys.readouterr().out
    assert "M0            4/23     17%" in out and "23-24, 26, 29" in out and "0, 30" in out
    m2 = read(tmp_path / "M2" / "yolov2-voc_M2.cfg")
    assert m2.net.param("max_batches") == 2000 and m2.net.param("steps") == [1500, 1800]
    assert m2.net.param("learning_rate") == 0.001 and not (tmp_path / "state.json").exists()
    a = parser.parse_args(["stage", "auto", "--model", "resnet20", "--stages", "2", "--dry-run", "--direct",
                           "--set", "epochs=3", "--out", str(tmp_path / "d"), "--json"])
    VERBS[("stage", None)](a)
    r = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in r["stages"]] == ["direct"] and len(r["stages"][0]["ternary"]) == 20
    direct = yaml.safe_load((tmp_path / "d" / "direct" / "resnet20_direct.yaml").read_text())
    assert direct["train"]["epochs"] == 6                      # 2 stages x 3 epochs
    with pytest.raises(ValueError, match="--set 'epochs': expected KEY=VALUE"):
        VERBS[("stage", None)](parser.parse_args(["stage", "auto", "--model", "resnet20", "--set", "epochs"]))


def test_direct_darknet_plan_keeps_the_total_budget(cfg_dir, tmp_path):
    plan = load_plan("yolov3-voc")
    plan.model = str(cfg_dir / "yolov3-voc.cfg")
    r = run_plan(plan, tmp_path, direct=True, dry_run=True, echo=lambda s: None)
    assert len(r["stages"]) == 1 and len(r["stages"][0]["ternary"]) == 75
    cfg = read(tmp_path / "direct" / "yolov3-voc_direct.cfg")
    total = 2 * 100400 + 2 * 60400
    assert cfg.net.param("max_batches") == total
    assert cfg.net.param("steps") == [round(80000 * total / 100400), round(90000 * total / 100400)]


def test_cli_lists_builtin_plans_and_requires_a_plan(capsys):
    import argparse
    parser = argparse.ArgumentParser()
    add_parsers(parser.add_subparsers(dest="verb"))
    VERBS[("stage", None)](parser.parse_args(["stage", "--list"]))
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == sorted(BASES)
    with pytest.raises(ValueError, match="--model is required"):
        VERBS[("stage", None)](parser.parse_args(["stage", "auto"]))
    with pytest.raises(ValueError, match="give a plan"):
        VERBS[("stage", None)](parser.parse_args(["stage"]))


def test_main_cli_reports_plan_errors_in_one_line(cfg_dir, tmp_path, capsys):
    from tritnet.cli import main
    assert main(["stage", "yolov2-vco", "--dry-run"]) == 2
    assert "did you mean 'yolov2-voc'" in capsys.readouterr().err
    assert main(["stage", "yolov2-voc", "--model", str(cfg_dir / "yolov2-voc.cfg"), "--dry-run", "--out",
                 str(tmp_path), "--set", "max_batchs=3"]) == 2
    assert "--set max_batchs: not a [net] key" in capsys.readouterr().err


def test_a_darknet_classifier_cfg_is_refused_clearly(tmp_path):
    from tritnet.stage import PlanError
    cfg = tmp_path / "cls.cfg"
    cfg.write_text("[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=4\nsize=3\npad=1\n[avgpool]\n"
                   "[softmax]\n")
    with pytest.raises(PlanError, match=r"cls.cfg: staged plans train darknet detectors.*no \[region\] or \[yolo\]"):
        run_plan(auto_plan(str(cfg)), tmp_path / "out", dry_run=True, echo=lambda s: None)


def test_fingerprints_follow_file_contents_not_paths(cfg_dir, tmp_path):
    """A rerun must not skip a finished stage when the start weights at the same path were replaced."""
    from tritnet.stage.resolve import resolve_stages
    from tritnet.stage.runner import make_backend
    cfg = tmp_path / "tiny.cfg"
    cfg.write_bytes((cfg_dir / "yolov3-tiny.cfg").read_bytes())
    weights = tmp_path / "start.weights"

    def prints(content):
        weights.write_bytes(content)
        plan = load_plan("yolov3-tiny-voc")
        plan.model, plan.weights = str(cfg), str(weights)
        backend = make_backend(plan, device="cpu", workers=0, progress=False)
        return [r.fingerprint for r in resolve_stages(plan, backend)]

    first = prints(b"\0" * 64)
    assert prints(b"\0" * 64) == first                      # same bytes: same stages, a rerun skips them
    changed = prints(b"\1" + b"\0" * 63)                    # same path and size, other bytes
    assert all(a != b for a, b in zip(first, changed))      # every stage chains on the start
    cfg.write_text(cfg.read_text().replace("learning_rate=0.001", "learning_rate=0.002"))
    assert prints(b"\0" * 64)[0] != first[0]


def test_cli_protocol_continue_writes_one_schedule_cut_at_each_stage(cfg_dir, tmp_path, capsys):
    from tritnet.cli import build_parser, main
    from tritnet.darknet import parse_cfg
    from tritnet.stage.resolve import PROTOCOLS
    parser = build_parser()
    assert [parser.parse_args(["stage", "x", "--protocol", p]).protocol for p in PROTOCOLS] == list(PROTOCOLS)
    args = ["stage", "yolov2-voc", "--model", str(cfg_dir / "yolov2-voc.cfg"), "--dry-run", "--protocol", "continue",
            "--budget", "4100", "--set", "burn_in=100"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 2            # the seeds' plan chains on min-loss weights
    assert "--protocol continue goes on from the weights at the stage's end" in capsys.readouterr().err
    assert main(args + ["--out", str(tmp_path / "b"), "--chain", "last"]) == 0
    nets = [parse_cfg(tmp_path / "b" / m / f"yolov2-voc_{m}.cfg").net.param for m in ("M0", "M1", "M2", "M3")]
    # the plan's schedule: max_batches 41000, steps 32000, 36900 -> on 4100: 3200, 3690 for every stage, which end
    # at 1025, 2050, 3075 and 4100
    assert [(p("max_batches"), list(p("steps")), p("burn_in")) for p in nets] == [
        (1025, [3200, 3690], 100), (2050, [3200, 3690], 100), (3075, [3200, 3690], 100), (4100, [3200, 3690], 100)]
