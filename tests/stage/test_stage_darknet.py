"""A two-stage darknet plan on a tiny region detector and synthetic images, end to end: each stage trains
from the previous stage's min-loss .weights (α·T in its ternary layers), a kill in stage B resumes from B's
own checkpoint, and the report scores every stage with mAP@0.5 and average IoU."""
import csv

import numpy as np
import pytest
import torch

from tritnet.darknet import load_weights, parse_cfg, ternary_layers
from tritnet.stage import plan_from_dict, run_plan
from tritnet.yolo import train as yolo_train

from stage_helpers import tiny_detector


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    root = tmp_path_factory.mktemp("dk")
    data, cfg, start = tiny_detector(root)                  # a float network to start from
    plan = plan_from_dict({"name": "tiny", "model": str(cfg), "data": str(data), "weights": str(start),
                           "train": {"max_batches": 3, "burn_in": 1, "cache_mb": 16},
                           "stages": [{"name": "A", "layers": [4]},
                                      {"name": "B", "add": "0-2", "train": {"max_batches": 4}}]}, "tiny.yaml")
    out = root / "out"
    configs, starts = [], []
    real_train, real_start, real_loader = yolo_train.train_detector, yolo_train.starting_point, yolo_train.train_loader

    def train(c):
        configs.append(c)
        return real_train(c)

    def starting_point(net, *a, **k):
        s = real_start(net, *a, **k)
        starts.append({n: p.detach().clone() for n, p in net.state_dict().items()})
        return s

    def loader(*a, **k):                                     # the first B run dies fetching its 2nd batch
        batches = real_loader(*a, **k)
        if len(configs) != 2 or a[1].start != 0 or a[1].seed != configs[1].seed:   # not B's training stream
            return batches

        def dies():
            for n, item in enumerate(batches):
                if n == 1:
                    raise KeyboardInterrupt("simulated kill")
                yield item
        return dies()

    quiet = dict(workers=0, progress=False, echo=lambda s: None)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(yolo_train, "train_detector", train)
        mp.setattr(yolo_train, "starting_point", starting_point)
        mp.setattr(yolo_train, "train_loader", loader)
        with pytest.raises(KeyboardInterrupt):
            run_plan(plan, out, **quiet)
        result = run_plan(plan, out, **quiet)
    return {"out": out, "result": result, "configs": configs, "starts": starts, "start": start}


def test_stages_chain_on_min_loss_weights(staged):
    out, configs = staged["out"], staged["configs"]
    assert [c.cfg.split("/")[-1] for c in configs] == ["tiny_A.cfg", "tiny_B.cfg", "tiny_B.cfg"]
    assert configs[0].weights == str(staged["start"]) and configs[0].clear
    assert configs[1].weights == str(out / "A" / "tiny_A.weights") and configs[1].clear and not configs[1].resume
    assert configs[2].resume and not configs[2].clear                    # the rerun continues B
    a = out / "A" / "tiny_A.weights"
    assert a.read_bytes() == (out / "A" / "backup" / "tiny_A.minloss.weights").read_bytes()
    saved = load_weights(parse_cfg(out / "B" / "tiny_B.cfg"), a).layers
    b_start = staged["starts"][1]
    for i in (0, 2, 4, 5):
        assert np.array_equal(b_start[f"layers.{i}.conv.weight"].numpy().ravel(), saved[i]["weights"].ravel()), i
    layer4 = saved[4]["weights"].ravel()                         # ternary in A: written as α·T
    assert len(np.unique(np.abs(layer4[layer4 != 0]).round(6))) == 1


def test_stage_cfgs_and_resumed_log(staged):
    out = staged["out"]
    assert ternary_layers(parse_cfg(out / "A" / "tiny_A.cfg")) == [4]
    b = parse_cfg(out / "B" / "tiny_B.cfg")
    assert ternary_layers(b) == [0, 2, 4] and b.net.param("max_batches") == 4
    assert all(s.get("ternary") in ("0", "1") for s in b.layers if s.type == "convolutional")
    log = list(csv.DictReader(open(out / "B" / "train" / "results.csv")))
    assert [int(r["iteration"]) for r in log] == [1, 2, 3, 4]


def test_report_scores_each_stage(staged):
    rows, out = staged["result"]["rows"], staged["out"]
    assert [r["stage"] for r in rows] == ["start (float)", "A", "B"]
    assert [r["ternary_layers"] for r in rows] == [0, 1, 3] and rows[0]["layers"] == 4
    # each row scores its own stage's files: the start as float, A and B with their ternary layers
    from tritnet.yolo import map_detector
    data = staged["configs"][0].data
    files = [(out / "tiny.cfg", staged["start"], None), (out / "A" / "tiny_A.cfg", out / "A" / "tiny_A.weights", "twn"),
             (out / "B" / "tiny_B.cfg", out / "B" / "tiny_B.weights", "twn")]
    for r, (cfg, weights, method) in zip(rows, files):
        m = map_detector(data, str(cfg), str(weights), method=method, workers=0)["result"]
        assert (r["map"], r["avg_iou"], r["recall"]) == pytest.approx((100 * m.map11, 100 * m.avg_iou, 100 * m.recall))
    assert rows[1]["avg_iou"] != rows[2]["avg_iou"]
    assert rows[2]["budget"] == 4 and rows[1]["train_seconds"] > 0
    assert rows[2]["packed_2bit_bytes"] < rows[1]["packed_2bit_bytes"] < rows[0]["float32_bytes"]
    md = (out / "report.md").read_text()
    assert "mAP@0.5" in md and "avg IoU" in md and "| B | 3/4 |" in md
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "tiny.cfg").is_file() and ternary_layers(parse_cfg(out / "tiny.cfg")) == []


def test_last_and_best_chains_and_a_real_direct_run(tmp_path):
    """Stage A chains on its final weights, stage B on its best mAP (evaluated during training); the direct
    comparison trains every conv ternary for the plan's whole budget (3 + 4 iterations) and is reported."""
    data, cfg, start = tiny_detector(tmp_path)
    plan = plan_from_dict({"name": "tiny", "model": str(cfg), "data": str(data), "weights": str(start),
                           "train": {"max_batches": 3, "burn_in": 1, "cache_mb": 16, "map_every": 1},
                           "stages": [{"name": "A", "layers": [4], "chain": "last"},
                                      {"name": "B", "add": "0-2", "chain": "best", "train": {"max_batches": 4}}]})
    quiet = dict(workers=0, progress=False, echo=lambda s: None)
    out = run_plan(plan, tmp_path / "staged", **quiet)["out"]
    from pathlib import Path
    out = Path(out)
    assert (out / "A" / "tiny_A.weights").read_bytes() == (out / "A" / "backup" / "tiny_A_final.weights").read_bytes()
    assert (out / "B" / "tiny_B.weights").read_bytes() == (out / "B" / "backup" / "tiny_B_best.weights").read_bytes()
    direct = run_plan(plan, tmp_path / "direct", direct=True, **quiet)
    row = direct["rows"][-1]
    assert row["stage"] == "direct" and row["budget"] == 7 and row["ternary_layers"] == 4
    log = list(csv.DictReader(open(Path(direct["out"]) / "direct" / "train" / "results.csv")))
    assert len(log) == 7
    from tritnet.yolo import map_detector
    d = Path(direct["out"]) / "direct"
    m = map_detector(str(data), str(d / "tiny_direct.cfg"), str(d / "tiny_direct.weights"), workers=0)["result"]
    assert (row["map"], row["avg_iou"]) == pytest.approx((100 * m.map11, 100 * m.avg_iou))


def test_the_shadow_chain_carries_the_float_shadow_weights_into_the_next_stage(tmp_path, monkeypatch):
    """chain: shadow: stage B starts from A's final training state, so layer 4 (ternary in A) starts B with A's
    float shadow weights, not the α·T its .weights file holds; A's .weights are its final ones."""
    from pathlib import Path
    from tritnet.models.load import load_detector_state
    from tritnet.stage import PlanError, make_backend
    from tritnet.stage.resolve import resolve_stages
    data, cfg, start = tiny_detector(tmp_path)
    d = {"name": "tiny", "model": str(cfg), "data": str(data), "weights": str(start), "chain": "shadow",
         "train": {"max_batches": 3, "burn_in": 1, "cache_mb": 16},
         "stages": [{"name": "A", "layers": [4]}, {"name": "B", "add": "0-2"}]}
    starts, real_start = [], yolo_train.starting_point

    def starting_point(net, weights, *a, **k):
        s = real_start(net, weights, *a, **k)
        starts.append((weights, {n: p.detach().clone() for n, p in net.state_dict().items()}))
        return s

    monkeypatch.setattr(yolo_train, "starting_point", starting_point)
    out = Path(run_plan(plan_from_dict(d), tmp_path / "out", workers=0, progress=False, echo=lambda s: None)["out"])
    a_ckpt = out / "A" / "tiny_A.ckpt"
    assert starts[1][0] == str(a_ckpt)
    assert a_ckpt.read_bytes() == (out / "A" / "backup" / "tiny_A.ckpt").read_bytes()
    assert (out / "A" / "tiny_A.weights").read_bytes() == (out / "A" / "backup" / "tiny_A_final.weights").read_bytes()
    shadow = load_detector_state(a_ckpt)["model"]["layers.4.conv.weight"]
    b_layer4 = starts[1][1]["layers.4.conv.weight"]
    assert torch.equal(b_layer4, shadow)
    assert len(torch.unique(b_layer4.abs().round(decimals=6))) > 2          # float values, not 0 and α
    # a rerun after A finished (B never started) starts B from A's checkpoint again, as state.json records it
    import json
    import shutil
    state = json.loads((out / "state.json").read_text())
    del state["stages"]["B"]
    (out / "state.json").write_text(json.dumps(state))
    shutil.rmtree(out / "B")
    run_plan(plan_from_dict(d), out, workers=0, progress=False, echo=lambda s: None)
    assert [w for w, _ in starts[2:]] == [str(a_ckpt)]
    in_file = load_weights(parse_cfg(out / "A" / "tiny_A.cfg"), out / "A" / "tiny_A.weights").layers[4]["weights"]
    assert len(np.unique(np.abs(in_file[in_file != 0]).round(6))) == 1        # the file holds α·T
    with pytest.raises(PlanError, match="shadow needs one float tensor"):
        sttn = plan_from_dict({**d, "method": "sttn"})
        resolve_stages(sttn, make_backend(sttn))
    with pytest.raises(PlanError, match="'shadow' is not available for classifier plans"):
        cls = plan_from_dict({"name": "c", "model": "resnet20", "chain": "shadow",
                              "stages": [{"name": "A", "layers": "all"}]})
        resolve_stages(cls, make_backend(cls))
