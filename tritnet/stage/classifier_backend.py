"""Stages of a PyTorch classifier (the CIFAR ResNets): each stage is one ``train_classifier`` run.

A stage starts from the previous stage's chosen checkpoint (``weights=``): its ternary layers are restored
with their float shadow weights, then the stage's layers are made ternary and fine-tuned. Unlike a darknet
.weights file, a tritnet checkpoint keeps the shadow weights, so a layer that was ternary continues from its
float values rather than from α·T (same ternary weights, a smoother restart).

Stage folder: ``<name>_<stage>.yaml`` (the stage's ternary layers and settings), ``train/`` (the run folder:
weights/last.pt, best.pt, results.csv, steps.csv, curves.png) and ``<name>_<stage>.pt``, the copy of the
chosen checkpoint the next stage starts from. Chains: ``last`` or ``best`` (top-1 on the valid split); the
classifier trainer keeps no min-loss checkpoint.
"""
from __future__ import annotations

import csv
import dataclasses
import shutil
from pathlib import Path

import yaml

from ..models import load_classifier
from ..nn import classifier_layers
from ..train import classifier as classifier_train
from .plan import PlanError
from .resolve import coerce_fields
from .state import write_text_atomic

__all__ = ["ClassifierBackend"]

# ClassifierTrainConfig fields the runner sets itself (files, layers, chaining, resume)
_RESERVED = ("data", "model", "weights", "method", "layers", "resume", "project", "name", "progress", "device",
             "workers")


def smooth(values, k: float = 0.9) -> list:
    """darknet's running average of the loss (avg = .9·avg + .1·loss), for curves of either backend."""
    out, avg = [], None
    for v in values:
        avg = v if avg is None else k * avg + (1 - k) * v
        out.append(avg)
    return out


class ClassifierBackend:
    kind = "classifier"
    chains = ("last", "best", "minloss")
    budget_key = "epochs"
    stage_defaults: dict = {}               # ClassifierTrainConfig's own defaults re-estimate BN already
    metric_names = (("top1", "top-1"), ("top5", "top-5"))
    extra_metrics = ("loss",)

    def __init__(self, plan, *, device="auto", workers=2, progress=True):
        from ..models import create_model
        self.plan, self.device, self.workers, self.progress = plan, device, workers, progress
        self.layers = classifier_layers(create_model(plan.model), PlanError)
        self._defaults = classifier_train.ClassifierTrainConfig(data="")

    # ------------------------------------------------------------------ plan checks
    def check_train(self, train: dict, at: str) -> dict:
        return coerce_fields(classifier_train.ClassifierTrainConfig, train, at, _RESERVED)

    def check_stage(self, run, at: str) -> None:
        if self.budget(run.train) < 1:
            raise PlanError(f"{at}.train.epochs: must be at least 1")

    def budget(self, train: dict) -> int:
        return train.get("epochs", self._defaults.epochs)

    def stretch(self, train: dict, total: int) -> dict:
        """``train`` over ``total`` epochs (multistep milestones given in epochs move in proportion)."""
        own = self.budget(train)
        out = {**train, "epochs": total}
        if "milestones" in train and any(m > 1 for m in train["milestones"]):
            out["milestones"] = tuple(m * total / own if m > 1 else m for m in train["milestones"])
        return out

    # ------------------------------------------------------------------ files
    def file_base(self, run) -> str:
        return f"{self.plan.name}_{run.name}"

    def names(self, run) -> list:
        return [self.layers.names[i] for i in run.ternary]

    def write_stage(self, run, folder: Path) -> list:
        text = yaml.safe_dump({"model": self.plan.model, "method": run.method, "ternary": self.names(run),
                               "train": {k: list(v) if isinstance(v, tuple) else v for k, v in run.train.items()}},
                              sort_keys=False, default_flow_style=None)
        return [write_text_atomic(folder / f"{self.file_base(run)}.yaml", text)]

    def weights_name(self, run) -> str:
        return f"{self.file_base(run)}.pt"

    # ------------------------------------------------------------------ training
    def has_partial(self, run, folder: Path) -> bool:
        return (folder / "train" / "weights" / "last.pt").is_file()

    def train(self, run, start, folder: Path, resume: bool) -> None:
        run_dir = folder / "train"
        common = dict(data=self.plan.data, device=self.device, workers=self.workers, progress=self.progress)
        if resume:
            cfg = classifier_train.ClassifierTrainConfig(resume=str(run_dir), **common)
        else:
            if run_dir.exists():           # a start killed before its first checkpoint: nothing to keep
                shutil.rmtree(run_dir)
            cfg = classifier_train.ClassifierTrainConfig(
                model=self.plan.model, weights=start, method=run.method,
                layers=",".join(self.names(run)) if run.ternary else "all", project=str(folder), name="train",
                **common, **run.train)
        classifier_train.train_classifier(cfg)

    def chosen(self, run, folder: Path) -> Path:
        path = folder / "train" / "weights" / f"{run.chain}.pt"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: stage {run.name} left no {run.chain} checkpoint")
        return path

    def carry(self, run, folder: Path, saved: Path) -> Path:
        """What the next stage starts from: the saved checkpoint (it keeps the float shadow weights)."""
        return saved

    # ------------------------------------------------------------------ scores
    def evaluate(self, run, weights, folder: Path) -> dict:
        """The valid-split scores the trainer stored in the chosen checkpoint (last, best), or measured now
        for a min-loss checkpoint, which is written between evaluations; and its packed size."""
        from ..models import read_checkpoint
        from ..nn.size import model_size
        state = read_checkpoint(weights)
        model, _ = load_classifier(weights)
        m = state.get("metrics") or self._valid_scores(model, run.train)
        return {"metrics": {"top1": m.get("top1"), "top5": m.get("top5"), "loss": m.get("loss")},
                "size": model_size(model)}

    def evaluate_start(self, weights, out: Path, first) -> dict:
        """The initial weights on the same valid split the stages are scored on (the float row)."""
        from ..nn.size import model_size
        cfg = dataclasses.replace(self._defaults, data=self.plan.data, model=self.plan.model, weights=weights,
                                  **{k: v for k, v in first.train.items()})
        n = len(self._valid(first.train).class_names)
        model = classifier_train.build_model(dataclasses.replace(cfg, method=None), n)
        return {"metrics": self._valid_scores(model, first.train), "size": model_size(model)}

    def _valid(self, train: dict):
        from ..data import build_classification_loaders
        cfg = dataclasses.replace(self._defaults, data=self.plan.data, model=self.plan.model, **train)
        return build_classification_loaders(cfg.data, batch_size=cfg.batch_size, workers=0, train=False,
                                            valid_per_class=cfg.valid_per_class, cache_dir=cfg.cache_dir,
                                            **classifier_train.input_format(cfg.model))

    def _valid_scores(self, model, train: dict) -> dict:
        from ..eval import evaluate
        device = classifier_train.dist.pick_device(self.device)
        metrics = evaluate(model.to(device), self._valid(train).valid, device)
        return {k: metrics[k] for k in ("top1", "top5", "loss")}

    def loss_rows(self, run, folder: Path) -> list:
        """[(step, loss, smoothed loss)] from the run's steps.csv."""
        path = folder / "train" / "steps.csv"
        if not path.is_file():
            return []
        with open(path, newline="") as f:
            rows = [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(f)]
        return [(s, v, a) for (s, v), a in zip(rows, smooth([v for _, v in rows]))]
