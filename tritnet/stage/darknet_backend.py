"""Stages of a darknet detector: the seeds' way (darknetTWN's darknet.sh, methods.md §1.7).

Each stage is a cfg (the base network with ``ternary=1`` on the stage's convs, ``ternary=0`` on the
others, and the stage's [net] schedule) trained by ``tritnet.yolo.train_detector`` with ``clear`` (the
schedule restarts at 0, darknet's ``-clear``) from the previous stage's chosen weights; under protocol
``continue`` the later stages train without it, their max_batches where they end, so the schedule goes on from
the seen of the weights they start from. The .weights files hold ternary layers as α·T, so a layer that was
ternary restarts from W = T (idempotent under TWN), one that turns ternary starts from its float values:
exactly what chaining on ``.minloss.weights`` did.
``chain: shadow`` instead starts the next stage from the stage's final training state (``.ckpt``), whose
ternary layers keep their float shadow weights, as they would in one long run; the stage's ``.weights`` are its
final ones. (BENCHMARKS.md 10f: on BCCD it scored as chaining on α·T; the schedule's restarts cost more.)

Stage folder: ``<name>_<stage>.cfg``, ``backup/`` (the trainer's files: minloss, final, best, .ckpt, log)
and ``<name>_<stage>.weights``, the copy of the chosen checkpoint the next stage starts from (with ``chain:
shadow``, ``<name>_<stage>.ckpt`` beside it, the one it starts from).
"""
from __future__ import annotations

import csv
import dataclasses
import warnings
from pathlib import Path

from ..darknet import CfgError, Section, darknet_layers, dump_cfg, parse_cfg, set_ternary, validate_cfg
from ..darknet._schema import known_keys
from ..train.calibrate import BN_BATCHES
from .plan import PlanError, did_you_mean
from .resolve import coerce_fields
from .state import copy_atomic, write_text_atomic

__all__ = ["DarknetBackend"]

_NET_KEYS = set(known_keys("net"))
# DetectorTrainConfig fields the runner sets itself (files, chaining, resume); a plan may set the others
_RESERVED = ("data", "cfg", "weights", "clear", "method", "backup", "resume", "device", "progress", "workers")
_CHOSEN = {"minloss": "{base}.minloss.weights", "best": "{base}_best.weights", "last": "{base}_final.weights",
           "shadow": "{base}_final.weights"}


class DarknetBackend:
    kind = "darknet"
    chains = ("minloss", "best", "last", "shadow")
    budget_key = "max_batches"
    # a stage boundary re-estimates the BN statistics of the newly ternary part (detector train does not by default)
    stage_defaults = {"bn_recalibrate": BN_BATCHES}
    metric_names = (("map", "mAP@0.5 (VOC07 11-pt)"), ("avg_iou", "avg IoU"))
    extra_metrics = ("map_auc", "precision", "recall")

    def __init__(self, plan, model_path: Path, *, device="auto", workers=2, progress=True):
        from ..yolo import DetectorTrainConfig
        self.plan, self.device, self.workers, self.progress = plan, device, workers, progress
        self._options = DetectorTrainConfig
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")     # darknet's "Unused field" notes are not the plan's business
            self.base = parse_cfg(model_path)
        if not any(sec.type in ("region", "yolo") for sec in self.base.layers):
            raise PlanError(f"{model_path}: staged plans train darknet detectors, and this cfg has no [region] or "
                            "[yolo] head; train a darknet classifier with `tritnet classifier train --model CFG`")
        if plan.classes is not None:
            from ..yolo import set_classes
            set_classes(self.base, plan.classes)
        self.layers = darknet_layers(self.base, PlanError)

    # ------------------------------------------------------------------ plan checks
    def check_train(self, train: dict, at: str) -> dict:
        """[net] keys (checked by darknet's own value rules) and detector-trainer options."""
        net, opts = {}, {}
        for k, v in train.items():
            if k in _NET_KEYS:
                scratch = Section("net")
                try:
                    scratch.set(k, v)
                    scratch.param(k)
                except (CfgError, ValueError) as e:
                    raise PlanError(f"{at}.{k}: bad value {v!r} ({getattr(e, 'reason', e)})") from None
                net[k] = v
            else:
                opts[k] = v
        fields = {f.name for f in dataclasses.fields(self._options)} - set(_RESERVED)
        for k in opts:
            if k not in fields:
                raise PlanError(f"{at}.{k}: not a [net] key nor a detector-training option"
                                f"{did_you_mean(k, sorted(_NET_KEYS | fields))}")
        return {**net, **coerce_fields(self._options, opts, at, _RESERVED)}

    def net_value(self, train: dict, key: str):
        if key in train:
            scratch = Section("net")
            scratch.set(key, train[key])
            return scratch.param(key)
        return self.base.net.param(key)

    def check_stage(self, run, at: str) -> None:
        try:
            cfg = self.stage_cfg(run)
        except CfgError as e:              # keys that break the cfg together (steps without scales, ...)
            raise PlanError(f"{at}.train: the stage's cfg would not load: {e.reason}") from None
        p = cfg.net.param
        if p("max_batches") < 1:
            raise PlanError(f"{at}.train.max_batches: must be set (> 0) to train")
        if run.chain == "best" and self.plan.data and Path(self.plan.data).is_file():
            from ..darknet import read_data_cfg
            if "valid" not in read_data_cfg(self.plan.data):
                raise PlanError(f"{at}.chain: best needs mAP on a valid list, and {self.plan.data} has no valid=")
        if run.chain == "shadow" and (run.method or self.plan.method) == "sttn":
            raise PlanError(f"{at}.chain: shadow needs one float tensor a layer, and sttn makes its two binary "
                            "filters from a float layer when it turns ternary; use last")
        if run.chain == "minloss" and p("max_batches") <= p("burn_in"):
            raise PlanError(f"{at}.train.max_batches: {p('max_batches')} iterations end before burn_in="
                            f"{p('burn_in')}, so no min-loss weights are saved; raise it or use chain: last")

    def check_continue(self, previous, train: dict, prev_at: str, at: str) -> None:
        """Protocol continue: the stage goes on from ``previous``'s end (no -clear), counting iterations by the
        seen of the weights it starts from."""
        if _CHOSEN[previous.chain] != "{base}_final.weights":      # minloss, best: saved before the end
            raise PlanError(f"{prev_at}.chain: --protocol continue goes on from the weights at the stage's end, and "
                            f"{previous.chain} weights were saved before it; use last or shadow")
        if self.net_value(train, "batch") != self.net_value(previous.train, "batch"):
            raise PlanError(f"{at}.train.batch: --protocol continue counts iterations in images (darknet's seen), "
                            f"so every stage needs the same batch")

    def budget(self, train: dict) -> int:
        return self.net_value(train, "max_batches")

    def stretch(self, train: dict, total: int) -> dict:
        """The schedule of ``train`` over ``total`` iterations (steps moved in proportion)."""
        out = {**train, "max_batches": total}
        own, steps = self.budget(train), self.net_value(train, "steps")
        if steps and self.net_value(train, "policy") == "steps":
            out["steps"] = [max(1, round(s * total / own)) for s in steps]
        return out

    # ------------------------------------------------------------------ files
    def file_base(self, run) -> str:
        return f"{self.plan.name}_{run.name}"

    def stage_cfg(self, run):
        cfg = self.base.copy()
        set_ternary(cfg, self.layers.ids, on=False)     # explicit ternary=0, as in the seeds' cfgs
        set_ternary(cfg, run.ternary, on=True)
        for k, v in run.train.items():
            if k in _NET_KEYS:
                cfg.net.set(k, v)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            validate_cfg(cfg)
        return cfg

    def write_stage(self, run, folder: Path) -> list:
        return [write_text_atomic(folder / f"{self.file_base(run)}.cfg", dump_cfg(self.stage_cfg(run)))]

    def write_start(self, out: Path) -> Path:
        cfg = self.base.copy()
        set_ternary(cfg, self.layers.ids, on=False)
        return write_text_atomic(out / f"{self.plan.name}.cfg", dump_cfg(cfg))

    def weights_name(self, run) -> str:
        return f"{self.file_base(run)}.weights"

    # ------------------------------------------------------------------ training
    def has_partial(self, run, folder: Path) -> bool:
        return (folder / "backup" / f"{self.file_base(run)}.ckpt").is_file()

    def train(self, run, start, folder: Path, resume: bool) -> None:
        from ..yolo import train as yolo_train
        opts = {k: v for k, v in run.train.items() if k not in _NET_KEYS}
        if run.chain == "best":
            opts["map"] = True
        c = yolo_train.DetectorTrainConfig(
            data=self.plan.data, cfg=str(folder / f"{self.file_base(run)}.cfg"), weights=start,
            clear=not resume and not run.start,          # protocol continue: seen from the previous stage's end
            method=run.method or self.plan.method, backup=str(folder / "backup"), resume=resume,
            device=self.device, workers=self.workers, progress=self.progress, project=str(folder), name="train",
            exist_ok=True, **{"plots": False, **opts})
        yolo_train.train_detector(c)

    def chosen(self, run, folder: Path) -> Path:
        path = folder / "backup" / _CHOSEN[run.chain].format(base=self.file_base(run))
        if not path.is_file():
            raise FileNotFoundError(f"{path}: stage {run.name} left no {run.chain} weights to chain on")
        return path

    def carry(self, run, folder: Path, saved: Path) -> Path:
        """What the next stage starts from: the stage's saved .weights, or with ``chain: shadow`` a copy of its
        final training state, float shadow weights included."""
        if run.chain != "shadow":
            return saved
        return copy_atomic(folder / "backup" / f"{self.file_base(run)}.ckpt", folder / f"{self.file_base(run)}.ckpt")

    # ------------------------------------------------------------------ scores
    def evaluate(self, run, weights, folder: Path) -> dict:
        cfg = folder / f"{self.file_base(run)}.cfg"
        return self._score(cfg, weights, run.method, bool(run.train.get("per_channel")))

    def evaluate_start(self, weights, out: Path, first=None) -> dict:
        return self._score(self.write_start(out), weights, None)

    def _score(self, cfg, weights, method, per_channel: bool = False) -> dict:
        from ..nn.size import model_size
        from ..yolo import map_detector
        from ..darknet import build_darknet
        from ..quant import ternarizer_options
        r = map_detector(self.plan.data, str(cfg), str(weights), method=method, per_channel=per_channel,
                         workers=self.workers)["result"]
        size = model_size(build_darknet(str(cfg), str(weights), method, **ternarizer_options(method, per_channel=per_channel)))
        return {"metrics": {"map": 100 * r.map11, "map_auc": 100 * r.map, "avg_iou": 100 * r.avg_iou,
                            "precision": 100 * r.precision, "recall": 100 * r.recall}, "size": size}

    def loss_rows(self, run, folder: Path) -> list:
        """[(iteration, loss, smoothed loss)] from the trainer's log."""
        path = folder / "train" / "results.csv"                      # the stage's run folder
        if not path.is_file():
            path = folder / "backup" / f"{self.file_base(run)}_log.csv"   # an older tritnet's log
        if not path.is_file():
            return []
        with open(path, newline="") as f:
            return [(int(r["iteration"]), float(r["loss"]), float(r["avg_loss"])) for r in csv.DictReader(f)
                    if r.get("loss")]
