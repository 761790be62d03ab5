"""Experiment (BENCHMARKS.md 9m): does an exponential moving average of the shadow weights beat the last weights?

``bench/staged_cifar.py`` with the trainer watched, not changed: after every optimiser step one EMA per decay in
``--ema-decays`` follows the parameters (decay d·(1 - exp(-n/``--ema-ramp``)) at step n, Ultralytics' warm-up, so
the starting weights are forgotten in the first epochs and d alone sets the window at the end), and from epoch
``--ema-from`` on, after the run's own evaluation, each EMA is copied into the model, its BN statistics
re-estimated from 20 training batches (the EMA's ternary codes are not the trained ones) and evaluated; the
model's weights and statistics are then put back. The EMA passes draw from forked torch and numpy generators (a
data loader's iterator takes its seed from torch's), so the run trains as without them: the same weights, bit
for bit. Every other argument is staged_cifar.py's; its results file gains ``"ema"``: per epoch, the trained
weights' top-1 and each EMA's.

    python bench/cifar_weight_ema.py --ema-decays 0.98,0.99,0.995,0.998 --epochs 8 --rows direct_kt_ft ...
"""
import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import tritnet.train.classifier as classifier  # noqa: E402

BN_BATCHES = 20
watch = {"decays": [], "ramp": 50.0, "from_epoch": 1, "model": None, "averages": {}, "steps": 0, "loader": None,
         "evaluations": 0, "rows": []}
_make_optimizer, _recalibrate, _evaluate = (classifier.make_optimizer, classifier.recalibrate_batchnorm,
                                            classifier.evaluate)


def make_optimizer(cfg, model):
    opt = _make_optimizer(cfg, model)
    if cfg.method:                            # the student, not a float row
        watch.update(model=model, steps=0, averages={d: [p.detach().clone() for p in model.parameters()]
                                                     for d in watch["decays"]})
        step = opt.step

        def step_and_average(*args, **kwargs):
            result = step(*args, **kwargs)
            watch["steps"] += 1
            n = watch["steps"]
            with torch.no_grad():
                for d, average in watch["averages"].items():
                    decay = d * (1 - math.exp(-n / watch["ramp"]))
                    for a, p in zip(average, model.parameters()):
                        a.mul_(decay).add_(p.detach(), alpha=1 - decay)
            return result
        opt.step = step_and_average
    return opt


def recalibrate_batchnorm(model, loader, *args, **kwargs):
    if kwargs.get("only") is None:
        watch["loader"] = loader              # bn_eval's pass over the training images
    return _recalibrate(model, loader, *args, **kwargs)


def evaluate(model, loader, device="cpu", progress=None):
    metrics = _evaluate(model, loader, device, progress)
    if model is not watch["model"]:
        return metrics
    watch["evaluations"] += 1
    if watch["evaluations"] < watch["from_epoch"]:
        return metrics
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    row = {"epoch": watch["evaluations"], "trained": metrics["top1"]}
    for d, average in watch["averages"].items():
        with torch.no_grad():
            for p, a in zip(model.parameters(), average):
                p.copy_(a)
        numpy_state = np.random.get_state()
        with torch.random.fork_rng(devices=[]):      # a DataLoader's iterator draws its seed from torch's RNG
            _recalibrate(model, watch["loader"], BN_BATCHES, device)
            row[f"ema_{d}"] = _evaluate(model, loader, device)["top1"]
        np.random.set_state(numpy_state)
        model.load_state_dict(trained)
    watch["rows"].append(row)
    print("ema", json.dumps(row), file=sys.stderr, flush=True)
    return metrics


def main():
    import staged_cifar
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--ema-decays", default="0.98,0.99,0.995,0.998")
    ap.add_argument("--ema-ramp", type=float, default=watch["ramp"], help="steps of the decay's warm-up")
    ap.add_argument("--ema-from", type=int, default=1, help="first epoch whose end evaluates the averages")
    ap.add_argument("--out")
    ours, rest = ap.parse_known_args()
    watch.update(decays=[float(d) for d in ours.ema_decays.split(",")], ramp=ours.ema_ramp, from_epoch=ours.ema_from)
    # the wrapping happens here, not at import, so importing this file (tests/test_bench_scripts.py) changes nothing
    classifier.make_optimizer, classifier.recalibrate_batchnorm, classifier.evaluate = (
        make_optimizer, recalibrate_batchnorm, evaluate)
    staged_cifar.main_for(rest + (["--out", ours.out] if ours.out else []))
    if ours.out:
        results = json.loads(Path(ours.out).read_text())
        results["ema"] = {"decays": watch["decays"], "ramp_steps": watch["ramp"], "bn_batches": BN_BATCHES,
                          "epochs": watch["rows"]}
        Path(ours.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
